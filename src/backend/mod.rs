//! Backend MCP servers: the pool that spawns them lazily, once per sharing key,
//! and the connection every session's requests are multiplexed over.

pub mod pending;
pub mod spawner;
pub mod stderr;
pub mod stdio;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use self::pending::{PendingTable, SessionId, SessionSink};
use self::stderr::StderrRing;
use crate::config::{ServerConfig, Transport};
use crate::jsonrpc;

/// The protocol version the gateway asks backends for.
pub const BACKEND_PROTOCOL_VERSION: &str = "2025-11-25";

/// Why a backend could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("server `{server}` could not be started: {reason}")]
    Spawn { server: String, reason: String },
    #[error("server `{server}` did not answer `initialize` within {secs} s{stderr}")]
    StartupTimeout { server: String, secs: u64, stderr: String },
    #[error("server `{server}` exited ({status}){stderr}")]
    Exited { server: String, status: String, stderr: String },
    #[error("server `{server}` is shutting down")]
    Closed { server: String },
    #[error("server `{server}` answered `initialize` with an error: {message}")]
    Initialize { server: String, message: String },
    #[error("server `{server}`: {message}")]
    Config { server: String, message: String },
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
}

/// A server definition with every `${VAR}` resolved for one sharing key. It
/// holds credentials: never logged, never shown.
#[derive(Clone)]
pub struct Resolved {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
}

/// What a backend says that is not an answer to the gateway: requests for a
/// client, notifications, its exit. Called from the backend's reader task, in
/// the order the backend wrote them, so it must not block.
pub trait BackendHandler: Send + Sync {
    /// A server→client request other than `ping` (which is answered locally).
    fn on_request(&self, backend: &Arc<Backend>, message: Value);
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
    /// The backend's `initialize` result, once it answered.
    initialize: std::sync::OnceLock<Value>,
    pub pid: Option<u32>,
    pub started: Instant,
    pending: PendingTable,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    /// `serialize: true`: one session request at a time, so that a server→client
    /// request can always be attributed to the one caller.
    serial: Option<tokio::sync::Semaphore>,
    /// The `logging/setLevel` last sent to the backend.
    log_level: Mutex<Option<String>>,
    alive: AtomicBool,
    stderr: Arc<StderrRing>,
    exit_status: Mutex<Option<String>>,
}

