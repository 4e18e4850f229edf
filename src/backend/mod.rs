//! Backend MCP servers: the pool that spawns them lazily, once per sharing key,
//! and the connection every session's requests are multiplexed over.

pub mod pending;
pub mod spawner;
pub mod stderr;
pub mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use self::pending::{PendingTable, SessionSink};
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
    #[error("server `{server}` uses the {transport} transport, which this build does not run yet")]
    Unsupported { server: String, transport: &'static str },
}

/// Formats the last stderr lines of a backend for an error message.
pub fn stderr_suffix(tail: &[String]) -> String {
    if tail.is_empty() { String::new() } else { format!("; last stderr lines:\n  {}", tail.join("\n  ")) }
}

/// What decides whether two sessions share one backend instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharingKey(pub String);

impl SharingKey {
    pub fn global() -> Self {
        SharingKey("global".to_string())
    }
}

/// Something a backend tells the gateway as a whole.
#[derive(Debug, Clone)]
pub enum BackendEvent {
    /// `notifications/{tools,prompts,resources}/list_changed`: the method.
    ListChanged { server: String, method: String },
}

/// A live connection to one backend instance.
pub struct Backend {
    pub server: String,
    pub key: SharingKey,
    /// The backend's `initialize` result, once it answered.
    initialize: std::sync::OnceLock<Value>,
    pub pid: Option<u32>,
    pub started: Instant,
    pending: PendingTable,
    writer: mpsc::UnboundedSender<Vec<u8>>,
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
        let _ = self.writer.send(jsonrpc::to_line(&jsonrpc::notification(method, params)));
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
}

/// One row of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub server: String,
    pub key: String,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub uptime_secs: u64,
    pub in_flight: usize,
    pub last_exit: Option<String>,
}

/// Every backend instance of the daemon, keyed by `(server, sharing key)`.
pub struct BackendPool {
    slots: Mutex<HashMap<(String, SharingKey), Arc<Slot>>>,
    events: mpsc::UnboundedSender<BackendEvent>,
    startup_timeout: Mutex<Duration>,
    max_message_bytes: Mutex<usize>,
}

impl BackendPool {
    pub fn new(events: mpsc::UnboundedSender<BackendEvent>) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            events,
            startup_timeout: Mutex::new(Duration::from_secs(60)),
            max_message_bytes: Mutex::new(crate::framing::DEFAULT_MAX_MESSAGE_BYTES),
        }
    }

    /// Applies the limits from the config.
    pub fn set_limits(&self, startup_timeout: Duration, max_message_bytes: usize) {
        *self.startup_timeout.lock().unwrap_or_else(|e| e.into_inner()) = startup_timeout;
        *self.max_message_bytes.lock().unwrap_or_else(|e| e.into_inner()) = max_message_bytes;
    }

    fn slot(&self, server: &str, key: &SharingKey) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry((server.to_string(), key.clone())).or_default().clone()
    }

    /// The live backend for `(server, key)`, spawning it first if needed.
    /// Concurrent callers wait for the one spawn.
    pub async fn get(
        &self,
        server: &str,
        config: &ServerConfig,
        key: &SharingKey,
    ) -> Result<Arc<Backend>, BackendError> {
        let slot = self.slot(server, key);
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
            server,
            key: key.clone(),
            config,
            startup_timeout: *self.startup_timeout.lock().unwrap_or_else(|e| e.into_inner()),
            max_message_bytes: *self.max_message_bytes.lock().unwrap_or_else(|e| e.into_inner()),
            events: self.events.clone(),
        };
        let (backend, process) = stdio::spawn(options).await?;
        *instance = Some(Instance { backend: backend.clone(), process });
        Ok(backend)
    }

    /// The live backend for `(server, key)` if one is running; never spawns.
    pub fn running(&self, server: &str, key: &SharingKey) -> Option<Arc<Backend>> {
        let slot =
            self.slots.lock().unwrap_or_else(|e| e.into_inner()).get(&(server.to_string(), key.clone()))?.clone();
        let instance = slot.instance.try_lock().ok()?;
        instance.as_ref().map(|i| i.backend.clone()).filter(|b| b.is_alive())
    }

    /// A row per known instance, for `status`.
    pub fn status(&self) -> Vec<BackendStatus> {
        let slots: Vec<((String, SharingKey), Arc<Slot>)> = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let mut rows: Vec<BackendStatus> = slots
            .into_iter()
            .map(|((server, key), slot)| {
                let mut row = BackendStatus {
                    server,
                    key: key.0,
                    state: "stopped",
                    pid: None,
                    uptime_secs: 0,
                    in_flight: 0,
                    last_exit: None,
                };
                match slot.instance.try_lock() {
                    Ok(instance) => {
                        if let Some(i) = instance.as_ref() {
                            let b = &i.backend;
                            row.state = if b.is_alive() { "ready" } else { "exited" };
                            row.pid = b.pid.filter(|_| b.is_alive());
                            row.uptime_secs = b.started.elapsed().as_secs();
                            row.in_flight = b.in_flight().0;
                            row.last_exit = b.exit_status();
                        }
                    }
                    Err(_) => row.state = "starting",
                }
                row
            })
            .collect();
        rows.sort_by(|a, b| (&a.server, &a.key).cmp(&(&b.server, &b.key)));
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
