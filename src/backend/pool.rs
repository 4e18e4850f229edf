//! Every backend instance of the daemon, started on first use and restarted
//! under supervision (see `supervisor`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::handshake::EraPlan;
use super::supervisor::{Health, Run};
use super::{Backend, BackendError, BackendHandler, Identity, Resolved, lock, stdio};
use crate::config::Supervision;
use crate::config::{ServerConfig, Transport};
use crate::era::Era;
use crate::procinfo::{self, rss_kib};
use crate::sink::SessionId;

/// A running backend: its connection plus what is needed to stop it.
struct Instance {
    backend: Arc<Backend>,
    process: Stopper,
}

#[derive(Default)]
struct Slot {
    instance: tokio::sync::Mutex<Option<Instance>>,
    /// How many times an instance was started here.
    starts: std::sync::atomic::AtomicU32,
    health: Mutex<Health>,
    /// The last instance that failed to start, kept (until one starts) for
    /// `logs`: a server that crashes at start-up says why on its stderr.
    failed_start: Mutex<Option<Arc<Backend>>>,
    /// Set (under `instance`'s lock) when the slot is taken out of the pool: a
    /// caller that waited on that lock must not start an instance here, where
    /// nothing would ever see or stop it, but in the slot that replaced it.
    retired: std::sync::atomic::AtomicBool,
}

/// How an instance is stopped: a process tree, or an HTTP session.
enum Stopper {
    Process(stdio::ProcessHandle),
    Http(super::http::HttpHandle),
}

impl Stopper {
    async fn stop(&self, grace: Duration) {
        match self {
            Stopper::Process(process) => process.stop(grace).await,
            Stopper::Http(http) => http.stop().await,
        }
    }
}

/// One row of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub server: String,
    pub key: String,
    pub instance: String,
    /// 0 for the shared instance; 1 and up for the extra instances that
    /// calls asking a client run on while another's such call is in flight.
    pub lane: u32,
    pub sessions: usize,
    pub idle_secs: u64,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub uptime_secs: u64,
    pub in_flight: usize,
    pub progress_routes: usize,
    pub rss_kib: Option<u64>,
    /// The processes of the backend's process group (an `npx` server is
    /// `npm exec` plus `node`) and their resident memory together.
    pub processes: usize,
    pub tree_rss_kib: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Seconds until the next start is allowed (backing off, or breaker open).
    pub next_retry_secs: Option<f64>,
}

/// Every backend instance of the daemon, keyed by its [`Identity`] (server,
/// sharing key, definition).
pub struct BackendPool {
    slots: Mutex<HashMap<Identity, Arc<Slot>>>,
    handler: Arc<dyn BackendHandler>,
    startup_timeout: Mutex<Duration>,
    max_message_bytes: Mutex<usize>,
    supervision: Mutex<Supervision>,
    /// The era each server (by name and definition) was found to speak: asked
    /// once, at its first start, and remembered for the daemon's life, so that
    /// later starts (restarts, other sharing keys) do not ask again.
    eras: Mutex<HashMap<(String, String), Era>>,
}

