//! `mcp-gateway-connect`: the stdio shim an MCP client launches.
//!
//! It is a byte relay, not an MCP peer: one preamble line, then lines both ways.
//! It uses plain threads and blocking I/O (no async runtime) to stay small, since
//! one runs per client per terminal. It does read the JSON it relays, lightly, for
//! three things: to remember the client's `initialize` (and its subscriptions and
//! log level) so that it can replay them to a restarted daemon, to know which
//! requests are in flight so that a request lost with a dying daemon is sent again
//! when that is safe (see [`replay_safe`]) and answered with an error otherwise,
//! never left hanging, and to learn from `tools/list` answers which tools the
//! server marks read-only or idempotent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::paths;
use crate::preamble::{NOT_STARTED, PREAMBLE_VERSION, Preamble, PreambleReply};
use crate::startup::{self, READY_FD_ENV};

/// `mcp-gateway-connect`: the stdio shim an MCP client launches.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-gateway-connect",
    version,
    about = "Connect an MCP client (on stdin/stdout) to the mcp-gateway daemon, starting it if needed",
    after_help = paths::FILES_HELP
)]
pub struct ConnectArgs {
    /// The daemon's socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The profile this client's session uses.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The name of the client's config entry that runs this shim, when it is
    /// not `gateway` (`setup` writes it): clients put it in front of every
    /// tool name, so the gateway keeps names short enough for it.
    #[arg(long, value_name = "NAME")]
    pub entry: Option<String>,
    /// Fail instead of starting the daemon when nothing listens.
    #[arg(long)]
    pub no_autostart: bool,
}

