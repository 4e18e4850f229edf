//! Backend MCP servers: the pool that spawns them lazily, once per sharing key,
//! and the connection every session's requests are multiplexed over.
//!
//! | transport | file | how it stops | how its era is learned |
//! |-----------|------|--------------|------------------------|
//! | stdio | [`stdio`] | stdin closed, SIGTERM then SIGKILL to its process group | `server/discover` over its pipes (`handshake`) |
//! | Docker | [`docker`] (a stdio child: `docker run -i`) | as stdio, plus `docker stop` | as stdio |
//! | Streamable HTTP | [`http`] | its session is deleted (`DELETE`) | `server/discover` as a modern POST (`http::modern`), else `initialize` (`handshake`) |
//! | HTTP+SSE (2024-11-05) | `http::legacy`, found when `initialize` gets no POST | its event stream ends | always the handshake era |
//!
//! What every transport shares sits beside them, never inside one: the start
//! (`handshake`: the era plan and `initialize`), the routing of what a
//! backend says (`dispatch`) and the id map of its requests ([`pending`]).
//! Only [`pool`](BackendPool), which picks the transport, names them.

mod dispatch;
pub(crate) mod docker;
pub(crate) mod guard;
mod handshake;
pub(crate) mod http;
pub mod pending;
mod pool;
pub(crate) mod spawner;
pub(crate) mod stderr;
pub(crate) mod stdio;
mod supervisor;

pub use pool::{BackendPool, BackendStatus};

use crate::lock;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use self::pending::PendingTable;
use self::stderr::StderrRing;
use crate::config::ServerConfig;
use crate::era::Era;
use crate::jsonrpc;
use crate::raw_answer::RawAnswer;
use crate::sink::{SessionId, SessionSink};

/// Why a backend could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("server `{server}` could not be started: {reason}")]
    Spawn { server: String, reason: String },
    #[error("server `{server}` did not answer `initialize` within {secs} s{stderr}")]
    StartupTimeout { server: String, secs: u64, stderr: String },
    #[error("server `{server}` exited ({status}){stderr}")]
    Exited { server: String, status: String, stderr: String },
    #[error("server `{server}` closed its connection (it exited or is being stopped)")]
    Closed { server: String },
    #[error("server `{server}` answered `initialize` with an error: {message}")]
    Initialize { server: String, message: String },
    #[error("server `{server}`: {message}")]
    Config { server: String, message: String },
    #[error(
        "server `{server}` failed to start after {failures} failures; the next attempt is in {retry_in_ms} ms (last error: {last_error})"
    )]
    BackingOff { server: String, failures: u32, retry_in_ms: u64, last_error: String },
    #[error(
        "server `{server}` failed {failures} times in a row, so calls to it are refused for now; it will be retried in {retry_in_secs} s (last error: {last_error})"
    )]
    CircuitOpen { server: String, failures: usize, retry_in_secs: u64, last_error: String },
    #[error("server `{server}` did not answer within {secs} s (request_timeout_secs); the request was cancelled")]
    Timeout { server: String, secs: u64 },
    #[error("server `{server}` uses the {transport} transport, which this build does not run yet")]
    Unsupported { server: String, transport: &'static str },
}

/// Formats the last stderr lines of a backend for an error message.
pub fn stderr_suffix(tail: &[String]) -> String {
    if tail.is_empty() { String::new() } else { format!("; last stderr lines:\n  {}", tail.join("\n  ")) }
}

/// What decides whether two sessions share one backend instance: `global`,
/// `workspace:<root>`, `session:<id>` or `credential:<keyed hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharingKey(pub String);

impl SharingKey {
    /// The workspace root of a per-workspace instance: the one root its
    /// sessions share, and so the only roots it may be offered.
    pub fn workspace_root(&self) -> Option<&std::path::Path> {
        self.0.strip_prefix("workspace:").map(std::path::Path::new)
    }
}

/// One backend instance: its server, sharing key, and a keyed hash of its
/// resolved definition (so that new credentials or a changed definition get a
/// new instance while the old one drains).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub server: String,
    pub key: SharingKey,
    pub instance: String,
    /// 0 for the instance every session of the key shares; 1 and up for the
    /// extra instances that calls asking a client something run on while
    /// another session's such call holds the one before (`gateway::asking`).
    pub lane: u32,
}