impl Backend {
    /// Sends a request and waits for the backend's whole response object.
    ///
    /// If the returned future is dropped before the answer arrives (the client
    /// cancelled or disconnected), the request is forgotten and the backend is told
    /// with `notifications/cancelled`, so it can stop the work and no entry leaks.
    pub async fn request(
        &self,
        method: &str,
        mut params: Value,
        sink: Option<&SessionSink>,
    ) -> Result<Value, BackendError> {
        if !self.is_alive() {
            return Err(self.exit_error());
        }
        if let Some(sink) = sink {
            self.touch();
            lock(&self.users).insert(sink.id);
        }
        let _touch_when_done = sink.map(|_| TouchOnDrop(self));
        let (id, rx) = self.pending.register(sink, &mut params);
        let guard = CancelOnDrop { backend: self, id, armed: true };
        let message = jsonrpc::request(Value::from(id), method, params);
        if self.writer.send(jsonrpc::to_line(&message)).is_err() {
            self.pending.forget(id);
            return Err(self.exit_error());
        }
        let reply = rx.await;
        let mut guard = guard;
        guard.armed = false;
        match reply {
            Ok(reply) => reply,
            Err(_) => Err(self.exit_error()),
        }
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

    /// How long no session request has started or ended here.
    pub fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    /// The sessions that have used this instance.
    pub fn users(&self) -> HashSet<SessionId> {
        lock(&self.users).clone()
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
        let mut current = self.log_level.lock().unwrap_or_else(|e| e.into_inner());
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
    pub fn sessions_in_flight(&self) -> std::collections::HashSet<pending::SessionId> {
        self.pending.sessions_in_flight()
    }

    /// The last lines the backend wrote to stderr.
    pub fn stderr_tail(&self, lines: usize) -> Vec<String> {
        self.stderr.tail(lines)
    }

    /// How the backend ended, once it has.
    pub fn exit_status(&self) -> Option<String> {
        self.exit_status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn exit_error(&self) -> BackendError {
        match self.exit_status() {
            Some(status) => BackendError::Exited {
                server: self.server.clone(),
                status,
                stderr: stderr_suffix(&self.stderr_tail(5)),
            },
            None => BackendError::Closed { server: self.server.clone() },
        }
    }

    /// Records that the backend is gone and fails whatever was in flight.
    fn mark_exited(&self, status: String) {
        *self.exit_status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        self.alive.store(false, Ordering::Release);
        self.pending.fail_all(&self.exit_error());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// A running backend: its connection plus what is needed to stop it.
struct Instance {
    backend: Arc<Backend>,
    process: stdio::ProcessHandle,
}

#[derive(Default)]
struct Slot {
    instance: tokio::sync::Mutex<Option<Instance>>,
    /// How many times an instance was started here.
    starts: std::sync::atomic::AtomicU32,
}

/// Resident memory of a process, from /proc (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// One row of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub server: String,
    pub key: String,
    pub instance: String,
    pub sessions: usize,
    pub idle_secs: u64,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub uptime_secs: u64,
    pub in_flight: usize,
    pub progress_routes: usize,
    pub rss_kib: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

/// Every backend instance of the daemon, keyed by `(server, sharing key)`.
pub struct BackendPool {
    slots: Mutex<HashMap<Identity, Arc<Slot>>>,
    handler: Arc<dyn BackendHandler>,
    startup_timeout: Mutex<Duration>,
    max_message_bytes: Mutex<usize>,
}

impl BackendPool {
    pub fn new(handler: Arc<dyn BackendHandler>) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            handler,
            startup_timeout: Mutex::new(Duration::from_secs(60)),
            max_message_bytes: Mutex::new(crate::framing::DEFAULT_MAX_MESSAGE_BYTES),
        }
    }

    /// Applies the limits from the config.
    pub fn set_limits(&self, startup_timeout: Duration, max_message_bytes: usize) {
        *self.startup_timeout.lock().unwrap_or_else(|e| e.into_inner()) = startup_timeout;
        *self.max_message_bytes.lock().unwrap_or_else(|e| e.into_inner()) = max_message_bytes;
    }

    fn slot(&self, identity: &Identity) -> Arc<Slot> {
        lock(&self.slots).entry(identity.clone()).or_default().clone()
    }

    /// The live backend for `identity`, spawning it first if needed.
    /// Concurrent callers wait for the one spawn.
    pub async fn get(
        &self,
        identity: &Identity,
        config: &ServerConfig,
        resolved: &Resolved,
    ) -> Result<Arc<Backend>, BackendError> {
        let server = identity.server.as_str();
        let slot = self.slot(identity);
        let mut instance = slot.instance.lock().await;
        if let Some(running) = instance.as_ref()
            && running.backend.is_alive()
        {
            return Ok(running.backend.clone());
        }
        if let Some(dead) = instance.take() {
            // Reap what is left of the old process group before starting anew.
            dead.process.stop(Duration::from_millis(200)).await;
        }
        match config.transport {
            Transport::Stdio => {}
            Transport::Http => return Err(BackendError::Unsupported { server: server.into(), transport: "HTTP" }),
            Transport::Docker => return Err(BackendError::Unsupported { server: server.into(), transport: "docker" }),
        }
        let options = stdio::SpawnOptions {
            identity: identity.clone(),
            config,
            resolved,
            startup_timeout: *self.startup_timeout.lock().unwrap_or_else(|e| e.into_inner()),
            max_message_bytes: *self.max_message_bytes.lock().unwrap_or_else(|e| e.into_inner()),
            handler: self.handler.clone(),
        };
        slot.starts.fetch_add(1, Ordering::Relaxed);
        let (backend, process) = stdio::spawn(options).await?;
        *instance = Some(Instance { backend: backend.clone(), process });
        Ok(backend)
    }

    /// Every live backend.
    pub fn running_all(&self) -> Vec<Arc<Backend>> {
        let slots: Vec<Arc<Slot>> = self.slots.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        slots
            .iter()
            .filter_map(|slot| slot.instance.try_lock().ok()?.as_ref().map(|i| i.backend.clone()))
            .filter(|b| b.is_alive())
            .collect()
    }

    /// The live backend of `identity` if one is running; never spawns.
    pub fn running(&self, identity: &Identity) -> Option<Arc<Backend>> {
        let slot = lock(&self.slots).get(identity)?.clone();
        let instance = slot.instance.try_lock().ok()?;
        instance.as_ref().map(|i| i.backend.clone()).filter(|b| b.is_alive())
    }

    /// Stops one instance (idle, or replaced) and forgets its slot.
    pub async fn stop(&self, identity: &Identity, grace: Duration) {
        let Some(slot) = lock(&self.slots).remove(identity) else { return };
        if let Some(instance) = slot.instance.lock().await.take() {
            instance.process.stop(grace).await;
        }
    }

    /// Forgets a disconnected session in every instance.
    pub fn detach(&self, session: SessionId) {
        for backend in self.running_all() {
            backend.detach(session);
        }
    }

    /// A row per known instance, for `status`.
    pub fn status(&self) -> Vec<BackendStatus> {
        let slots: Vec<(Identity, Arc<Slot>)> = {
            let slots = lock(&self.slots);
            slots.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let mut rows: Vec<BackendStatus> = slots
            .into_iter()
            .map(|(identity, slot)| {
                let mut row = BackendStatus {
                    server: identity.server,
                    key: identity.key.0,
                    instance: identity.instance,
                    sessions: 0,
                    idle_secs: 0,
                    state: "stopped",
                    pid: None,
                    uptime_secs: 0,
                    in_flight: 0,
                    progress_routes: 0,
                    rss_kib: None,
                    restarts: slot.starts.load(Ordering::Relaxed).saturating_sub(1),
                    last_exit: None,
                };
                match slot.instance.try_lock() {
                    Ok(instance) => {
                        if let Some(i) = instance.as_ref() {
                            let b = &i.backend;
                            row.state = if b.is_alive() { "ready" } else { "exited" };
                            row.pid = b.pid.filter(|_| b.is_alive());
                            row.uptime_secs = b.started.elapsed().as_secs();
                            (row.in_flight, row.progress_routes) = b.in_flight();
                            row.sessions = lock(&b.users).len();
                            row.idle_secs = b.idle_for().as_secs();
                            row.rss_kib = row.pid.and_then(rss_kib);
                            row.last_exit = b.exit_status();
                        }
                    }
                    Err(_) => row.state = "starting",
                }
                row
            })
            .collect();
        rows.sort_by(|a, b| (&a.server, &a.key, &a.instance).cmp(&(&b.server, &b.key, &b.instance)));
        rows
    }

    /// Stops every backend: SIGTERM to each process group, up to `grace` to exit,
    /// then SIGKILL for what is left.
    pub async fn shutdown(&self, grace: Duration) {
        let slots: Vec<Arc<Slot>> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.drain().map(|(_, slot)| slot).collect()
        };
        let mut stops = Vec::new();
        for slot in slots {
            stops.push(async move {
                if let Some(instance) = slot.instance.lock().await.take() {
                    instance.process.stop(grace).await;
                }
            });
        }
        futures_util::future::join_all(stops).await;
    }
}