/// The id under which a restarted daemon is sent the client's `initialize` again.
const REPLAY_ID: &str = "mcp-gateway-connect:replay-initialize";
/// What the ids of every request the shim makes itself begin with: their
/// answers are for the shim, never relayed to the client.
const OWN_ID_PREFIX: &str = "mcp-gateway-connect:";
/// How long to wait for a daemon (started by us or by someone else) to accept.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error(
        "cannot connect to the mcp-gateway daemon at {path}: {source} (start it with `mcp-gateway serve`, or drop --no-autostart)"
    )]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("cannot start the daemon `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("the daemon failed to start: {reason} (log: {log})")]
    DaemonFailed { reason: String, log: String },
    #[error("no daemon accepted connections on {path} within {secs} s (log: {log})")]
    Timeout { path: PathBuf, secs: u64, log: String },
    #[error("the daemon refused this connection: {0}")]
    Refused(String),
    #[error(transparent)]
    Untrusted(#[from] crate::trusted_socket::UntrustedSocket),
    #[error("talking to the daemon failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects through [`crate::trusted_socket::connect`]: nothing is sent to a
/// socket this user's daemon cannot be behind.
fn connect_checked(socket: &Path) -> Result<std::io::Result<UnixStream>, ShimError> {
    Ok(crate::trusted_socket::connect(socket)?)
}

/// Entry point of `mcp-gateway-connect`.
pub fn main() -> ExitCode {
    let args = ConnectArgs::parse();
    let connector = Connector::new(args);
    match relay(connector) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-gateway-connect: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Makes connections to the daemon, starting it when nothing listens.
struct Connector {
    socket: PathBuf,
    profile: Option<String>,
    entry: Option<String>,
    autostart: bool,
    timeout: Duration,
    /// Daemons this shim started, reaped when they exit.
    children: Vec<Child>,
    /// An older daemon was replaced already (at most once per shim).
    upgraded: bool,
}

impl Connector {
    fn new(args: ConnectArgs) -> Self {
        let timeout = std::env::var("MCP_GATEWAY_CONNECT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Self {
            socket: paths::socket_path(args.socket.as_deref()),
            profile: args.profile,
            entry: args.entry,
            autostart: !args.no_autostart,
            timeout,
            children: Vec::new(),
            upgraded: false,
        }
    }

    /// Connects (starting the daemon if allowed) and exchanges the preamble.
    /// A daemon older than this shim (an upgrade installed new binaries while
    /// it ran) is stopped once and a current one started in its place, as
    /// `rbw` does with its agent: only ever towards newer, so shims of two
    /// versions cannot take turns restarting it.
    fn connect(&mut self) -> Result<UnixStream, ShimError> {
        let (stream, version) = self.connect_once()?;
        if self.upgraded || !is_older(&version, crate::VERSION) {
            return Ok(stream);
        }
        self.upgraded = true;
        drop(stream);
        eprintln!(
            "mcp-gateway-connect: the running daemon is mcp-gateway {version}, older than this {}; restarting it",
            crate::VERSION
        );
        if let Err(e) = crate::control::request(&self.socket, "stop") {
            eprintln!("mcp-gateway-connect: could not stop it ({e}); using it as it is");
            return self.connect_once().map(|(stream, _)| stream);
        }
        // Until the old one has gone: then the socket is absent (autostart
        // starts the new binary) or a service manager starts it on connect.
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.connect_once() {
                Ok((stream, version)) if !is_older(&version, crate::VERSION) => return Ok(stream),
                Ok((stream, _)) if Instant::now() >= deadline => return Ok(stream),
                Err(e) if Instant::now() >= deadline => return Err(e),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// One connection and preamble exchange; the daemon's version with it.
    fn connect_once(&mut self) -> Result<(UnixStream, String), ShimError> {
        self.children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        let stream = match connect_checked(&self.socket)? {
            Ok(stream) => stream,
            Err(e) if self.autostart && is_absent(&e) => self.start_daemon()?,
            Err(e) if is_absent(&e) => self.wait_for_listener()?,
            Err(source) => return Err(ShimError::Connect { path: self.socket.clone(), source }),
        };
        self.handshake(stream)
    }

    /// Whether the daemon went away because of `mcp-gateway stop` (it left its
    /// marker beside the socket), not because it crashed or is restarting.
    fn stopped_deliberately(&self) -> bool {
        paths::stopped_marker(&self.socket).exists()
    }

    /// Connects to a daemon that listens now; never starts or waits for one.
    fn connect_if_running(&mut self) -> Result<UnixStream, ShimError> {
        let stream = connect_checked(&self.socket)?
            .map_err(|source| ShimError::Connect { path: self.socket.clone(), source })?;
        self.handshake(stream).map(|(stream, _)| stream)
    }

    /// Without autostart, a service manager may still be bringing the socket up.
    fn wait_for_listener(&self) -> Result<UnixStream, ShimError> {
        let deadline = Instant::now() + self.timeout.min(Duration::from_secs(2));
        loop {
            match connect_checked(&self.socket)? {
                Ok(stream) => return Ok(stream),
                Err(source) if Instant::now() >= deadline => {
                    return Err(ShimError::Connect { path: self.socket.clone(), source });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    fn handshake(&self, stream: UnixStream) -> Result<(UnixStream, String), ShimError> {
        let preamble = Preamble {
            mcp_gateway_preamble: PREAMBLE_VERSION,
            control: None,
            args: serde_json::Value::Null,
            cwd: std::env::current_dir().ok(),
            env: crate::preamble::ClientEnv(Arc::new(
                std::env::vars_os()
                    .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
                    .collect(),
            )),
            profile: self.profile.clone(),
            entry: self.entry.clone(),
            client_pid: Some(std::os::unix::process::parent_id()),
            shim_version: crate::VERSION.to_string(),
            resends_unstarted: true,
        };
        let mut line = serde_json::to_vec(&preamble).map_err(std::io::Error::other)?;
        line.push(b'\n');
        (&stream).write_all(&line)?;
        stream.set_read_timeout(Some(self.timeout))?;
        let reply = read_line_unbuffered(&stream)?;
        stream.set_read_timeout(None)?;
        let reply: PreambleReply = serde_json::from_slice(&reply)
            .map_err(|e| ShimError::Refused(format!("unreadable preamble reply: {e}")))?;
        match reply.error {
            Some(error) => Err(ShimError::Refused(error)),
            None => Ok((stream, reply.gateway_version)),
        }
    }

    /// Starts `mcp-gateway serve` detached (own session, log file in the gateway
    /// home) and waits for it, or for whichever daemon won a race, to accept.
    fn start_daemon(&mut self) -> Result<UnixStream, ShimError> {
        let program = daemon_program();
        let log_path = paths::daemon_log_path();
        if let Some(dir) = log_path.parent() {
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
        }
        let log = OpenOptions::new().create(true).append(true).mode(0o600).open(&log_path).map_err(|source| {
            ShimError::Spawn { program: format!("{} (log {})", program.display(), log_path.display()), source }
        })?;
        let (ready_read, ready_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        let ready_fd = ready_write.as_raw_fd();
        let mut command = Command::new(&program);
        command
            .arg("serve")
            .arg("--socket")
            .arg(&self.socket)
            .env_clear()
            .envs(daemon_env(std::env::vars_os()))
            .env(READY_FD_ENV, ready_fd.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid and fcntl are async-signal-safe; nothing else runs in the child.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                let fd = std::os::fd::BorrowedFd::borrow_raw(ready_fd);
                nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
                    .map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child =
            command.spawn().map_err(|source| ShimError::Spawn { program: program.display().to_string(), source })?;
        self.children.push(child);
        drop(ready_write);
        self.await_daemon(ready_read, &log_path)
    }

    fn await_daemon(&self, ready: OwnedFd, log: &Path) -> Result<UnixStream, ShimError> {
        let deadline = Instant::now() + self.timeout;
        let mut ready = Some(std::fs::File::from(ready));
        let mut said = Vec::new();
        loop {
            if let Ok(stream) = connect_checked(&self.socket)? {
                return Ok(stream);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ShimError::Timeout {
                    path: self.socket.clone(),
                    secs: self.timeout.as_secs(),
                    log: log.display().to_string(),
                });
            }
            let wait = (deadline - now).min(Duration::from_millis(25));
            match ready.as_mut() {
                Some(pipe) if readable(pipe, wait) => {
                    let mut buf = [0u8; 512];
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => ready = None, // It exited or closed the pipe: just poll.
                        Ok(n) => said.extend_from_slice(&buf[..n]),
                    }
                    if let Some(reason) = startup::failure(&said) {
                        // Another daemon holding the lock is fine: it is the one to use.
                        if !reason.contains("another mcp-gateway daemon") {
                            return Err(ShimError::DaemonFailed { reason, log: log.display().to_string() });
                        }
                    }
                }
                Some(_) => {}
                None => std::thread::sleep(wait),
            }
        }
    }
}

/// Whether version `a` is older than `b` (`major.minor.patch`; anything that
/// does not parse is never older, so an odd version string restarts nothing).
fn is_older(a: &str, b: &str) -> bool {
    fn parse(v: &str) -> Option<(u64, u64, u64)> {
        let mut parts = v.split(['-', '+']).next()?.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    }
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a < b)
}

fn is_absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
}

fn readable(file: &std::fs::File, wait: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(wait.as_millis().min(1000) as i32).unwrap_or(PollTimeout::ZERO);
    matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
}

/// Variables of the shim's environment an autostarted daemon keeps (besides
/// every `LC_*`, `XDG_*` and `MCP_GATEWAY_*`): the user's session, where
/// programs are, locale, proxies and certificates.
const DAEMON_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];
const DAEMON_ENV_PREFIXES: &[&str] = &["LC_", "XDG_", "MCP_GATEWAY_"];

/// The environment of a daemon this shim starts: the user's session, not the
/// terminal's. The daemon outlives the terminal and its shared backends
/// inherit its environment, so a secret exported in the first terminal would
/// otherwise reach every client of every `global` server (another terminal
/// read it through server-everything's `get-env`). A client's own variables
/// still reach the servers that name them, through the credential order the
/// preamble carries, keyed by value for `share: credential`; the daemon a
/// service manager starts gets that manager's environment, which this mirrors.
fn daemon_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    vars.filter(|(name, _)| {
        let name = name.to_string_lossy();
        DAEMON_ENV.contains(&name.as_ref()) || DAEMON_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
    })
    .collect()
}

/// `$MCP_GATEWAY_BIN`, else `mcp-gateway` beside this executable, else on PATH.
fn daemon_program() -> PathBuf {
    if let Some(bin) = std::env::var_os("MCP_GATEWAY_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("mcp-gateway");
        if sibling.is_file() {
            return sibling;
        }
    }
    PathBuf::from("mcp-gateway")
}

/// Reads one line byte by byte, so nothing after it is consumed from the socket.
fn read_line_unbuffered(mut stream: &UnixStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte)? {
            0 => {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the daemon closed the connection"));
            }
            _ if byte[0] == b'\n' => return Ok(line),
            _ => line.push(byte[0]),
        }
        if line.len() > 64 * 1024 {
            return Err(std::io::Error::other("the preamble reply is too long"));
        }
    }
}

/// What the shim remembers of the client's side of the conversation.
#[derive(Default)]
struct Relay {
    /// The write side of the current daemon connection; `None` while reconnecting.
    conn: Option<UnixStream>,
    /// Lines from the client waiting for a connection, with the requests in them.
    backlog: Vec<(Vec<u8>, Vec<Request>)>,
    /// The client's `initialize` request, replayed to a restarted daemon.
    initialize: Option<Value>,
    /// Whether the client sent `notifications/initialized`.
    initialized: bool,
    /// Requests sent to the current daemon and not answered yet, by id.
    in_flight: HashMap<IdKey, InFlight>,
    /// Numbers requests in the order the client sent them, so replays keep it.
    sent: u64,
    /// Tools the server marks read-only or idempotent (learnt from the
    /// `tools/list` answers the client got): calls of them are replayed.
    replayable_tools: HashSet<String>,
    /// The resources the client subscribed to, and its last `logging/setLevel`
    /// params: what a restarted daemon is told again.
    subscriptions: BTreeSet<String>,
    log_level: Option<Value>,
    stdin_closed: bool,
}

/// A request of the client, as the shim tracks it.
struct Request {
    id: Value,
    /// Whether its answer is a `tools/list` page (the shim learns from it).
    lists_tools: bool,
    /// Whether sending it again to a restarted daemon is safe (see [`replay_safe`]).
    replayable: bool,
}

/// A request id as the in-flight requests are keyed by: its number or its
/// text as they are (`1` and `"1"` stay apart). Formatting each id into a
/// string, twice per call, was 7 % of the shim's instructions per call.
#[derive(PartialEq, Eq, Hash)]
enum IdKey {
    Number(serde_json::Number),
    Text(String),
    /// Not a valid JSON-RPC id, tracked all the same.
    Other(String),
}

impl IdKey {
    fn of(id: &Value) -> IdKey {
        match id {
            Value::Number(n) => IdKey::Number(n.clone()),
            Value::String(s) => IdKey::Text(s.clone()),
            other => IdKey::Other(other.to_string()),
        }
    }
}

/// A request sent to the daemon and not answered yet.
struct InFlight {
    request: Request,
    order: u64,
    /// The line it came in, kept when it may be replayed.
    line: Option<Vec<u8>>,
}

/// Whether a request may be sent again to a restarted daemon without a side
/// effect the client did not ask for twice: reading, listing, subscribing and
/// setting a level are; a tool call is when the server marks the tool
/// read-only or idempotent (its `annotations`). Anything else lost with a
/// daemon is answered with an error that says it may not have completed.
fn replay_safe(method: &str, tool: Option<&str>, replayable_tools: &HashSet<String>) -> bool {
    match method {
        "tools/call" => tool.is_some_and(|tool| replayable_tools.contains(tool)),
        "ping"
        | "server/discover"
        | "tools/list"
        | "prompts/list"
        | "prompts/get"
        | "resources/list"
        | "resources/templates/list"
        | "resources/read"
        | "resources/subscribe"
        | "resources/unsubscribe"
        | "completion/complete"
        | "logging/setLevel"
        | "subscriptions/listen" => true,
        _ => false,
    }
}

/// Learns from a `tools/list` answer which tools may be replayed.
fn learn_replayable(answer: &[u8], replayable_tools: &mut HashSet<String>) {
    #[derive(Deserialize)]
    struct Answer {
        result: Option<Page>,
    }
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        tools: Vec<Tool>,
    }
    #[derive(Deserialize)]
    struct Tool {
        name: String,
        #[serde(default)]
        annotations: Option<Value>,
    }
    let Ok(Answer { result: Some(page) }) = serde_json::from_slice::<Answer>(answer) else { return };
    for tool in page.tools {
        let hint = |name: &str| tool.annotations.as_ref().and_then(|a| a.get(name)).and_then(Value::as_bool);
        if hint("readOnlyHint") == Some(true) || hint("idempotentHint") == Some(true) {
            replayable_tools.insert(tool.name);
        } else {
            replayable_tools.remove(&tool.name);
        }
    }
}

type Shared = Arc<Mutex<Relay>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Relay> {
    crate::lock(shared)
}

/// Just enough of a message to track requests and responses (the method and
/// names borrowed from the line: this runs on every message).
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<ProbeParams<'a>>,
}

/// The parts of a request's params the shim tracks.
#[derive(Deserialize, Default)]
struct ProbeParams<'a> {
    /// A tool call's tool.
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    /// A subscription's resource.
    #[serde(default, borrow)]
    uri: Option<std::borrow::Cow<'a, str>>,
    /// A cancellation's request.
    #[serde(default, rename = "requestId")]
    request_id: Option<Value>,
}

