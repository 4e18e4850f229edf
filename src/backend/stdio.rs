//! Stdio backends: a child process per instance, speaking MCP on stdin/stdout.
//!
//! Each child is a session leader (and so its own process group), so the daemon
//! can signal the whole tree it starts (`npx` → `npm exec` → `node`), and a
//! guard (`guard`) takes that group down if the daemon dies without doing so. Its stderr
//! is captured into a ring buffer, never mixed into the protocol.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::dispatch::dispatch;
use super::handshake::{EraPlan, initialize};
use super::stderr::StderrRing;
use super::{Answer, Backend, BackendError, BackendHandler, Identity, Resolved};
use crate::config::ServerConfig;
use crate::framing::{Frame, LineCodec};
use crate::raw_answer::RawAnswer;

/// Variables of the daemon's own environment that must not leak into backends.
const PRIVATE_ENV: &[&str] = &[
    "MCP_GATEWAY_READY_FD",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

pub struct SpawnOptions<'a> {
    pub identity: Identity,
    pub config: &'a ServerConfig,
    pub resolved: &'a Resolved,
    /// Docker: the container to `docker stop` when the instance is stopped.
    pub container: Option<String>,
    pub startup_timeout: Duration,
    pub max_message_bytes: usize,
    pub handler: Arc<dyn BackendHandler>,
    /// Which era to speak, or whether to ask.
    pub era: EraPlan,
}

/// Kills a starting backend's process group (and stops its container) when
/// the start is abandoned half-way.
struct KillIfAbandoned {
    pgid: Option<Pid>,
    container: Option<String>,
    armed: bool,
}

impl Drop for KillIfAbandoned {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        if let Some(container) = self.container.take() {
            // Killing the docker CLI would leave the container running.
            tokio::spawn(async move { super::docker::stop(&container, Duration::from_secs(2)).await });
        }
    }
}

/// What the pool needs to stop a backend's process tree.
pub struct ProcessHandle {
    server: String,
    container: Option<String>,
    pgid: Option<Pid>,
    exited: watch::Receiver<bool>,
    stop_io: CancellationToken,
}

impl ProcessHandle {
    /// Closes stdin and sends SIGTERM to the process group, waits up to `grace`
    /// for the group to go away, then sends SIGKILL to whatever is left.
    pub async fn stop(&self, grace: Duration) {
        self.stop_io.cancel();
        if let Some(container) = &self.container {
            // Killing the docker CLI would leave the container running.
            super::docker::stop(container, grace).await;
        }
        let Some(pgid) = self.pgid else { return };
        self.stop_group(pgid, grace).await;
        super::guard::release(pgid);
    }

    async fn stop_group(&self, pgid: Pid, grace: Duration) {
        if killpg(pgid, Signal::SIGTERM).is_err() {
            return; // The group is already gone.
        }
        let deadline = Instant::now() + grace;
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(grace, exited.wait_for(|e| *e)).await;
        // The leader is gone; children of children may still be winding down.
        while Instant::now() < deadline && killpg(pgid, None).is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if killpg(pgid, Signal::SIGKILL).is_ok() {
            warn!(server = %self.server, "backend did not stop within {grace:?} of SIGTERM; sent SIGKILL to its process group");
        }
    }
}