/// A server definition with every `${VAR}` resolved for one sharing key. It
/// holds credentials: never logged, never shown.
#[derive(Clone)]
pub struct Resolved {
    /// Remote servers: the URL and headers.
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    /// Docker: the image, mounts and network.
    pub image: Option<String>,
    pub volumes: Vec<String>,
    pub network: Option<String>,
    /// Remote servers without a static `Authorization` header: the OAuth
    /// credential to send, and to log in to when the server answers 401.
    pub oauth: Option<crate::oauth::Binding>,
}

/// What a backend says that is not an answer to the gateway: requests for a
/// client, notifications, its exit. Called from the backend's reader task, in
/// the order the backend wrote them, so it must not block.
pub trait BackendHandler: Send + Sync {
    /// A server→client request other than `ping` (which is answered locally);
    /// `origin` is the session whose request's stream carried it, when known.
    fn on_request(&self, backend: &Arc<Backend>, message: Value, origin: Option<SessionId>);
    /// A notification other than `notifications/progress` (routed by the pending table).
    fn on_notification(&self, backend: &Arc<Backend>, message: Value);
    /// The backend process exited.
    fn on_exit(&self, backend: &Arc<Backend>);
}

/// A live connection to one backend instance.
pub struct Backend {
    pub server: String,
    pub key: SharingKey,
    pub identity: Identity,
    /// The definition it was started from (its settings: serialize, timeouts).
    pub config: ServerConfig,
    /// Sessions that have used this instance and are still connected.
    users: Mutex<HashSet<SessionId>>,
    /// When a session request last started or ended here.
    last_used: Mutex<Instant>,
    handed_out: AtomicBool,
    /// When a health ping last went out (or the instance started).
    last_ping: Mutex<Instant>,
    /// The backend's `initialize` result, once it answered (for a modern
    /// server, its `server/discover` result seen as one).
    initialize: std::sync::OnceLock<Value>,
    /// The era the server was found to speak at its start, set once before the
    /// instance is handed out. The only record of it at run time: the HTTP
    /// transport reads it here too (to pick how it sends), so the two cannot
    /// disagree. Unset during the start, which speaks the handshake era.
    era: std::sync::OnceLock<Era>,
    /// A modern server's listen stream, held by the gateway.
    listening: Mutex<Listening>,
    pub pid: Option<u32>,
    pub started: Instant,
    pending: PendingTable,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    /// `serialize: true`: one session request at a time, so that a server→client
    /// request can always be attributed to the one caller.
    serial: Option<tokio::sync::Semaphore>,
    /// Sessions with calls in flight here of tools known to ask clients, and
    /// how many: at most one session at a time (see [`AskingClaim`]).
    askers: Mutex<HashMap<SessionId, usize>>,
    /// The `logging/setLevel` last sent to the backend.
    log_level: Mutex<Option<String>>,
    alive: AtomicBool,
    /// Whether it has answered a session's request with a result: proof that it works, which
    /// resets the restart backoff when it later crashes (see `supervisor`).
    served: AtomicBool,
    /// Set when the gateway itself stops the instance (its exit is no failure).
    stopping: AtomicBool,
    /// Why the gateway killed it, when it did so because it stopped answering.
    fault: Mutex<Option<String>>,
    stderr: Arc<StderrRing>,
    exit_status: Mutex<Option<String>>,
}

impl Backend {
    /// A backend that has just been started, before `initialize`.
    pub fn new(
        identity: Identity,
        config: ServerConfig,
        pid: Option<u32>,
        writer: mpsc::UnboundedSender<Vec<u8>>,
    ) -> Backend {
        Backend {
            server: identity.server.clone(),
            key: identity.key.clone(),
            serial: config.serialize.then(|| tokio::sync::Semaphore::new(1)),
            askers: Mutex::default(),
            identity,
            config,
            users: Mutex::new(HashSet::new()),
            last_used: Mutex::new(Instant::now()),
            handed_out: AtomicBool::new(false),
            last_ping: Mutex::new(Instant::now()),
            initialize: std::sync::OnceLock::new(),
            era: std::sync::OnceLock::new(),
            listening: Mutex::default(),
            pid,
            started: Instant::now(),
            pending: PendingTable::default(),
            writer,
            log_level: Mutex::new(None),
            alive: AtomicBool::new(true),
            served: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            fault: Mutex::new(None),
            stderr: Arc::new(StderrRing::default()),
            exit_status: Mutex::new(None),
        }
    }