impl Probe<'_> {
    fn is_response(&self) -> bool {
        self.method.is_none() && self.id.is_some()
    }

    fn tool(&self) -> Option<&str> {
        self.params.as_ref()?.name.as_deref()
    }

    fn uri(&self) -> Option<&str> {
        self.params.as_ref()?.uri.as_deref()
    }

    fn cancels(&self) -> Option<&Value> {
        (self.method.as_deref() == Some("notifications/cancelled"))
            .then(|| self.params.as_ref()?.request_id.as_ref())?
    }
}

/// Whether an id is one of the shim's own requests.
fn is_own_id(id: &Value) -> bool {
    id.as_str().is_some_and(|id| id.starts_with(OWN_ID_PREFIX))
}

fn probes(line: &[u8]) -> Vec<Probe<'_>> {
    serde_json::from_slice::<Probe>(line)
        .map(|p| vec![p])
        .or_else(|_| serde_json::from_slice::<Vec<Probe>>(line))
        .unwrap_or_default()
}

impl Relay {
    /// Sends a client line now, or queues it until a connection is back.
    fn send(&mut self, line: Vec<u8>, requests: Vec<Request>) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.write_all(&line).is_ok() {
                self.track(line, requests);
                return;
            }
            let _ = conn.shutdown(std::net::Shutdown::Both);
            self.conn = None;
        }
        self.backlog.push((line, requests));
    }

    /// Notes the requests of a line sent to the daemon. The line is kept for a
    /// replay only when it is one request that may be replayed (a batch is
    /// answered with errors, as a whole).
    fn track(&mut self, line: Vec<u8>, requests: Vec<Request>) {
        let mut line = (requests.len() == 1 && requests[0].replayable).then_some(line);
        for request in requests {
            self.sent += 1;
            self.in_flight.insert(IdKey::of(&request.id), InFlight { request, order: self.sent, line: line.take() });
        }
    }

    /// The daemon answered: forgets the request, and learns from a tool list.
    fn answered(&mut self, id: &Value, line: &[u8]) {
        if let Some(done) = self.in_flight.remove(&IdKey::of(id))
            && done.request.lists_tools
        {
            learn_replayable(line, &mut self.replayable_tools);
        }
    }

    /// A draining daemon handed back a line it did not start (see
    /// [`NOT_STARTED`]): its requests are no longer in flight there but wait,
    /// as they were, for the next daemon, whatever they do (none was acted on).
    fn handed_back(&mut self, notice: &[u8]) {
        #[derive(Deserialize)]
        struct Notice {
            params: HandedBack,
        }
        #[derive(Deserialize)]
        struct HandedBack {
            message: Value,
        }
        let Ok(Notice { params: HandedBack { message } }) = serde_json::from_slice::<Notice>(notice) else { return };
        let line = crate::jsonrpc::to_line(&message);
        let requests = probes(&line)
            .into_iter()
            .filter(|probe| probe.method.is_some())
            .filter_map(|probe| probe.id)
            .map(|id| match self.in_flight.remove(&IdKey::of(&id)) {
                Some(sent) => sent.request,
                None => Request { id, lists_tools: false, replayable: false },
            })
            .collect();
        self.backlog.push((line, requests));
    }

    /// A cancellation of a request that waits in the backlog takes it out (it
    /// was never sent, so nobody else needs to hear of it). Whether it did.
    fn cancel_queued(&mut self, id: &Value) -> bool {
        let before = self.backlog.len();
        self.backlog.retain(|(_, requests)| !(requests.len() == 1 && &requests[0].id == id));
        self.backlog.len() != before
    }

    /// Notes what a client request changes of what a restarted daemon is told.
    fn remember(&mut self, probe: &Probe<'_>, line: &[u8]) {
        match probe.method.as_deref() {
            Some("resources/subscribe") => {
                if let Some(uri) = probe.uri() {
                    self.subscriptions.insert(uri.to_string());
                }
            }
            Some("resources/unsubscribe") => {
                if let Some(uri) = probe.uri() {
                    self.subscriptions.remove(uri);
                }
            }
            Some("logging/setLevel") => {
                let message: Option<Value> = serde_json::from_slice(line).ok();
                self.log_level = message.and_then(|m| m.get("params").cloned());
            }
            _ => {}
        }
    }
}

