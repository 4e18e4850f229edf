//! Spawning backends from one long-lived thread.
//!
//! On Linux every backend gets a parent-death signal, so that a daemon killed
//! with SIGKILL (which runs no shutdown code) still takes its backends with it.
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not
//! the process: a child forked from a tokio worker or blocking-pool thread would
//! be killed whenever the runtime retires that thread. So every fork happens on
//! this one thread, which lives as long as the daemon.
//!
//! The signal reaches the leader only; the rest of its process group (what a
//! `sh` or `npx` leader started) is taken down by the group's guard (`guard`).

use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

struct Job {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<std::io::Result<Child>>,
}

fn spawner() -> Option<&'static mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let thread = std::thread::Builder::new().name("backend-spawner".into()).spawn(move || {
                for mut job in rx {
                    // The child is registered with the daemon's runtime (for reaping
                    // and async pipes) although it is forked here.
                    let _runtime = job.runtime.enter();
                    let _ = job.reply.send(job.command.spawn());
                }
            });
            thread.ok().map(|_| tx)
        })
        .as_ref()
}

/// Spawns `command` from the spawner thread, with a parent-death signal on Linux.
pub async fn spawn(mut command: Command) -> std::io::Result<Child> {
    let Some(spawner) = spawner() else {
        // Without the dedicated thread a parent-death signal would fire at random.
        tracing::warn!("no spawner thread; starting the backend without a parent-death signal");
        return command.spawn();
    };
    set_parent_death_signal(&mut command);
    let (reply, answer) = oneshot::channel();
    let job = Job { command, runtime: tokio::runtime::Handle::current(), reply };
    let gone = || std::io::Error::other("the backend spawner thread is gone");
    spawner.send(job).map_err(|_| gone())?;
    answer.await.unwrap_or_else(|_| Err(gone()))
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    let daemon = nix::unistd::getpid();
    // SAFETY: prctl and getppid are async-signal-safe and touch no parent memory.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)?;
            // The daemon may have died between fork and prctl: then nobody will signal us.
            if nix::unistd::getppid() != daemon {
                return Err(std::io::Error::other("the daemon exited while this backend was starting"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}
