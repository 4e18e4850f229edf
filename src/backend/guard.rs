//! Process-group guards: what takes a backend's whole process tree down when the
//! daemon dies, however it dies.
//!
//! A backend is a session leader, so its tree is one process group; the daemon
//! signals that group when it stops a backend. If the daemon is SIGKILLed (or
//! crashes) no shutdown code runs: the leader still gets its parent-death signal
//! (see `spawner`), but its children do not, and a child that ignores SIGTERM or
//! the end of its stdin (`sh` → `sh` → a server, `npx` → `node`) lives on.
//! Linux has no "kill my group when my parent dies", so every backend gets a
//! guard: a tiny process (this binary again, exec'd so it holds none of the
//! daemon's memory) in a session of its own, which holds the read end of a pipe
//! whose only write end the daemon keeps. When the daemon is gone, for any
//! reason, the kernel closes that end; the guard sees end-of-file at once,
//! SIGTERMs the group, gives it [`GRACE`], SIGKILLs what is left, and exits.
//! It also exits by itself once the group is gone (checked every
//! [`GROUP_CHECK`]), so a stopped backend leaves no guard behind.
//!
//! Limits: a backend started in the instant before a SIGKILL, before its guard
//! is up, has only the leader's parent-death signal; a process that leaves the
//! group (its own `setsid`) is no longer the group's.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The first argument that makes `mcp-gateway` a guard instead of its CLI.
const GUARD_ARG: &str = "__mcp-gateway-process-group-guard";
/// How long the group has between SIGTERM and SIGKILL once the daemon is gone.
const GRACE: Duration = Duration::from_secs(2);
/// How often a guard looks whether its group still exists.
const GROUP_CHECK: Duration = Duration::from_millis(500);

/// Set by [`run_if_guard`]: this program is `mcp-gateway`, so exec'ing it
/// again with [`GUARD_ARG`] runs a guard (a daemon embedded in another program
/// has no guards, only the leaders' parent-death signals).
static CAPABLE: AtomicBool = AtomicBool::new(false);

/// Called first thing by `mcp-gateway`: runs the guard when this process was
/// started as one, else notes that guards can be started and returns `None`.
pub fn run_if_guard() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != GUARD_ARG) {
        CAPABLE.store(true, Ordering::Relaxed);
        return None;
    }
    let pgid = args.next().and_then(|a| a.to_str()?.parse::<i32>().ok());
    let fd = args.next().and_then(|a| a.to_str()?.parse::<RawFd>().ok());
    match (pgid, fd) {
        (Some(pgid), Some(fd)) if pgid > 1 => {
            guard(Pid::from_raw(pgid), fd);
            Some(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("mcp-gateway: {GUARD_ARG} is internal: it takes a process group id and a descriptor");
            Some(ExitCode::FAILURE)
        }
    }
}

/// The pipe whose write end only the daemon holds (both ends close-on-exec, so
/// no backend inherits either).
fn daemon_alive_pipe() -> Option<&'static (OwnedFd, OwnedFd)> {
    static PIPE: OnceLock<Option<(OwnedFd, OwnedFd)>> = OnceLock::new();
    PIPE.get_or_init(|| match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pipe) => Some(pipe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot create the pipe backend guards watch; backends' children may outlive a killed daemon");
            None
        }
    })
    .as_ref()
}

/// Starts a guard for the process group `pgid` (a backend that just started).
/// Best effort: without one the backend still runs, and still stops with the
/// daemon in every orderly shutdown.
#[cfg(target_os = "linux")]
pub fn watch(pgid: Pid) {
    if !CAPABLE.load(Ordering::Relaxed) {
        return;
    }
    let Some((read, _write)) = daemon_alive_pipe() else { return };
    let fd = read.as_raw_fd();
    // `/proc/self/exe`, resolved in the child: this very binary, even if an
    // upgrade has replaced the file on disk since the daemon started.
    let mut command = tokio::process::Command::new("/proc/self/exe");
    command
        .arg(GUARD_ARG)
        .arg(pgid.as_raw().to_string())
        .arg(fd.to_string())
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false);
    // SAFETY: setsid and fcntl are async-signal-safe and touch no parent memory.
    unsafe {
        command.pre_exec(move || {
            // Its own session: not part of the group it guards (so not in the
            // backend's process count or RSS, and not waited for by a stop).
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            let read = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::fcntl::fcntl(read, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
                .map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    match command.spawn() {
        // Reaped here when it exits (after its group, or after the daemon).
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::warn!(error = %e, pgid = pgid.as_raw(), "cannot start a process-group guard"),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn watch(_pgid: Pid) {}

/// The guard itself: waits for the daemon's end of the pipe to close, or for
/// the group to be gone.
fn guard(pgid: Pid, fd: RawFd) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // A guard per backend lives as long as the backend: let go of the code
    // pages start-up faulted in (the loop below runs a few functions), as the
    // daemon and the shim do.
    crate::memory::drop_mapped_code();
    // SAFETY: the daemon passed this descriptor to this process for this use only.
    let pipe = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let timeout = PollTimeout::try_from(GROUP_CHECK.as_millis() as i32).unwrap_or(PollTimeout::NONE);
    loop {
        let mut fds = [PollFd::new(pipe, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            // Nothing is ever written: readiness means end-of-file (or an error),
            // either way the daemon is gone.
            Ok(n) if n > 0 => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
        if killpg(pgid, None).is_err() {
            return; // The group is gone: nothing left to guard.
        }
    }
    if killpg(pgid, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && killpg(pgid, None).is_ok() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
}