fn relay(mut connector: Connector) -> Result<(), ShimError> {
    let stream = connector.connect()?;
    let shared: Shared = Arc::new(Mutex::new(Relay { conn: Some(stream.try_clone()?), ..Default::default() }));
    let reader_shared = shared.clone();
    std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(128 * 1024)
        .spawn(move || read_client(reader_shared))?;
    // Started: from here on the shim runs a few functions in a loop.
    crate::memory::drop_mapped_code();

    let mut from_daemon = BufReader::new(stream);
    let stdout = std::io::stdout();
    let mut line = Vec::new();
    let mut relayed = 0u64;
    loop {
        line.clear();
        let n = from_daemon.read_until(b'\n', &mut line).unwrap_or(0);
        if n == 0 {
            if lock(&shared).stdin_closed {
                return Ok(());
            }
            let next = if connector.stopped_deliberately() {
                wait_while_stopped(&mut connector, &shared)?
            } else {
                Some(reconnect(&mut connector, &shared)?)
            };
            match next {
                Some(stream) => from_daemon = BufReader::new(stream),
                None => return Ok(()),
            }
            continue;
        }
        let mut own = false;
        {
            let mut relay = lock(&shared);
            let probes = probes(&line);
            if probes.first().and_then(|p| p.method.as_deref()) == Some(NOT_STARTED) {
                // Not for the client: the request goes to the next daemon.
                relay.handed_back(&line);
                continue;
            }
            for probe in probes {
                if probe.is_response()
                    && let Some(id) = &probe.id
                {
                    own |= is_own_id(id);
                    relay.answered(id, &line);
                }
            }
        }
        if own {
            // The answer to a subscription or level the shim replayed itself.
            continue;
        }
        let mut out = stdout.lock();
        if out.write_all(&line).and_then(|_| out.flush()).is_err() {
            return Ok(()); // The client is gone.
        }
        relayed += 1;
        if relayed == 1 {
            // The session is set up (its `initialize` answered): what runs from
            // now on is the relay loop.
            crate::memory::drop_mapped_code();
        }
    }
}