    /// Records the era the start found. An instance's era never changes (a
    /// server that changes era is a new definition or a new start), so a second
    /// call is ignored.
    pub(crate) fn settle_era(&self, era: Era) {
        let _ = self.era.set(era);
    }

    /// The era the server speaks: the handshake era until its start found otherwise.
    pub fn era(&self) -> Era {
        self.era.get().copied().unwrap_or_default()
    }

    /// Whether the server speaks the modern era (an envelope on every request).
    pub fn is_modern(&self) -> bool {
        self.era() == Era::Modern
    }

    /// (Re)opens the gateway's listen stream on a modern server, for every list
    /// change and the resources sessions subscribed to (the modern era's
    /// `resources/subscribe`), after adding or removing `change`'s URI. A
    /// listen never ends, so it is sent outside the pending table; the one it
    /// replaces is cancelled.
    pub(crate) fn listen(&self, change: Option<(&str, bool)>) {
        let mut listening = lock(&self.listening);
        match change {
            Some((uri, true)) => {
                listening.uris.insert(uri.to_string());
            }
            Some((uri, false)) => {
                listening.uris.remove(uri);
            }
            None => {}
        }
        if let Some(old) = listening.id.take() {
            self.notify("notifications/cancelled", serde_json::json!({ "requestId": old }));
        }
        listening.opened += 1;
        let id = format!("{}{}", jsonrpc::ids::LISTEN_PREFIX, listening.opened);
        let mut notifications = serde_json::json!({
            "toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true,
        });
        if !listening.uris.is_empty() {
            notifications["resourceSubscriptions"] = serde_json::json!(listening.uris);
        }
        let mut params = serde_json::json!({ "notifications": notifications });
        crate::era::stamp(&mut params, &crate::era::gateway_envelope());
        self.send(&jsonrpc::request(Value::from(id.clone()), "subscriptions/listen", params));
        listening.id = Some(id);
    }

    /// Records the `initialize` result.
    pub(crate) fn set_initialized(&self, result: Value) {
        let _ = self.initialize.set(result);
    }

    /// Delivers a response as if the backend had sent it (transport errors).
    pub(crate) fn deliver(&self, response: Value) {
        self.pending.complete(response);
    }

    /// The session whose request has this backend-side id, if it is in flight.
    pub fn session_of_request(&self, id: &Value) -> Option<SessionId> {
        self.pending.session_of(id.as_u64()?)
    }

    /// Whether a request sent to the backend still waits for its answer.
    pub fn awaits_answer(&self, id: &Value) -> bool {
        id.as_u64().is_some_and(|id| self.pending.is_in_flight(id))
    }

