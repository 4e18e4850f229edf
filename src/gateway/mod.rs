//! The gateway as a whole: config, backends, listings, the catalog and the sessions.
//!
//! Sessions ask the gateway for "the backend of server S for me"; it decides
//! the sharing key, asks the pool, and keeps the aggregated catalog current when
//! backends report that their lists changed.

use crate::lock;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{debug, info};

use crate::backend::{Backend, BackendHandler, BackendPool};
use crate::catalog::{ListingCache, NameBudget};
use crate::config::Config;
use crate::credentials::{EnvFiles, Hasher};
use crate::jsonrpc;
use crate::preamble::ClientEnv;
use crate::sink::{SessionId, SessionSink};
use crate::workspace::WorkspaceFiles;

mod asking;
mod commands;
mod elicited_logins;
mod forward;
mod listings;
mod logging;
mod reaper;
mod reload;
mod resolve;
mod server_requests;
mod status;
mod subscriptions;
mod tasks;
#[cfg(test)]
mod tests;

pub use commands::Asker;
pub use logging::LogLevel;
pub(crate) use server_requests::{missing_capability, required_capabilities, unanswerable_message};

/// What the gateway knows about a connected session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub sink: SessionSink,
    pub cwd: Option<PathBuf>,
    /// The workspace root found from `cwd`.
    pub workspace: PathBuf,
    pub profile: Option<String>,
    pub client_pid: Option<u32>,
    /// The environment the client ran in (a credential source; never shown).
    pub env: ClientEnv,
    pub client_name: Option<String>,
    /// The name of the client's config entry that runs the shim (its
    /// `--entry`), when it said; the client puts it in front of tool names.
    pub entry: Option<String>,
    /// How long the names this session is shown may be, for its client and
    /// entry (set with what it says in `initialize`).
    pub name_budget: NameBudget,
    /// The protocol version negotiated in `initialize`.
    pub protocol_version: Option<String>,
    /// What the client declared in `initialize` (sampling, elicitation, roots…).
    pub capabilities: Value,
    /// The level set with `logging/setLevel`; no log messages reach a session without one.
    pub log_level: Option<LogLevel>,
    pub connected: Instant,
}

/// Where a session works, as [`Gateway::session_context`] resolved it from
/// the client's directory and requested profile.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The directory as the client gave it.
    pub cwd: Option<PathBuf>,
    /// The workspace root found from `cwd`.
    pub workspace: PathBuf,
    pub profile: Option<String>,
}

impl SessionInfo {
    /// The one way a session's record is made (a socket session, one of the
    /// HTTP front door, the probe of `servers add --test`). What the client
    /// says of itself in its handshake starts empty ([`Gateway::set_client_info`]).
    pub fn new(sink: SessionSink, context: SessionContext, client_pid: Option<u32>, env: ClientEnv) -> Self {
        Self {
            id: sink.id,
            sink,
            cwd: context.cwd,
            workspace: context.workspace,
            profile: context.profile,
            client_pid,
            env,
            client_name: None,
            entry: None,
            name_budget: NameBudget::DEFAULT,
            protocol_version: None,
            capabilities: Value::Null,
            log_level: None,
            connected: Instant::now(),
        }
    }
}

/// Where the config says OAuth token material goes.
fn token_store(config: &Config) -> crate::oauth::TokenStore {
    match config.oauth_store {
        crate::config::OAuthStore::Files => crate::oauth::TokenStore::Files,
        crate::config::OAuthStore::Keyring => crate::oauth::TokenStore::Keyring,
    }
}

pub struct Gateway {
    config: RwLock<Arc<Config>>,
    /// `--config` as given (else the config is looked up again on each reload).
    explicit_config: Option<PathBuf>,
    /// Why the file on disk is not the config in force, if it is not.
    config_error: Mutex<Option<String>>,
    /// Since when the config file has been seen empty (or gone) while a
    /// non-empty config is in force: a save may be half-way (see `reload`).
    empty_config_since: Mutex<Option<std::time::Instant>>,
    /// The gateway `.env`, beside the config file.
    gateway_env: PathBuf,
    pool: BackendPool,
    listings: listings::Listings,
    env_files: EnvFiles,
    workspace_files: WorkspaceFiles,
    hasher: Hasher,
    /// Each session's resolved instances, while their sources are unchanged.
    resolutions: resolve::Resolutions,
    /// The OAuth client of every remote server that needs a login.
    oauth: Arc<crate::oauth::Manager>,
    /// Logins under way that clients were sent to by URL elicitation.
    elicited_logins: elicited_logins::ElicitedLogins,
    watcher: std::sync::OnceLock<Arc<crate::watch::Watcher>>,
    /// Where the HTTP front door listens, once it does.
    pub http_addr: std::sync::OnceLock<std::net::SocketAddr>,
    sessions: Mutex<HashMap<SessionId, SessionInfo>>,
    next_session: AtomicU64,
    server_requests: server_requests::ServerRequests,
    asking: asking::Asking,
    subscriptions: subscriptions::Subscriptions,
    tasks: tasks::Tasks,
    started: Instant,
}