/// The stdin thread: client lines to the daemon.
fn read_client(shared: Shared) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let mut requests = Vec::new();
        let mut relay = lock(&shared);
        let probes = probes(&line);
        if let [probe] = probes.as_slice()
            && probe.cancels().is_some_and(|id| relay.cancel_queued(id))
        {
            continue;
        }
        for probe in probes {
            relay.remember(&probe, &line);
            match (probe.method.as_deref(), &probe.id) {
                (Some("initialize"), Some(id)) => {
                    relay.initialize = serde_json::from_slice(&line).ok();
                    // Lost unanswered, it is sent again as it was (see `resume`).
                    requests.push(Request { id: id.clone(), lists_tools: false, replayable: true });
                }
                (Some("notifications/initialized"), None) => relay.initialized = true,
                (Some(method), Some(id)) => {
                    let tool = probe.tool();
                    let replayable = replay_safe(method, tool, &relay.replayable_tools);
                    requests.push(Request { id: id.clone(), lists_tools: method == "tools/list", replayable });
                }
                _ => {}
            }
        }
        relay.send(line, requests);
    }
    let mut relay = lock(&shared);
    relay.stdin_closed = true;
    if let Some(conn) = relay.conn.as_ref() {
        let _ = conn.shutdown(std::net::Shutdown::Write);
    }
}