    /// Sends a request and waits for the backend's whole response object.
    ///
    /// If the returned future is dropped before the answer arrives (the client
    /// cancelled or disconnected), the request is forgotten and the backend is told
    /// with `notifications/cancelled`, so it can stop the work and no entry leaks.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        sink: Option<&SessionSink>,
    ) -> Result<Value, BackendError> {
        self.request_answer(method, params, sink).await.map(Answer::into_value)
    }

    /// [`Backend::request`], the answer as it came: a stdio backend's line is
    /// not parsed, so a session can relay it as it is (see `raw_answer`).
    pub async fn request_answer(
        &self,
        method: &str,
        mut params: Value,
        sink: Option<&SessionSink>,
    ) -> Result<Answer, BackendError> {
        if !self.is_alive() {
            return Err(self.exit_error());
        }
        if let Some(sink) = sink {
            self.touch();
            lock(&self.users).insert(sink.id);
        }
        let _touch_when_done = sink.map(|_| TouchOnDrop(self));
        // A modern server needs an envelope on everything: the caller's (see
        // `Gateway::forward`), else the gateway's own.
        if self.is_modern() && !crate::era::has_envelope(&params) {
            crate::era::stamp(&mut params, &crate::era::gateway_envelope());
        }
        let tool = sink.filter(|_| method == "tools/call").and_then(|_| params.get("name")).and_then(Value::as_str);
        let tool = tool.map(Box::from);
        let (id, rx) = self.pending.register(sink, &mut params, tool);
        let guard = CancelOnDrop { backend: self, id, armed: true };
        if self.writer.send(jsonrpc::request_line(id, method, &params)).is_err() {
            self.pending.forget(id);
            return Err(self.exit_error());
        }
        let reply = rx.await;
        let mut guard = guard;
        guard.armed = false;
        match reply {
            Ok(reply) => {
                if sink.is_some() && reply.as_ref().is_ok_and(Answer::has_result) {
                    self.served.store(true, Ordering::Release);
                }
                reply
            }
            Err(_) => Err(self.exit_error()),
        }
    }

    /// Whether the instance has answered a session's request with a result
    /// (an error answer may be the transport's own, made without the server).
    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Value) {
        self.send(&jsonrpc::notification(method, params));
    }

    /// Sends any message (used for answers to the backend's own requests).
    pub fn send(&self, message: &Value) {
        let _ = self.writer.send(jsonrpc::to_line(message));
    }

    /// Waits for this session request's turn on a `serialize: true` backend.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.serial {
            Some(serial) => serial.acquire().await.ok(),
            None => None,
        }
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Claims this instance for a call of `session` that may ask its client
    /// something: granted unless another session holds such a claim, so a
    /// request the backend sends meanwhile has exactly one possible owner.
    /// `released` is woken when the claim ends (others may be waiting).
    pub fn claim_for_asking(self: &Arc<Self>, session: SessionId, released: Arc<Notify>) -> Option<AskingClaim> {
        let mut askers = lock(&self.askers);
        if askers.keys().any(|other| *other != session) {
            return None;
        }
        *askers.entry(session).or_default() += 1;
        Some(AskingClaim { backend: self.clone(), session, released })
    }

    /// The one session holding asking claims here, if any.
    pub fn sole_asker(&self) -> Option<SessionId> {
        lock(&self.askers).keys().next().copied()
    }

    /// The tools `session` is calling here now.
    pub fn tools_in_flight(&self, session: SessionId) -> Vec<String> {
        self.pending.tools_in_flight(session)
    }

    /// The tool `session` calls here, when that is its only request here.
    pub fn sole_tool_of(&self, session: SessionId) -> Option<String> {
        self.pending.sole_tool_of(session)
    }

    /// How long no session request has started or ended here.
    pub fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    /// The sessions that have used this instance.
    pub fn users(&self) -> HashSet<SessionId> {
        lock(&self.users).clone()
    }

    /// Whether an idle instance is due a health ping (and marks it pinged).
    pub fn ping_due(&self, interval: Duration) -> bool {
        let mut last = lock(&self.last_ping);
        let due = self.in_flight().0 == 0 && self.idle_for() >= interval && last.elapsed() >= interval;
        if due {
            *last = Instant::now();
        }
        due
    }

    /// Counts a session as a user of this instance (it gets its log messages).
    pub fn attach(&self, session: SessionId) {
        lock(&self.users).insert(session);
    }

    /// True exactly once: the first time the gateway hands this instance out.
    pub fn first_use(&self) -> bool {
        !self.handed_out.swap(true, Ordering::AcqRel)
    }

    /// Forgets a session that disconnected.
    pub fn detach(&self, session: SessionId) {
        lock(&self.users).remove(&session);
    }

    /// Records the level the backend was asked to log at; true when it changed.
    pub fn set_log_level(&self, level: &str) -> bool {
        let mut current = crate::lock(&self.log_level);
        if current.as_deref() == Some(level) {
            return false;
        }
        *current = Some(level.to_string());
        true
    }

    /// Whether the backend declared a capability in its `initialize` result.
    pub fn has_capability(&self, name: &str) -> bool {
        self.initialize_result().get("capabilities").and_then(|c| c.get(name)).is_some()
    }

    /// The backend's `initialize` result (null before it answered).
    pub fn initialize_result(&self) -> &Value {
        self.initialize.get().unwrap_or(&Value::Null)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Requests in flight, and progress routes held, for status and leak checks.
    pub fn in_flight(&self) -> (usize, usize) {
        self.pending.len()
    }

    /// The sessions that have calls in flight on this backend.
    pub fn sessions_in_flight(&self) -> std::collections::HashSet<SessionId> {
        self.pending.sessions_in_flight()
    }

    /// The last lines the backend wrote to stderr.
    pub fn stderr_tail(&self, lines: usize) -> Vec<String> {
        self.stderr.tail(lines)
    }

    /// The stderr lines numbered `since` and later, and the next number.
    pub fn stderr_since(&self, since: u64) -> (Vec<String>, u64) {
        self.stderr.since(since)
    }

    /// How the backend ended, once it has.
    pub fn exit_status(&self) -> Option<String> {
        crate::lock(&self.exit_status).clone()
    }

    pub fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn set_fault(&self, reason: String) {
        *lock(&self.fault) = Some(reason);
    }

    /// Why the instance is gone, for callers and for the restart record.
    pub fn exit_error(&self) -> BackendError {
        if let Some(fault) = lock(&self.fault).clone() {
            return BackendError::Exited { server: self.server.clone(), status: fault, stderr: String::new() };
        }
        match self.exit_status() {
            Some(status) => BackendError::Exited {
                server: self.server.clone(),
                status,
                stderr: stderr_suffix(&self.stderr_tail(5)),
            },
            None => BackendError::Closed { server: self.server.clone() },
        }
    }

    /// The backend's output ended: it is gone (its exit status comes when it
    /// has been reaped). From now on the pool starts a new instance instead of
    /// handing this one out.
    pub(crate) fn mark_unreachable(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Records that the backend is gone and fails whatever was in flight.
    pub(crate) fn mark_exited(&self, status: String) {
        *crate::lock(&self.exit_status) = Some(status);
        self.alive.store(false, Ordering::Release);
        self.pending.fail_all(&self.exit_error());
    }
}

/// A backend's response: as its line came (a stdio backend's, probed but not
/// parsed), or as a tree (what an HTTP transport read, or an error the
/// gateway made for it).
#[derive(Debug)]
pub enum Answer {
    Raw(RawAnswer),
    Value(Value),
}

impl Answer {
    /// The response as a tree.
    pub fn into_value(self) -> Value {
        match self {
            Answer::Value(value) => value,
            Answer::Raw(raw) => raw.to_value().unwrap_or_else(|e| {
                jsonrpc::error(
                    Value::from(raw.id()),
                    jsonrpc::INTERNAL_ERROR,
                    format!("the server's answer could not be read: {e}"),
                )
            }),
        }
    }

    /// Whether it carries a `result` (rather than an `error`).
    pub fn has_result(&self) -> bool {
        match self {
            Answer::Raw(raw) => raw.has_result(),
            Answer::Value(value) => value.get("result").is_some(),
        }
    }
}

#[derive(Default)]
struct Listening {
    /// The open listen request's id.
    id: Option<String>,
    uris: std::collections::BTreeSet<String>,
    opened: u64,
}

/// A call's hold on an instance while it may ask its client something (see
/// [`Backend::claim_for_asking`]); let go when the call ends, however it ends.
pub struct AskingClaim {
    backend: Arc<Backend>,
    session: SessionId,
    released: Arc<Notify>,
}

impl Drop for AskingClaim {
    fn drop(&mut self) {
        let mut askers = lock(&self.backend.askers);
        if let Some(count) = askers.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                askers.remove(&self.session);
            }
        }
        drop(askers);
        self.released.notify_waiters();
    }
}

/// Marks the backend used when a session request ends, however it ends.
struct TouchOnDrop<'a>(&'a Backend);

impl Drop for TouchOnDrop<'_> {
    fn drop(&mut self) {
        self.0.touch();
    }
}

struct CancelOnDrop<'a> {
    backend: &'a Backend,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed && self.backend.pending.forget(self.id) {
            self.backend.notify(
                "notifications/cancelled",
                serde_json::json!({"requestId": self.id, "reason": "the client cancelled or disconnected"}),
            );
        }
    }
}
