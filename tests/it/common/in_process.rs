//! A daemon inside the test process, as pueue's test fixtures run theirs:
//! `mcp_gateway::daemon::serve` on a thread of its own with its own tokio
//! runtime, on a socket in a temp dir. No daemon binary is started, so a test
//! that needs only what the daemon does (not how the binary starts, logs,
//! handles signals or stops) pays for no process start and no log file.
//!
//! What differs from the real binary, and so which tests must keep using
//! [`TestGateway::start`](super::TestGateway::start):
//! - The process is the test's: signals to "the daemon" (SIGTERM, SIGHUP,
//!   SIGKILL) would reach the test; `serve` installs its SIGTERM/SIGINT/SIGHUP
//!   handlers in the test process (a SIGTERM from nextest stops the daemon and
//!   the test fails on its own, rather than the process dying at once).
//! - The environment is the whole test process's (tests run in parallel in one
//!   process under `cargo test`), so nothing a test sets per daemon (`HOME`,
//!   `MCP_GATEWAY_HOME`, the daemon's own variables as a credential level) is
//!   seen by it; backends inherit the test process's environment and working
//!   directory, so they carry no `MCP_GATEWAY_TEST_TAG` and process accounting
//!   by tag does not find them. The config and the socket are passed
//!   explicitly, and the listing cache goes into the temp dir
//!   (`ServeOptions::listing_cache`): nothing is written to the user's home.
//! - No tracing subscriber is installed: the daemon's log goes nowhere.
//! - Backend process-group guards are off: they are enabled only when the
//!   program called `backend::guard::run_if_guard()` at start, which the test
//!   harness does not. Backends still get their parent-death signal, and are
//!   stopped by `serve`'s own shutdown when the helper is dropped.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use mcp_gateway::daemon::{ServeOptions, serve};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Client, SHIM, spawn_client, wait_until};

/// How long the daemon gets to bind its socket, and to shut down when dropped
/// (sessions drain for up to 3 s, backends get their stop grace).
const START_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// `daemon::serve` running in this process on a temp socket; cancelled and
/// joined (within [`STOP_LIMIT`]) when dropped.
pub struct InProcessGateway {
    /// The temp dir of a gateway started with [`InProcessGateway::start`];
    /// `None` when the directories belong to a `TestGateway`.
    dir: Option<tempfile::TempDir>,
    /// The config file it serves (edits are taken up as by the binary).
    pub config: PathBuf,
    /// The socket it listens on.
    pub socket: PathBuf,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl InProcessGateway {
    /// A gateway serving `config_text` (YAML) from a fresh temp dir.
    pub fn start(config_text: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("mcpgw-inproc-").tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let config = home.join("config.yaml");
        std::fs::write(&config, config_text).expect("write config");
        let mut gateway = Self::serve(config, dir.path().join("run").join("gateway.sock"), &home);
        gateway.dir = Some(dir);
        gateway
    }

    /// Serves `config` on `socket`, keeping the listing cache under `home`
    /// (where the binary would keep it with `MCP_GATEWAY_HOME=home`); returns
    /// once the socket accepts connections.
    pub fn serve(config: PathBuf, socket: PathBuf, home: &Path) -> Self {
        let options = ServeOptions {
            config: Some(config.clone()),
            socket: Some(socket.clone()),
            listener: None,
            ready: None,
            listing_cache: Some(home.join("cache").join("catalog.json")),
        };
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("in-process-gateway".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("runtime: {e}"))?;
                let served = runtime.block_on(serve(options, token));
                // As the binary does: backends are stopped; do not wait for stray blocking tasks.
                runtime.shutdown_timeout(Duration::from_secs(1));
                served.map_err(|e| e.to_string())
            })
            .expect("spawn the daemon thread");
        let up = wait_until(START_LIMIT, || thread.is_finished() || UnixStream::connect(&socket).is_ok());
        if thread.is_finished() {
            let outcome = thread.join();
            panic!("the in-process daemon stopped before it listened: {outcome:?}");
        }
        assert!(up, "the in-process daemon did not listen on {} within {START_LIMIT:?}", socket.display());
        Self { dir: None, config, socket, shutdown, thread: Some(thread) }
    }

    /// The temp dir of a gateway from [`InProcessGateway::start`].
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("a gateway started with InProcessGateway::start").path()
    }

    /// A client talking MCP through a real shim pointed at this socket.
    pub fn client(&self) -> Client {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.socket.parent().expect("socket dir").parent().expect("temp dir");
        let mut command = std::process::Command::new(SHIM);
        command
            .arg("--no-autostart")
            .arg("--socket")
            .arg(&self.socket)
            .env_remove("MCP_GATEWAY_SOCKET")
            .env_remove("MCP_GATEWAY_CONFIG")
            .env_remove("MCP_GATEWAY_HOME")
            .current_dir(dir);
        spawn_client(command, dir.join(format!("inproc-shim-{n}.stderr")))
    }

    /// A raw connection that has sent a session preamble (working directory
    /// `cwd`, an empty environment) and read the daemon's one-line reply.
    pub fn session(&self, cwd: &Path) -> (UnixStream, Value) {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = UnixStream::connect(&self.socket).expect("connect");
        stream.set_read_timeout(Some(super::TIMEOUT)).expect("read timeout");
        let preamble = json!({"mcp_gateway_preamble": 1, "cwd": cwd, "env": {}, "shim_version": "test"});
        writeln!(stream, "{preamble}").expect("send the preamble");
        let mut reply = String::new();
        BufReader::new(&stream).read_line(&mut reply).expect("the preamble reply");
        let reply = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("preamble reply {reply:?}: {e}"));
        (stream, reply)
    }
}

impl Drop for InProcessGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let Some(thread) = self.thread.take() else { return };
        if !wait_until(STOP_LIMIT, || thread.is_finished()) {
            // Never hang the test on it; the thread ends with the process.
            eprintln!("the in-process daemon did not stop within {STOP_LIMIT:?}; leaving its thread");
            return;
        }
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("the in-process daemon ended with an error: {e}"),
            Err(_) => eprintln!("the in-process daemon's thread panicked"),
        }
    }
}