/// What a request lost with a daemon that went away (crashed, restarted), and
/// not safe to send again, is answered with.
const LOST_IN_FLIGHT: &str = "the mcp-gateway daemon restarted while this request was in flight; it may or may not \
    have completed, so it was not sent again: retry it if it is safe to";
/// What requests are answered with while the daemon is stopped on purpose.
const STOPPED: &str = "the mcp-gateway daemon was stopped (`mcp-gateway stop`), so this request was not sent; \
    start it again with `mcp-gateway serve`, or restart this MCP client (its shim then starts the daemon)";

/// Answers each request id with a JSON-RPC error, so that no client call hangs.
fn answer_with_error(ids: impl IntoIterator<Item = Value>, message: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for id in ids {
        let error = json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": crate::jsonrpc::INTERNAL_ERROR,
            "message": message,
        }});
        let _ = out.write_all(&crate::jsonrpc::to_line(&error));
    }
    let _ = out.flush();
}

/// Forgets the current connection and the requests sent on it; returns their ids.
fn take_in_flight(shared: &Shared) -> Vec<Value> {
    let mut relay = lock(shared);
    relay.conn = None;
    relay.in_flight.drain().map(|(_, sent)| sent.request.id).collect()
}

/// Forgets the current connection. The requests sent on it that may be sent
/// again go back to the front of the backlog, in the order the client sent
/// them; the ids of the others are returned, to be answered with an error.
fn requeue_in_flight(shared: &Shared) -> Vec<Value> {
    let mut relay = lock(shared);
    relay.conn = None;
    let mut replay = BTreeMap::new();
    let mut lost = Vec::new();
    for (_, sent) in relay.in_flight.drain() {
        match sent.line {
            Some(line) => {
                replay.insert(sent.order, (line, vec![sent.request]));
            }
            None => lost.push(sent.request.id),
        }
    }
    let queued = std::mem::take(&mut relay.backlog);
    relay.backlog = replay.into_values().chain(queued).collect();
    lost
}

/// Drops the lines queued for a connection; returns the request ids among them.
fn take_backlog(shared: &Shared) -> Vec<Value> {
    let queued = std::mem::take(&mut lock(shared).backlog);
    queued.into_iter().flat_map(|(_, requests)| requests).map(|r| r.id).collect()
}

/// After the daemon went away: answer what was lost and cannot be sent again,
/// connect again (starting a daemon if needed), replay the client's
/// `initialize`, subscriptions and log level, then send again what is safe to
/// and what queued up. If no daemon comes back in time, every request still
/// queued is answered with an error before the shim gives up, so the client is
/// never left waiting.
fn reconnect(connector: &mut Connector, shared: &Shared) -> Result<UnixStream, ShimError> {
    answer_with_error(requeue_in_flight(shared), LOST_IN_FLIGHT);
    eprintln!("mcp-gateway-connect: the daemon went away; reconnecting");
    match connect_with_retries(connector) {
        Ok(stream) => resume(stream, shared),
        Err(e) => {
            answer_with_error(
                take_backlog(shared),
                &format!(
                    "the mcp-gateway daemon went away and this shim could not reconnect, so this request was not sent: {e}"
                ),
            );
            Err(e)
        }
    }
}