impl Gateway {
    /// Creates the gateway (backends report back to it through [`Hooks`]) and
    /// its idle reaper. `config_path` locates the gateway `.env`.
    pub fn new(
        config: Config,
        config_path: &std::path::Path,
        explicit_config: Option<PathBuf>,
        cache: ListingCache,
    ) -> Arc<Gateway> {
        crate::workspace::check_mappings(&config);
        let oauth = Arc::new(crate::oauth::Manager::new(crate::paths::oauth_dir()));
        oauth.set_token_store(token_store(&config));
        let gateway = Arc::new_cyclic(|gateway| {
            let pool = BackendPool::new(Arc::new(Hooks { gateway: gateway.clone() }));
            pool.set_limits(Duration::from_secs(config.startup_timeout_secs), config.max_message_bytes);
            pool.set_supervision(config.supervision.clone());
            Gateway {
                config: RwLock::new(Arc::new(config)),
                explicit_config,
                config_error: Mutex::new(None),
                empty_config_since: Mutex::new(None),
                gateway_env: crate::paths::gateway_dotenv(config_path),
                pool,
                listings: listings::Listings::new(cache),
                env_files: EnvFiles::default(),
                workspace_files: WorkspaceFiles::default(),
                hasher: Hasher::new(),
                resolutions: Default::default(),
                oauth,
                elicited_logins: Default::default(),
                watcher: std::sync::OnceLock::new(),
                http_addr: std::sync::OnceLock::new(),
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                server_requests: Default::default(),
                asking: Default::default(),
                subscriptions: Default::default(),
                tasks: Default::default(),
                started: Instant::now(),
            }
        });
        tokio::spawn(reaper::run(Arc::downgrade(&gateway)));
        gateway
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The config file the gateway loads (and installs into).
    pub fn config_path(&self) -> PathBuf {
        crate::paths::config_location(self.explicit_config.as_deref()).path
    }

    /// The server catalog: shipped, plus the user's `catalog.yaml` beside the config.
    pub fn registry(&self) -> crate::registry::Registry {
        let path = self.config_path();
        crate::registry::load(&path.with_file_name("catalog.yaml"))
    }

    /// Names of servers with a running instance.
    pub fn running_servers(&self) -> std::collections::HashSet<String> {
        self.pool.running_all().iter().map(|b| b.server.clone()).collect()
    }

    /// A fresh, unguessable confirmation code.
    pub fn confirmation_code(&self) -> String {
        self.unguessable_id("confirmation", 8)
    }

    /// `len` hex digits no outsider can predict: a keyed hash (under the key
    /// made at daemon start) of the time and a counter.
    pub fn unguessable_id(&self, purpose: &str, len: usize) -> String {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nonce = format!("{:?}/{count}", std::time::SystemTime::now());
        let mut id = String::new();
        for part in 0u32.. {
            if id.len() >= len {
                break;
            }
            id.push_str(&self.hasher.digest([nonce.as_str(), purpose, &part.to_string()]));
        }
        id.truncate(len);
        id
    }

    // ---- sessions ----

    pub fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Gives the gateway the file watcher, which it tells about the
    /// workspaces sessions enter and leave.
    pub fn set_watcher(&self, watcher: Arc<crate::watch::Watcher>) {
        let _ = self.watcher.set(watcher);
    }

    pub fn register_session(&self, info: SessionInfo) {
        if let Some(watcher) = self.watcher.get() {
            watcher.enter(&info.workspace);
        }
        lock(&self.sessions).insert(info.id, info);
    }

    /// Records what the client said about itself in `initialize`, and so
    /// the room its names have.
    pub fn set_client_info(&self, id: SessionId, name: Option<String>, version: &str, capabilities: Value) {
        if let Some(info) = lock(&self.sessions).get_mut(&id) {
            info.name_budget = NameBudget::for_client(name.as_deref(), info.entry.as_deref());
            info.client_name = name;
            info.protocol_version = Some(version.to_string());
            info.capabilities = capabilities;
        }
    }

    /// A session's current record.
    pub fn session(&self, id: SessionId) -> Option<SessionInfo> {
        lock(&self.sessions).get(&id).cloned()
    }

    /// The room a session's names have, as its record says now (not copying
    /// the record: this is read on every routed request).
    fn name_budget(&self, session: &SessionInfo) -> NameBudget {
        lock(&self.sessions).get(&session.id).map_or(session.name_budget, |s| s.name_budget)
    }

    /// Forgets a session and everything that was pending for it: requests the
    /// backends sent it are answered with an error, its subscriptions are dropped
    /// (unsubscribing where it was the last subscriber), its log level no longer counts.
    pub fn unregister_session(self: &Arc<Self>, id: SessionId) {
        let gone = {
            let mut sessions = lock(&self.sessions);
            let gone = sessions.remove(&id);
            shrink_as_it_drains(&mut sessions);
            gone
        };
        self.forget_session_catalog(id);
        self.forget_resolutions(id);
        if let (Some(watcher), Some(gone)) = (self.watcher.get(), gone) {
            watcher.leave(&gone.workspace);
        }
        self.pool.detach(id);
        self.drop_server_requests_of_session(id);
        self.drop_tasks_of_session(id);
        self.sync_log_levels();
        let gateway = self.clone();
        tokio::spawn(async move { gateway.drop_subscriptions_of_session(id).await });
    }

    /// What `pick` takes from each connected session that uses `backend`,
    /// without copying the sessions: this runs on every call.
    fn of_sessions_using<T>(&self, backend: &Backend, pick: impl FnMut(&SessionInfo) -> T) -> Vec<T> {
        let users = backend.users();
        lock(&self.sessions).values().filter(|s| users.contains(&s.id)).map(pick).collect()
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    fn broadcast(&self, message: &Value) {
        let sinks: Vec<SessionSink> = lock(&self.sessions).values().map(|s| s.sink.clone()).collect();
        for sink in sinks {
            sink.send(message.clone());
        }
    }

    // ---- status and shutdown ----

    /// Stops every backend (SIGTERM, grace, SIGKILL).
    pub async fn shutdown_backends(&self) {
        let grace = Duration::from_secs(self.config().shutdown_grace_secs);
        info!(?grace, "stopping backends");
        self.pool.shutdown(grace).await;
    }
}

/// Gives back the room of a map that has drained: a map keeps the capacity
/// its busiest moment needed, and the sessions map of 1,000 sessions held
/// 0.6 MB after they had all left (`mcpbench idle`). Halving it whenever it
/// is under a quarter full costs a rehash per halving, so a drain of n
/// sessions moves O(n) entries in all, and a map at a steady size is never
/// rehashed.
fn shrink_as_it_drains<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// The gateway's side of [`BackendHandler`]; weak, so backends do not keep the
/// gateway alive.
struct Hooks {
    gateway: std::sync::Weak<Gateway>,
}

impl BackendHandler for Hooks {
    fn on_request(&self, backend: &Arc<Backend>, message: Value, origin: Option<SessionId>) {
        if let Some(gateway) = self.gateway.upgrade() {
            gateway.route_server_request(backend, message, origin);
        }
    }

    fn on_notification(&self, backend: &Arc<Backend>, message: Value) {
        let Some(gateway) = self.gateway.upgrade() else { return };
        let method = jsonrpc::method(&message).to_string();
        match method.as_str() {
            "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed" => {
                let backend = backend.clone();
                tokio::spawn(async move { gateway.on_list_changed(&backend, &method).await });
            }
            "notifications/message" => gateway.route_log_message(backend, message),
            "notifications/resources/updated" => gateway.route_resource_update(backend, message),
            "notifications/cancelled" => gateway.on_backend_cancelled(backend, jsonrpc::params(&message)),
            "notifications/elicitation/complete" => gateway.route_elicitation_complete(backend, message),
            "notifications/tasks/status" => gateway.route_task_status(backend, message),
            _ => debug!(server = %backend.server, method, "dropped a backend notification"),
        }
    }

    fn on_exit(&self, backend: &Arc<Backend>) {
        if let Some(gateway) = self.gateway.upgrade() {
            gateway.pool.exited(backend);
            gateway.drop_server_requests_of_backend(backend);
        }
    }
}