impl BackendPool {
    pub fn new(handler: Arc<dyn BackendHandler>) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            handler,
            startup_timeout: Mutex::new(Duration::from_secs(60)),
            max_message_bytes: Mutex::new(crate::framing::DEFAULT_MAX_MESSAGE_BYTES),
            supervision: Mutex::new(Supervision::default()),
            eras: Mutex::new(HashMap::new()),
        }
    }

    /// Applies the restart policy from the config.
    pub fn set_supervision(&self, supervision: Supervision) {
        *lock(&self.supervision) = supervision;
    }

    pub fn supervision(&self) -> Supervision {
        lock(&self.supervision).clone()
    }

    /// Applies the limits from the config.
    pub fn set_limits(&self, startup_timeout: Duration, max_message_bytes: usize) {
        *crate::lock(&self.startup_timeout) = startup_timeout;
        *crate::lock(&self.max_message_bytes) = max_message_bytes;
    }

    fn slot(&self, identity: &Identity) -> Arc<Slot> {
        lock(&self.slots).entry(identity.clone()).or_default().clone()
    }

    /// The live backend for `identity`, spawning it first if needed.
    /// Concurrent callers wait for the one spawn. `listed_era` is the era its
    /// last listing recorded (perhaps by an earlier daemon), used when this
    /// pool has not started the definition yet.
    pub async fn get(
        &self,
        identity: &Identity,
        config: &ServerConfig,
        resolved: &Resolved,
        listed_era: Option<Era>,
    ) -> Result<Arc<Backend>, BackendError> {
        loop {
            let slot = self.slot(identity);
            let mut instance = slot.instance.lock().await;
            if slot.retired.load(Ordering::Acquire) {
                continue;
            }
            return self.get_in(&slot, &mut instance, identity, config, resolved, listed_era).await;
        }
    }

    /// [`Pool::get`] in its slot, whose instance lock the caller holds.
    async fn get_in(
        &self,
        slot: &Slot,
        instance: &mut Option<Instance>,
        identity: &Identity,
        config: &ServerConfig,
        resolved: &Resolved,
        listed_era: Option<Era>,
    ) -> Result<Arc<Backend>, BackendError> {
        let server = identity.server.as_str();
        if let Some(running) = instance.as_ref()
            && running.backend.is_alive()
        {
            // Used from now: the idle reaper checks this under the same lock.
            running.backend.touch();
            return Ok(running.backend.clone());
        }
        if let Some(dead) = instance.take() {
            // Reap what is left of the old process group before starting anew.
            dead.backend.mark_stopping();
            dead.process.stop(Duration::from_millis(200)).await;
        }
        lock(&slot.health).admit(server, Instant::now())?;
        let startup_timeout = *lock(&self.startup_timeout);
        let era_key = (identity.server.clone(), config.fingerprint());
        let remembered = lock(&self.eras).get(&era_key).copied().or(listed_era);
        let era = EraPlan::new(config.protocol, remembered);
        if config.transport == Transport::Http {
            slot.starts.fetch_add(1, Ordering::Relaxed);
            let connected =
                super::http::connect(identity.clone(), config, resolved, startup_timeout, self.handler.clone(), era)
                    .await;
            if let Ok((backend, _)) = &connected {
                lock(&self.eras).insert(era_key, backend.era());
            }
            return self.started(slot, instance, connected.map(|(b, h)| (b, Stopper::Http(h))));
        }
        let (docker, container) = match config.transport {
            Transport::Stdio | Transport::Http => (None, None),
            Transport::Docker => {
                let name = super::docker::container_name(identity);
                (Some(super::docker::run_command(resolved, &name)), Some(name))
            }
        };
        let options = stdio::SpawnOptions {
            identity: identity.clone(),
            config,
            resolved: docker.as_ref().unwrap_or(resolved),
            container,
            startup_timeout,
            max_message_bytes: *crate::lock(&self.max_message_bytes),
            handler: self.handler.clone(),
            era,
        };
        slot.starts.fetch_add(1, Ordering::Relaxed);
        let spawned = stdio::spawn(options).await.map_err(|failure| {
            if let Some(failed) = failure.instance {
                *lock(&slot.failed_start) = Some(failed);
            }
            failure.error
        });
        // The era is asked once per definition. A server that died on the
        // question (some exit on any first request but `initialize`) is of the
        // handshake era.
        match &spawned {
            Ok((backend, _)) => {
                lock(&self.eras).insert(era_key, backend.era());
            }
            Err(BackendError::Exited { .. } | BackendError::Closed { .. }) if era == EraPlan::Probe => {
                lock(&self.eras).insert(era_key, Era::Handshake);
            }
            // Remembered as of the handshake era, it refused `initialize`: it
            // may have become modern, so the next start asks again (a server
            // remembered as modern is always asked).
            Err(BackendError::Initialize { .. })
                if remembered == Some(Era::Handshake) && config.protocol == crate::config::Protocol::Auto =>
            {
                lock(&self.eras).insert(era_key, Era::Modern);
            }
            Err(_) => {}
        }
        self.started(slot, instance, spawned.map(|(b, p)| (b, Stopper::Process(p))))
    }

    /// Records a start attempt in the slot's restart record.
    fn started(
        &self,
        slot: &Slot,
        instance: &mut Option<Instance>,
        result: Result<(Arc<Backend>, Stopper), BackendError>,
    ) -> Result<Arc<Backend>, BackendError> {
        match result {
            Ok((backend, process)) => {
                lock(&slot.health).started();
                *lock(&slot.failed_start) = None;
                *instance = Some(Instance { backend: backend.clone(), process });
                Ok(backend)
            }
            Err(e) => {
                let policy = self.supervision();
                lock(&slot.health).failed(&policy, Instant::now(), Run::default(), e.to_string());
                Err(e)
            }
        }
    }

    /// An instance exited. Unless the gateway stopped it, that is a failure
    /// that counts towards backoff and the breaker.
    pub fn exited(&self, backend: &Backend) {
        // A start that failed was counted where it failed.
        if backend.is_stopping() || backend.initialize_result().is_null() {
            return;
        }
        let Some(slot) = lock(&self.slots).get(&backend.identity).cloned() else { return };
        let policy = self.supervision();
        let error = backend.exit_error().to_string();
        let run = Run { uptime: backend.started.elapsed(), served: backend.has_served() };
        lock(&slot.health).failed(&policy, Instant::now(), run, error);
    }

    /// Kills an instance that stopped answering; the exit counts as a failure
    /// and the next use starts a new one.
    pub async fn kill_unhealthy(&self, backend: &Backend, reason: String) {
        backend.set_fault(reason);
        let slot = lock(&self.slots).get(&backend.identity).cloned();
        if let Some(slot) = slot
            && let Some(instance) = slot.instance.lock().await.as_ref()
            && std::ptr::eq(Arc::as_ptr(&instance.backend), backend)
        {
            instance.process.stop(Duration::from_millis(500)).await;
        }
    }

    /// Every live backend.
    pub fn running_all(&self) -> Vec<Arc<Backend>> {
        let slots: Vec<Arc<Slot>> = crate::lock(&self.slots).values().cloned().collect();
        slots
            .iter()
            .filter_map(|slot| slot.instance.try_lock().ok()?.as_ref().map(|i| i.backend.clone()))
            .filter(|b| b.is_alive())
            .collect()
    }

    /// Every instance still held, running or exited (an exited one is kept
    /// until its next start or its slot is dropped), or else the last one that
    /// failed to start: what `logs` reads, so a crashed server's last words
    /// stay visible, also when it never got as far as answering `initialize`.
    pub fn instances(&self) -> Vec<Arc<Backend>> {
        let slots: Vec<Arc<Slot>> = crate::lock(&self.slots).values().cloned().collect();
        slots
            .iter()
            .filter_map(|slot| {
                let held = slot.instance.try_lock().ok().and_then(|i| i.as_ref().map(|i| i.backend.clone()));
                held.or_else(|| lock(&slot.failed_start).clone())
            })
            .collect()
    }

    /// The live backend of `identity` if one is running, for a request about
    /// to be sent; never spawns.
    pub fn running(&self, identity: &Identity) -> Option<Arc<Backend>> {
        let slot = lock(&self.slots).get(identity)?.clone();
        let instance = slot.instance.try_lock().ok()?;
        let backend = instance.as_ref().map(|i| i.backend.clone()).filter(|b| b.is_alive())?;
        // Used from now: the idle reaper checks this under the same lock.
        backend.touch();
        Some(backend)
    }

    /// Stops one instance (replaced) and forgets its slot.
    pub async fn stop(&self, identity: &Identity, grace: Duration) {
        self.stop_if(identity, grace, |_| true).await;
    }

    /// Stops `identity`'s instance if it is still idle for `limit` and not
    /// `busy`, checked under the lock a caller takes it with, so that no call
    /// that has just got it from [`Pool::get`] sees it stopped under it.
    /// Whether it stopped.
    pub async fn stop_idle(
        &self,
        identity: &Identity,
        limit: Duration,
        grace: Duration,
        busy: impl Fn(&Backend) -> bool,
    ) -> bool {
        self.stop_if(identity, grace, |b| b.idle_for() >= limit && !busy(b)).await
    }

    /// Retires `identity`'s slot and stops its instance when `stop` says so
    /// of it (or it has none).
    async fn stop_if(&self, identity: &Identity, grace: Duration, stop: impl Fn(&Backend) -> bool) -> bool {
        let Some(slot) = lock(&self.slots).get(identity).cloned() else { return false };
        let mut instance = slot.instance.lock().await;
        if slot.retired.load(Ordering::Acquire) || instance.as_ref().is_some_and(|i| !stop(&i.backend)) {
            return false;
        }
        slot.retired.store(true, Ordering::Release);
        {
            let mut slots = lock(&self.slots);
            if slots.get(identity).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                slots.remove(identity);
            }
        }
        let Some(taken) = instance.take() else { return false };
        drop(instance);
        taken.backend.mark_stopping();
        taken.process.stop(grace).await;
        true
    }

    /// Stops every instance of `server` (all sharing keys) and forgets their
    /// slots, so backoff and the breaker start afresh; the next call starts a
    /// new instance. Returns how many were running.
    pub async fn restart_server(&self, server: &str, grace: Duration) -> usize {
        let identities: Vec<Identity> =
            lock(&self.slots).keys().filter(|identity| identity.server == server).cloned().collect();
        let mut running = 0;
        for identity in identities {
            running += usize::from(self.running(&identity).is_some());
            self.stop(&identity, grace).await;
        }
        running
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
        let groups = procinfo::group_usages();
        let mut rows: Vec<BackendStatus> = slots
            .into_iter()
            .map(|(identity, slot)| {
                let mut row = BackendStatus {
                    server: identity.server,
                    key: identity.key.0,
                    instance: identity.instance,
                    lane: identity.lane,
                    sessions: 0,
                    idle_secs: 0,
                    state: "stopped",
                    pid: None,
                    uptime_secs: 0,
                    in_flight: 0,
                    progress_routes: 0,
                    rss_kib: None,
                    processes: 0,
                    tree_rss_kib: None,
                    restarts: slot.starts.load(Ordering::Relaxed).saturating_sub(1),
                    last_exit: None,
                    next_retry_secs: None,
                };
                let now = Instant::now();
                {
                    let health = lock(&slot.health);
                    row.last_exit = health.last_error().map(str::to_string);
                    row.next_retry_secs = health.next_retry_secs(now);
                    if let Some(state) = health.state(now) {
                        row.state = state;
                    }
                }
                match slot.instance.try_lock() {
                    Ok(instance) => {
                        if let Some(i) = instance.as_ref() {
                            let b = &i.backend;
                            if b.is_alive() {
                                row.state = if b.in_flight().0 > 0 { "busy" } else { "idle" };
                            } else if row.next_retry_secs.is_none() {
                                row.state = "exited";
                            }
                            row.pid = b.pid.filter(|_| b.is_alive());
                            row.uptime_secs = b.started.elapsed().as_secs();
                            (row.in_flight, row.progress_routes) = b.in_flight();
                            row.sessions = lock(&b.users).len();
                            row.idle_secs = b.idle_for().as_secs();
                            row.rss_kib = row.pid.and_then(rss_kib);
                            if let Some(group) = row.pid.and_then(|pid| groups.get(&pid)) {
                                (row.processes, row.tree_rss_kib) = (group.processes, Some(group.rss_kib));
                            }
                            row.last_exit = row.last_exit.take().or_else(|| b.exit_status());
                        }
                    }
                    Err(_) => row.state = "starting",
                }
                row
            })
            .collect();
        rows.sort_by(|a, b| (&a.server, &a.key, &a.instance, a.lane).cmp(&(&b.server, &b.key, &b.instance, b.lane)));
        rows
    }

    /// Stops every backend: SIGTERM to each process group, up to `grace` to exit,
    /// then SIGKILL for what is left.
    pub async fn shutdown(&self, grace: Duration) {
        let slots: Vec<Arc<Slot>> = {
            let mut slots = crate::lock(&self.slots);
            slots.drain().map(|(_, slot)| slot).collect()
        };
        let mut stops = Vec::new();
        for slot in slots {
            stops.push(async move {
                let mut instance = slot.instance.lock().await;
                slot.retired.store(true, Ordering::Release);
                if let Some(instance) = instance.take() {
                    instance.backend.mark_stopping();
                    instance.process.stop(grace).await;
                }
            });
        }
        futures_util::future::join_all(stops).await;
    }
}
