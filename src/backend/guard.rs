//! The process-group guard: what takes every backend's whole process tree down
//! when the daemon dies, however it dies.
//!
//! A backend is a session leader, so its tree is one process group; the daemon
//! signals that group when it stops a backend. If the daemon is SIGKILLed (or
//! crashes) no shutdown code runs: the leader still gets its parent-death signal
//! (see `spawner`), but its children do not, and a child that ignores SIGTERM or
//! the end of its stdin (`sh` → `sh` → a server, `npx` → `node`) lives on.
//! Linux has no "kill my group when my parent dies", so the daemon has a
//! guard: a tiny process (this binary again, exec'd so it holds none of the
//! daemon's memory) in a session of its own, started with the first backend.
//! The daemon tells it each backend's process group over a pipe whose only
//! write end the daemon keeps. When the daemon is gone, for any reason, the
//! kernel closes that end; the guard sees end-of-file at once, SIGTERMs every
//! group it was told of that still exists, gives them [`GRACE`], SIGKILLs what
//! is left, and exits. It forgets groups that are gone (checked every
//! [`GROUP_CHECK`]).
//!
//! One guard, not one per backend: each is a process of about 1 MB RSS (the
//! relocated part of this binary's data alone is a third of a megabyte), and
//! a daemon runs many backends. It lives while the daemon has backends: when
//! the daemon has stopped the last one, it closes the guard's input and the
//! guard, finding no group left, exits. If it is gone some other way (killed
//! by hand), the next backend starts another and tells it every group the
//! first one knew that still exists.
//!
//! Limits: a backend started in the instant before a SIGKILL, before its guard
//! has read its group, has only the leader's parent-death signal; a process
//! that leaves the group (its own `setsid`) is no longer the group's.

#[cfg(target_os = "linux")]
use std::io::Write;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(target_os = "linux")]
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The only argument that makes `mcp-gateway` the guard instead of its CLI.
const GUARD_ARG: &str = "__mcp-gateway-process-group-guard";
/// How long the groups have between SIGTERM and SIGKILL once the daemon is gone.
const GRACE: Duration = Duration::from_secs(2);
/// How often the guard looks which of its groups still exist.
const GROUP_CHECK: Duration = Duration::from_millis(500);

/// Set by [`run_if_guard`]: this program is `mcp-gateway`, so exec'ing it
/// again with [`GUARD_ARG`] runs a guard (a daemon embedded in another program
/// has no guard, only the leaders' parent-death signals).
static CAPABLE: AtomicBool = AtomicBool::new(false);

/// Called first thing by `mcp-gateway`: runs the guard when this process was
/// started as one, else notes that a guard can be started and returns `None`.
pub fn run_if_guard() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != GUARD_ARG) {
        CAPABLE.store(true, Ordering::Relaxed);
        return None;
    }
    if args.next().is_some() {
        eprintln!("mcp-gateway: {GUARD_ARG} is internal: it reads process group ids from its standard input");
        return Some(ExitCode::FAILURE);
    }
    guard();
    Some(ExitCode::SUCCESS)
}

/// The daemon's side of its guard.
#[cfg(target_os = "linux")]
struct Guarded {
    /// The write end of the guard's standard input (non-blocking, close-on-exec:
    /// no backend inherits it, and a guard that stopped reading is not waited for).
    input: std::fs::File,
    /// The groups the guard was told of (those still existing are told again
    /// to a guard started in its place).
    groups: Vec<Pid>,
}

#[cfg(target_os = "linux")]
static GUARDED: Mutex<Option<Guarded>> = Mutex::new(None);

/// Has the guard watch the process group `pgid` (a backend that just started),
/// starting the guard if there is none yet. Best effort: without it the backend
/// still runs, and still stops with the daemon in every orderly shutdown.
#[cfg(target_os = "linux")]
pub fn watch(pgid: Pid) {
    if !CAPABLE.load(Ordering::Relaxed) {
        return;
    }
    let mut guarded = GUARDED.lock().unwrap_or_else(PoisonError::into_inner);
    let (input, mut groups) = match guarded.take() {
        Some(Guarded { input, groups }) => (Some(input), groups),
        None => (None, Vec::new()),
    };
    groups.retain(exists);
    groups.push(pgid);
    if let Some(mut input) = input {
        if tell(&mut input, &[pgid]).is_ok() {
            *guarded = Some(Guarded { input, groups });
            return;
        }
        tracing::warn!("the backends' process-group guard is gone; starting another");
    }
    match start_guard().and_then(|mut input| tell(&mut input, &groups).map(|()| input)) {
        Ok(input) => *guarded = Some(Guarded { input, groups }),
        Err(e) => tracing::warn!(error = %e, pgid = pgid.as_raw(), "cannot start the backends' process-group guard"),
    }
}