/// After a deliberate `mcp-gateway stop`: the shim does not bring the daemon
/// back (that would undo the stop within seconds). It stays up for its client,
/// answering each request with an error that says how to start the gateway,
/// and resumes by itself once a daemon listens again (`mcp-gateway serve`, or
/// one a new client's shim started). `Ok(None)`: the client closed stdin.
fn wait_while_stopped(connector: &mut Connector, shared: &Shared) -> Result<Option<UnixStream>, ShimError> {
    answer_with_error(take_in_flight(shared), STOPPED);
    eprintln!("mcp-gateway-connect: the daemon was stopped with `mcp-gateway stop`; not starting it again");
    loop {
        let (closed, waiting) = {
            let relay = lock(shared);
            (relay.stdin_closed, !relay.backlog.is_empty())
        };
        if waiting {
            if let Ok(stream) = connector.connect_if_running() {
                return resume(stream, shared).map(Some);
            }
            answer_with_error(take_backlog(shared), STOPPED);
        } else if closed {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// On a new connection: replay the client's `initialize` (and `initialized`),
/// then send what queued up while there was none.
fn resume(stream: UnixStream, shared: &Shared) -> Result<UnixStream, ShimError> {
    let (initialize, initialized, subscriptions, log_level) = {
        let relay = lock(shared);
        // An `initialize` the old daemon never answered is in the backlog, to be
        // sent again as the client's own; one it answered is replayed here.
        let initialize = relay.initialize.clone().filter(|initialize| {
            let id = initialize.get("id");
            !relay.backlog.iter().any(|(_, requests)| requests.iter().any(|r| Some(&r.id) == id))
        });
        (initialize, relay.initialized, relay.subscriptions.clone(), relay.log_level.clone())
    };
    if let Some(mut initialize) = initialize {
        initialize["id"] = Value::String(REPLAY_ID.into());
        (&stream).write_all(&crate::jsonrpc::to_line(&initialize))?;
        wait_for_replay_answer(&stream)?;
        if initialized {
            let note = crate::jsonrpc::notification("notifications/initialized", Value::Null);
            (&stream).write_all(&crate::jsonrpc::to_line(&note))?;
        }
    }
    // What the client set up on the old daemon, under the shim's own ids (their
    // answers are not relayed).
    if let Some(params) = log_level {
        let id = Value::from(format!("{OWN_ID_PREFIX}set-level"));
        (&stream).write_all(&crate::jsonrpc::to_line(&crate::jsonrpc::request(id, "logging/setLevel", params)))?;
    }
    for (n, uri) in subscriptions.into_iter().enumerate() {
        let id = Value::from(format!("{OWN_ID_PREFIX}subscribe-{n}"));
        (&stream).write_all(&crate::jsonrpc::to_line(&crate::jsonrpc::request(
            id,
            "resources/subscribe",
            json!({ "uri": uri }),
        )))?;
    }
    let mut relay = lock(shared);
    let backlog = std::mem::take(&mut relay.backlog);
    for (line, requests) in backlog {
        (&stream).write_all(&line)?;
        relay.track(line, requests);
    }
    relay.conn = Some(stream.try_clone()?);
    if relay.stdin_closed {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    eprintln!("mcp-gateway-connect: reconnected");
    Ok(stream)
}

fn connect_with_retries(connector: &mut Connector) -> Result<UnixStream, ShimError> {
    let deadline = Instant::now() + connector.timeout;
    loop {
        match connector.connect() {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => return Err(e),
            // Retrying changes none of these: say so now.
            Err(e @ (ShimError::DaemonFailed { .. } | ShimError::Untrusted(_))) => {
                return Err(e);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads (unbuffered) until the answer to the replayed `initialize`; the client
/// already has its answer, so this one is not relayed.
fn wait_for_replay_answer(stream: &UnixStream) -> Result<(), ShimError> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    loop {
        let line = read_line_unbuffered(stream)?;
        let answered = probes(&line)
            .iter()
            .any(|p| p.method.is_none() && p.id.as_ref().and_then(Value::as_str) == Some(REPLAY_ID));
        if answered {
            stream.set_read_timeout(None)?;
            return Ok(());
        }
        // Anything else before it (a notification) goes to the client as usual.
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let _ = out.write_all(&line).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_be_sent_again_is_what_cannot_act_twice() {
        let mut tools = HashSet::new();
        assert!(replay_safe("resources/read", None, &tools));
        assert!(replay_safe("subscriptions/listen", None, &tools));
        assert!(!replay_safe("tools/call", Some("deploy"), &tools));
        assert!(!replay_safe("sampling/createMessage", None, &tools), "not a client request anyway");
        let page = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[
            {"name":"read","annotations":{"readOnlyHint":true}},
            {"name":"put","annotations":{"idempotentHint":true}},
            {"name":"deploy","annotations":{"readOnlyHint":false}},
            {"name":"plain"}]}}"#;
        learn_replayable(page, &mut tools);
        assert!(replay_safe("tools/call", Some("read"), &tools));
        assert!(replay_safe("tools/call", Some("put"), &tools));
        assert!(!replay_safe("tools/call", Some("deploy"), &tools));
        assert!(!replay_safe("tools/call", Some("plain"), &tools));
        assert!(!replay_safe("tools/call", None, &tools));
        // A later listing that drops the hint takes it back.
        learn_replayable(br#"{"result":{"tools":[{"name":"read"}]}}"#, &mut tools);
        assert!(!replay_safe("tools/call", Some("read"), &tools));
        learn_replayable(b"not json", &mut tools);
    }

    #[test]
    fn subscriptions_and_the_level_are_remembered_for_a_new_daemon() {
        let mut relay = Relay::default();
        let lines = [
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"a://1"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"a://2"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"resources/unsubscribe","params":{"uri":"a://1"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"debug"}}"#,
        ];
        for line in lines {
            for probe in probes(line.as_bytes()) {
                relay.remember(&probe, line.as_bytes());
            }
        }
        assert_eq!(relay.subscriptions, BTreeSet::from(["a://2".to_string()]));
        assert_eq!(relay.log_level, Some(json!({"level": "debug"})));
    }

    #[test]
    fn a_handed_back_request_waits_for_the_next_daemon_unless_cancelled() {
        let mut relay = Relay::default();
        let sent = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy"}}"#;
        relay.track(sent.to_vec(), vec![Request { id: json!(7), lists_tools: false, replayable: false }]);
        let notice = crate::jsonrpc::to_line(&crate::jsonrpc::notification(
            NOT_STARTED,
            json!({"message": serde_json::from_slice::<Value>(sent).unwrap()}),
        ));
        relay.handed_back(&notice);
        assert!(relay.in_flight.is_empty(), "no longer in flight at the old daemon");
        let [(line, requests)] = relay.backlog.as_slice() else { panic!("one line queued") };
        assert_eq!(serde_json::from_slice::<Value>(line).unwrap(), serde_json::from_slice::<Value>(sent).unwrap());
        assert_eq!(requests[0].id, json!(7));
        assert!(!relay.cancel_queued(&json!(8)));
        assert!(relay.cancel_queued(&json!(7)), "a cancellation takes it out");
        assert!(relay.backlog.is_empty());
    }

    #[test]
    fn lost_requests_are_requeued_in_order_or_answered() {
        let shared: Shared = Arc::default();
        {
            let mut relay = lock(&shared);
            let request = |id: u64, replayable| Request { id: json!(id), lists_tools: false, replayable };
            relay.track(b"one\n".to_vec(), vec![request(1, true)]);
            relay.track(b"two\n".to_vec(), vec![request(2, false)]);
            relay.track(b"three\n".to_vec(), vec![request(3, true)]);
            relay.track(b"batch\n".to_vec(), vec![request(4, true), request(5, true)]);
            relay.backlog.push((b"queued\n".to_vec(), vec![request(6, false)]));
        }
        let mut lost = requeue_in_flight(&shared);
        lost.sort_by_key(|id| id.as_u64());
        assert_eq!(lost, vec![json!(2), json!(4), json!(5)], "not replayable, and a batch as a whole");
        let relay = lock(&shared);
        let order: Vec<&[u8]> = relay.backlog.iter().map(|(line, _)| line.as_slice()).collect();
        assert_eq!(order, vec![&b"one\n"[..], b"three\n", b"queued\n"]);
        assert!(relay.in_flight.is_empty());
    }

    #[test]
    fn an_answer_ends_only_the_request_of_its_own_id() {
        let mut relay = Relay::default();
        let request = |id: Value| Request { id, lists_tools: false, replayable: false };
        for id in [json!(1), json!("1"), json!(1.5), json!("x")] {
            relay.track(b"line\n".to_vec(), vec![request(id)]);
        }
        // The number 1 and the string "1" are two requests.
        relay.answered(&json!("1"), b"");
        relay.answered(&json!(1.5), b"");
        relay.answered(&json!(7), b"");
        let mut left: Vec<Value> = relay.in_flight.values().map(|sent| sent.request.id.clone()).collect();
        left.sort_by_key(|id| id.to_string());
        assert_eq!(left, vec![json!("x"), json!(1)]);
    }

    #[test]
    fn an_autostarted_daemon_gets_the_session_not_the_terminal() {
        let vars = [
            ("HOME", "/home/u"),
            ("PATH", "/usr/bin"),
            ("LC_ALL", "C"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("MCP_GATEWAY_HOME", "/g"),
            ("GITHUB_TOKEN", "secret"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("OPENAI_API_KEY", "secret"),
        ]
        .map(|(k, v)| (std::ffi::OsString::from(k), std::ffi::OsString::from(v)));
        let kept: Vec<String> =
            daemon_env(vars.into_iter()).into_iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(kept, ["HOME", "PATH", "LC_ALL", "XDG_RUNTIME_DIR", "MCP_GATEWAY_HOME"]);
    }

    #[test]
    fn only_an_older_daemon_is_replaced() {
        assert!(is_older("0.1.0", "0.2.0"));
        assert!(is_older("0.9.9", "0.10.0"), "numerically, not as text");
        assert!(is_older("1.2.3-rc.1", "1.2.4"));
        assert!(!is_older("0.2.0", "0.1.0"), "a newer daemon serves an older shim");
        assert!(!is_older("0.2.0", "0.2.0"));
        assert!(!is_older("", "0.2.0") && !is_older("dev", "0.2.0"), "unparsable: leave it alone");
    }
}