fn build_command(resolved: &Resolved) -> Command {
    let mut command = Command::new(&resolved.command);
    command.args(&resolved.args);
    for name in PRIVATE_ENV {
        command.env_remove(name);
    }
    command.envs(resolved.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &resolved.cwd {
        command.current_dir(cwd);
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(false);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    command
}

/// A start that failed: why, and the instance as far as it got (its pid, its
/// stderr, how it exited), when a process was started at all: a server that
/// crashes at start-up explains itself on stderr, and `logs` shows that.
pub struct StartFailure {
    pub error: BackendError,
    pub instance: Option<Arc<Backend>>,
}

impl From<BackendError> for StartFailure {
    fn from(error: BackendError) -> Self {
        StartFailure { error, instance: None }
    }
}

/// Starts a backend and completes its `initialize` handshake.
pub async fn spawn(options: SpawnOptions<'_>) -> Result<(Arc<Backend>, ProcessHandle), StartFailure> {
    let server = options.identity.server.clone();
    // A root span: the backend outlives the session whose request started it.
    let span = tracing::info_span!(parent: None, "backend", server = %server, key = %options.identity.key.0);
    let command = build_command(options.resolved);
    let mut child = super::spawner::spawn(command).await.map_err(|e| BackendError::Spawn {
        server: server.clone(),
        // The configured command, not the resolved one: that may hold credentials.
        reason: format!("`{}`: {e}", options.config.command.as_deref().unwrap_or_default()),
    })?;
    let pid = child.id();
    // Its children die with the daemon too, even a SIGKILLed one.
    if let Some(pid) = pid {
        super::guard::watch(Pid::from_raw(pid as i32));
    }
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(BackendError::Spawn { server, reason: "the child's pipes were not set up".into() }.into());
    };
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let backend = Arc::new(Backend::new(options.identity.clone(), options.config.clone(), pid, writer_tx));
    let stop_io = CancellationToken::new();
    let (exited_tx, exited_rx) = watch::channel(false);
    tokio::spawn(write_stdin(stdin, writer_rx, stop_io.clone()).instrument(span.clone()));
    let stderr_done = tokio::spawn(read_stderr(stderr, backend.stderr.clone()).instrument(span.clone()));
    tokio::spawn(
        read_stdout(stdout, backend.clone(), options.handler.clone(), options.max_message_bytes)
            .instrument(span.clone()),
    );
    tokio::spawn(
        wait_exit(child, backend.clone(), options.handler.clone(), stderr_done, exited_tx).instrument(span.clone()),
    );
    let process = ProcessHandle {
        server: server.clone(),
        container: options.container.clone(),
        pgid: pid.map(|p| Pid::from_raw(p as i32)),
        exited: exited_rx,
        stop_io,
    };
    info!(parent: &span, pid, "backend started");

    // The caller may give up while the server starts (it cancelled, or went
    // away): then nobody would own the process, so it is killed.
    let mut abandoned = KillIfAbandoned { pgid: process.pgid, container: process.container.clone(), armed: true };
    match initialize(&backend, options.startup_timeout, options.era).await {
        Ok(result) => {
            abandoned.armed = false;
            crate::memory::drop_code_when_settled();
            backend.set_initialized(result);
            if backend.is_modern() {
                backend.listen(None);
            } else {
                backend.notify("notifications/initialized", Value::Null);
            }
            Ok((backend, process))
        }
        Err(e) => {
            warn!(parent: &span, error = %e, "backend failed to initialize");
            process.stop(Duration::from_secs(1)).await;
            abandoned.armed = false;
            Err(StartFailure { error: e, instance: Some(backend) })
        }
    }
}

async fn write_stdin(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<Vec<u8>>, stop: CancellationToken) {
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => break,
            line = lines.recv() => match line { Some(line) => line, None => break },
        };
        if let Err(e) = stdin.write_all(&line).await {
            debug!(error = %e, "backend stdin closed");
            break;
        }
    }
    // Dropping stdin closes it: the polite way to ask a stdio server to exit.
}

async fn read_stderr(stderr: tokio::process::ChildStderr, ring: Arc<StderrRing>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                debug!(target: "mcp_gateway::backend::stderr", "{}", text.trim_end());
                ring.push(&text);
            }
        }
        if line.len() > 64 * 1024 {
            line = Vec::new();
        }
    }
}

async fn read_stdout(
    stdout: tokio::process::ChildStdout,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
    max_message_bytes: usize,
) {
    // Whatever ends the loop, the backend can no longer answer.
    struct Unreachable<'a>(&'a Backend);
    impl Drop for Unreachable<'_> {
        fn drop(&mut self) {
            self.0.mark_unreachable();
        }
    }
    let _unreachable = Unreachable(&backend);
    let mut frames = FramedRead::new(stdout, LineCodec::new(max_message_bytes));
    while let Some(frame) = frames.next().await {
        let line = match frame {
            Ok(Frame::Line(line)) => line,
            Ok(Frame::TooLong) => {
                warn!("dropped a message from the backend larger than {max_message_bytes} bytes");
                continue;
            }
            Err(e) => {
                debug!(error = %e, "backend stdout closed with an error");
                break;
            }
        };
        // An answer to one of the gateway's requests goes to its caller as it
        // came: only probed, not parsed (see `raw_answer`).
        if let Some(answer) = RawAnswer::probe(line.clone()) {
            if !backend.pending.complete_id(answer.id(), Answer::Raw(answer)) {
                debug!("dropped a response to an unknown or cancelled request id");
            }
            continue;
        }
        match serde_json::from_slice::<Value>(&line) {
            Ok(message) => dispatch(&backend, handler.as_ref(), message, None),
            Err(e) => warn!(error = %e, "dropped a line from the backend that is not JSON"),
        }
    }
}

async fn wait_exit(
    mut child: Child,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
    stderr_done: tokio::task::JoinHandle<()>,
    exited: watch::Sender<bool>,
) {
    let status = match child.wait().await {
        Ok(status) => describe_exit(status),
        Err(e) => format!("wait failed: {e}"),
    };
    // Let the last stderr lines (usually the reason) land before the error that
    // quotes them is made; a grandchild holding stderr open must not stall us.
    let _ = tokio::time::timeout(Duration::from_millis(500), stderr_done).await;
    info!(status, "backend exited");
    backend.mark_exited(status);
    handler.on_exit(&backend);
    let _ = exited.send(true);
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("killed by {signal}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => status.to_string(),
    }
}