/// The daemon has stopped the backend of the group `pgid`. Once no group the
/// guard watches is left, the guard's input is closed: it finds nothing to
/// take down and exits, and the next backend starts another. So a daemon whose
/// backends have all stopped (idle, reloaded away) keeps no guard.
#[cfg(target_os = "linux")]
pub fn release(pgid: Pid) {
    let mut guarded = GUARDED.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(current) = guarded.as_mut() else { return };
    current.groups.retain(|group| *group != pgid && exists(group));
    if current.groups.is_empty() {
        *guarded = None;
    }
}

#[cfg(not(target_os = "linux"))]
pub fn release(_pgid: Pid) {}

/// Writes `groups` to the guard, a decimal id a line, in one write (a pipe
/// takes up to `PIPE_BUF` bytes whole).
#[cfg(target_os = "linux")]
fn tell(input: &mut std::fs::File, groups: &[Pid]) -> std::io::Result<()> {
    let lines: String = groups.iter().map(|group| format!("{}\n", group.as_raw())).collect();
    input.write_all(lines.as_bytes())
}

/// Starts the guard with a new pipe as its standard input; returns the write end.
#[cfg(target_os = "linux")]
fn start_guard() -> std::io::Result<std::fs::File> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(write.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // `/proc/self/exe`, resolved in the child: this very binary, even if an
    // upgrade has replaced the file on disk since the daemon started.
    let mut command = tokio::process::Command::new("/proc/self/exe");
    command
        .arg(GUARD_ARG)
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::from(read))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false);
    // SAFETY: setsid is async-signal-safe and touches no parent memory.
    unsafe {
        // Its own session: not part of any group it guards (so not in a
        // backend's process count or RSS, and not waited for by a stop).
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = command.spawn()?;
    // Reaped here when it exits (after the daemon, as a rule).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(std::fs::File::from(write))
}

#[cfg(not(target_os = "linux"))]
pub fn watch(_pgid: Pid) {}

/// The guard itself: collects the groups the daemon names until its input
/// ends (the daemon is gone), then takes down those that still exist.
fn guard() {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // The guard lives as long as the daemon: let go of the code pages
    // start-up faulted in (the loop below runs a few functions), as the
    // daemon and the shim do.
    crate::memory::drop_mapped_code();
    let stdin = std::io::stdin();
    let input = stdin.as_fd();
    let timeout = PollTimeout::try_from(GROUP_CHECK.as_millis() as i32).unwrap_or(PollTimeout::NONE);
    let mut groups: Vec<Pid> = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => match nix::unistd::read(input, &mut buffer) {
                Ok(0) => break, // End of input: the daemon is gone.
                Ok(n) => groups.extend(complete_lines(&mut partial, &buffer[..n])),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => break,
            },
            Err(_) => break,
        }
        groups.retain(exists);
    }
    groups.retain(|group| killpg(*group, Signal::SIGTERM).is_ok());
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && groups.iter().any(exists) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for group in groups {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// Whether the process group has a process left (signal 0 checks, sends nothing).
fn exists(group: &Pid) -> bool {
    killpg(*group, None).is_ok()
}

/// The process groups in the complete lines of `partial` + `read`; what
/// follows the last newline stays in `partial`. A line that is not a group id
/// above 1 (never sent) is skipped: the guard must never signal group 0 (its
/// own) or 1.
fn complete_lines(partial: &mut Vec<u8>, read: &[u8]) -> Vec<Pid> {
    partial.extend_from_slice(read);
    let Some(last) = partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
    let lines: Vec<u8> = partial.drain(..=last).collect();
    lines
        .split(|b| *b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok()?.trim().parse::<i32>().ok())
        .filter(|pgid| *pgid > 1)
        .map(Pid::from_raw)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_read_a_complete_line_at_a_time() {
        let mut partial = Vec::new();
        assert_eq!(complete_lines(&mut partial, b"1234\n56"), [Pid::from_raw(1234)]);
        assert_eq!(partial, b"56");
        assert_eq!(complete_lines(&mut partial, b"78\n9000\n"), [Pid::from_raw(5678), Pid::from_raw(9000)]);
        assert!(partial.is_empty());
        assert!(complete_lines(&mut partial, b"42").is_empty());
    }

    #[test]
    fn no_line_makes_the_guard_signal_its_own_group_or_init() {
        let mut partial = Vec::new();
        assert!(complete_lines(&mut partial, b"0\n1\n-5\nx\n\n").is_empty());
    }
}
