//! The gateway as a whole: config, backends, listings, the catalog and the sessions.
//!
//! Sessions ask the router for "the backend of server S for me"; the router decides
//! the sharing key, asks the pool, and keeps the aggregated catalog current when
//! backends report that their lists changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::backend::pending::{SessionId, SessionSink};
use crate::backend::{Backend, BackendError, BackendHandler, BackendPool, SharingKey};
use crate::catalog::{Catalog, CatalogInput, ListingCache, ServerListing};
use crate::config::{Config, ServerConfig};
use crate::jsonrpc;
use crate::preamble::ClientEnv;

mod logging;
mod server_requests;
mod subscriptions;
mod tasks;

pub use logging::LogLevel;

/// The notifications that tell clients to list again.
const LIST_CHANGED: [&str; 3] =
    ["notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"];

/// Which parts of a server's listing changed.
#[derive(Debug, Clone, Copy, Default)]
struct Changes {
    tools: bool,
    prompts: bool,
    resources: bool,
}

impl Changes {
    fn between(old: Option<&ServerListing>, new: &ServerListing) -> Changes {
        match old {
            None => Changes { tools: true, prompts: true, resources: true },
            Some(old) => Changes {
                tools: old.tools != new.tools,
                prompts: old.prompts != new.prompts,
                resources: old.resources != new.resources || old.resource_templates != new.resource_templates,
            },
        }
    }

    fn any(self) -> bool {
        self.tools || self.prompts || self.resources
    }
}

/// What the router knows about a connected session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub sink: SessionSink,
    pub cwd: Option<PathBuf>,
    pub profile: Option<String>,
    pub client_pid: Option<u32>,
    /// The environment the client ran in (a credential source; never shown).
    pub env: ClientEnv,
    pub client_name: Option<String>,
    /// The protocol version negotiated in `initialize`.
    pub protocol_version: Option<String>,
    /// What the client declared in `initialize` (sampling, elicitation, roots…).
    pub capabilities: Value,
    /// The level set with `logging/setLevel`; no log messages reach a session without one.
    pub log_level: Option<LogLevel>,
    pub connected: Instant,
}

/// A listing in memory, with where it came from.
struct LiveListing {
    fingerprint: String,
    listing: Arc<ServerListing>,
    /// The pid of the backend it was taken from; `None` when loaded from the disk cache.
    source_pid: Option<u32>,
}

pub struct Gateway {
    config: RwLock<Arc<Config>>,
    pool: BackendPool,
    disk_cache: Mutex<ListingCache>,
    listings: Mutex<HashMap<String, LiveListing>>,
    /// One listing fetch at a time per server, so N sessions listing at once cause one spawn.
    listing_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    catalog: Mutex<Option<Arc<Catalog>>>,
    sessions: Mutex<HashMap<SessionId, SessionInfo>>,
    next_session: AtomicU64,
    server_requests: server_requests::ServerRequests,
    subscriptions: subscriptions::Subscriptions,
    tasks: tasks::Tasks,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gateway {
    /// Creates the gateway; backends report back to it through [`Hooks`].
    pub fn new(config: Config, cache: ListingCache) -> Arc<Gateway> {
        Arc::new_cyclic(|gateway| {
            let pool = BackendPool::new(Arc::new(Hooks { gateway: gateway.clone() }));
            pool.set_limits(Duration::from_secs(config.startup_timeout_secs), config.max_message_bytes);
            Gateway {
                config: RwLock::new(Arc::new(config)),
                pool,
                disk_cache: Mutex::new(cache),
                listings: Mutex::new(HashMap::new()),
                listing_locks: Mutex::new(HashMap::new()),
                catalog: Mutex::new(None),
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                server_requests: Default::default(),
                subscriptions: Default::default(),
                tasks: Default::default(),
                started: Instant::now(),
            }
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The enabled servers, in config order.
    fn servers(&self) -> Vec<(String, ServerConfig)> {
        self.config().servers.iter().filter(|(_, s)| s.enabled).map(|(n, s)| (n.clone(), s.clone())).collect()
    }

    fn server(&self, name: &str) -> Option<ServerConfig> {
        self.config().servers.get(name).filter(|s| s.enabled).cloned()
    }

    // ---- sessions ----

    pub fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register_session(&self, info: SessionInfo) {
        lock(&self.sessions).insert(info.id, info);
    }

    /// Records what the client said about itself in `initialize`.
    pub fn set_client_info(&self, id: SessionId, name: Option<String>, version: &str, capabilities: Value) {
        if let Some(info) = lock(&self.sessions).get_mut(&id) {
            info.client_name = name;
            info.protocol_version = Some(version.to_string());
            info.capabilities = capabilities;
        }
    }

    /// A session's current record.
    pub fn session(&self, id: SessionId) -> Option<SessionInfo> {
        lock(&self.sessions).get(&id).cloned()
    }

    /// Forgets a session and everything that was pending for it: requests the
    /// backends sent it are answered with an error, its subscriptions are dropped
    /// (unsubscribing where it was the last subscriber), its log level no longer counts.
    pub fn unregister_session(self: &Arc<Self>, id: SessionId) {
        lock(&self.sessions).remove(&id);
        self.drop_server_requests_of_session(id);
        self.drop_tasks_of_session(id);
        self.sync_log_levels();
        let gateway = self.clone();
        tokio::spawn(async move { gateway.drop_subscriptions_of_session(id).await });
    }

    /// The sessions that share `backend` (whose sharing key for its server is the backend's).
    fn sessions_of(&self, backend: &Backend) -> Vec<SessionInfo> {
        let Some(config) = self.server(&backend.server) else { return Vec::new() };
        let sessions: Vec<SessionInfo> = lock(&self.sessions).values().cloned().collect();
        sessions.into_iter().filter(|s| self.sharing_key(&config, Some(s)) == backend.key).collect()
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

    // ---- backends ----

    /// The sharing key of `server` for a session. Every server is shared globally
    /// for now; the pool is keyed by `(server, key)` so other modes slot in here.
    fn sharing_key(&self, _server: &ServerConfig, _session: Option<&SessionInfo>) -> SharingKey {
        SharingKey::global()
    }

    /// The live backend of `server` for a session, started if needed.
    pub async fn backend(
        self: &Arc<Self>,
        server: &str,
        session: Option<&SessionInfo>,
    ) -> Result<Arc<Backend>, BackendError> {
        let config = self.server(server).ok_or_else(|| BackendError::Config {
            server: server.to_string(),
            message: "no such server is configured (or it is disabled)".into(),
        })?;
        let key = self.sharing_key(&config, session);
        let backend = self.pool.get(server, &config, &key).await?;
        self.refresh_if_stale(server, &config, &backend);
        self.sync_log_level(&backend);
        Ok(backend)
    }

    /// When the listing in use was not taken from this very backend (it came from
    /// the disk cache or an earlier instance), re-list in the background and tell
    /// sessions if anything changed.
    fn refresh_if_stale(self: &Arc<Self>, server: &str, config: &ServerConfig, backend: &Arc<Backend>) {
        let stale = lock(&self.listings)
            .get(server)
            // No listing yet: the listing path is taking one from this backend.
            .is_some_and(|l| l.fingerprint != config.fingerprint() || l.source_pid != backend.pid);
        if stale {
            let gateway = self.clone();
            let server = server.to_string();
            let backend = backend.clone();
            tokio::spawn(async move {
                match gateway.relist(&server, &backend, None).await {
                    Ok((_, changes)) => gateway.announce(changes),
                    Err(e) => debug!(server, error = %e, "background re-listing failed"),
                }
            });
        }
    }

    /// Tells every session which lists changed.
    fn announce(&self, changes: Changes) {
        let parts = [changes.tools, changes.prompts, changes.resources];
        for (method, changed) in LIST_CHANGED.iter().zip(parts) {
            if changed {
                self.broadcast(&jsonrpc::notification(method, Value::Null));
            }
        }
    }

    /// Forwards a request to `server` and returns the backend's response object.
    /// On a `serialize: true` server it waits for its turn first. A request that
    /// takes longer than the request timeout fails, and the backend is told it was
    /// cancelled (dropping the request future does that).
    pub async fn forward(
        self: &Arc<Self>,
        server: &str,
        method: &str,
        params: Value,
        session: &SessionInfo,
    ) -> Result<Value, BackendError> {
        let secs = self
            .server(server)
            .and_then(|c| c.request_timeout_secs)
            .unwrap_or_else(|| self.config().request_timeout_secs);
        let call = async {
            let backend = self.backend(server, Some(session)).await?;
            let _turn = backend.turn().await;
            backend.request(method, params, Some(&session.sink)).await
        };
        match tokio::time::timeout(Duration::from_secs(secs), call).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout { server: server.to_string(), secs }),
        }
    }

    // ---- listings and the catalog ----

    fn listing_lock(&self, server: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.listing_locks).entry(server.to_string()).or_default().clone()
    }

    /// What `server` offers: from memory, else from the disk cache (without starting
    /// it), else by starting it and listing everything.
    pub async fn listing(self: &Arc<Self>, server: &str) -> Result<Arc<ServerListing>, BackendError> {
        let config = self.server(server).ok_or_else(|| BackendError::Config {
            server: server.to_string(),
            message: "no such server is configured (or it is disabled)".into(),
        })?;
        let fingerprint = config.fingerprint();
        let known = |gateway: &Gateway| {
            lock(&gateway.listings).get(server).filter(|l| l.fingerprint == fingerprint).map(|l| l.listing.clone())
        };
        if let Some(listing) = known(self) {
            return Ok(listing);
        }
        let fetch = self.listing_lock(server);
        let _one_at_a_time = fetch.lock().await;
        if let Some(listing) = known(self) {
            return Ok(listing);
        }
        if let Some(listing) = lock(&self.disk_cache).get(server, &fingerprint) {
            debug!(server, "listing answered from the catalog cache");
            lock(&self.listings)
                .insert(server.to_string(), LiveListing { fingerprint, listing: listing.clone(), source_pid: None });
            return Ok(listing);
        }
        let key = self.sharing_key(&config, None);
        let backend = self.pool.get(server, &config, &key).await?;
        Ok(self.relist(server, &backend, Some(&fingerprint)).await?.0)
    }

    /// Lists everything a running backend offers and stores it.
    async fn relist(
        self: &Arc<Self>,
        server: &str,
        backend: &Backend,
        fingerprint: Option<&str>,
    ) -> Result<(Arc<ServerListing>, Changes), BackendError> {
        let fingerprint = match fingerprint {
            Some(f) => f.to_string(),
            None => self.server(server).map(|c| c.fingerprint()).unwrap_or_default(),
        };
        let listing = Arc::new(fetch_listing(backend).await?);
        let changed = {
            let mut listings = lock(&self.listings);
            let changed = Changes::between(listings.get(server).map(|old| &*old.listing), &listing);
            listings.insert(
                server.to_string(),
                LiveListing { fingerprint: fingerprint.clone(), listing: listing.clone(), source_pid: backend.pid },
            );
            changed
        };
        if changed.any() {
            lock(&self.disk_cache).put(server, &fingerprint, &listing);
            *lock(&self.catalog) = None;
        }
        Ok((listing, changed))
    }

    /// Re-lists after a backend said its lists changed, then tells every session
    /// if anything did change (servers also send it once at start-up).
    async fn on_list_changed(self: &Arc<Self>, server: &str, method: &str) {
        let Some(backend) = self.server(server).and_then(|c| self.pool.running(server, &self.sharing_key(&c, None)))
        else {
            return;
        };
        match self.relist(server, &backend, None).await {
            Ok((_, changes)) => {
                if !changes.any() {
                    debug!(server, "{method} without a change");
                }
                self.announce(changes);
            }
            Err(e) => warn!(server, error = %e, "could not re-list after {method}"),
        }
    }

    /// The aggregated catalog across every enabled server. Servers that cannot be
    /// listed are left out (and logged); the catalog is then not kept, so the next
    /// request tries them again.
    pub async fn catalog(self: &Arc<Self>) -> Arc<Catalog> {
        if let Some(catalog) = lock(&self.catalog).clone() {
            return catalog;
        }
        let servers = self.servers();
        let results = futures_util::future::join_all(servers.iter().map(|(name, _)| self.listing(name))).await;
        let mut complete = true;
        let mut listings = Vec::new();
        for ((name, config), result) in servers.iter().zip(results) {
            match result {
                Ok(listing) => listings.push((name.as_str(), config.prefix, listing)),
                Err(e) => {
                    complete = false;
                    warn!(server = name, error = %e, "server left out of the catalog");
                }
            }
        }
        let inputs: Vec<CatalogInput<'_>> = listings
            .iter()
            .map(|(server, prefix, listing)| CatalogInput { server, prefix: *prefix, listing })
            .collect();
        let catalog = Arc::new(Catalog::build(&inputs));
        if complete {
            *lock(&self.catalog) = Some(catalog.clone());
        }
        catalog
    }

    /// The listings already known without starting anything, in config order.
    pub fn known_listings(&self) -> Vec<(String, Arc<ServerListing>)> {
        let listings = lock(&self.listings);
        let cache = lock(&self.disk_cache);
        self.servers()
            .into_iter()
            .filter_map(|(name, config)| {
                let fingerprint = config.fingerprint();
                let listing = listings
                    .get(&name)
                    .filter(|l| l.fingerprint == fingerprint)
                    .map(|l| l.listing.clone())
                    .or_else(|| cache.get(&name, &fingerprint))?;
                Some((name, listing))
            })
            .collect()
    }

    // ---- status and shutdown ----

    pub fn status(&self) -> Value {
        let sessions: Vec<Value> = {
            let sessions = lock(&self.sessions);
            let mut rows: Vec<&SessionInfo> = sessions.values().collect();
            rows.sort_by_key(|s| s.id);
            rows.iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "client": s.client_name,
                        "client_pid": s.client_pid,
                        "protocol_version": s.protocol_version,
                        "log_level": s.log_level.map(LogLevel::as_str),
                        "cwd": s.cwd,
                        "profile": s.profile,
                        "connected_secs": s.connected.elapsed().as_secs(),
                    })
                })
                .collect()
        };
        json!({
            "version": crate::VERSION,
            "pid": std::process::id(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "servers": self.config().servers.keys().collect::<Vec<_>>(),
            "backends": self.pool.status(),
            "sessions": sessions,
            "pending": {
                "server_requests": self.server_requests.len(),
                "subscriptions": self.subscriptions.len(),
                "tasks": self.tasks.len(),
            },
        })
    }

    /// Stops every backend (SIGTERM, grace, SIGKILL).
    pub async fn shutdown_backends(&self) {
        let grace = Duration::from_secs(self.config().shutdown_grace_secs);
        info!(?grace, "stopping backends");
        self.pool.shutdown(grace).await;
    }
}

/// The gateway's side of [`BackendHandler`]; weak, so backends do not keep the
/// gateway alive.
struct Hooks {
    gateway: std::sync::Weak<Gateway>,
}

impl BackendHandler for Hooks {
    fn on_request(&self, backend: &Arc<Backend>, message: Value) {
        if let Some(gateway) = self.gateway.upgrade() {
            gateway.route_server_request(backend, message);
        }
    }

    fn on_notification(&self, backend: &Arc<Backend>, message: Value) {
        let Some(gateway) = self.gateway.upgrade() else { return };
        let method = jsonrpc::method(&message).to_string();
        match method.as_str() {
            "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed" => {
                let server = backend.server.clone();
                tokio::spawn(async move { gateway.on_list_changed(&server, &method).await });
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
            gateway.drop_server_requests_of_backend(backend);
        }
    }
}

/// Calls a paginated list method until the backend has no next page.
async fn list_all(backend: &Backend, method: &str, field: &str) -> Result<Vec<Value>, BackendError> {
    const MAX_PAGES: usize = 1000;
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let response = backend.request(method, params, None).await?;
        let Some(result) = response.get("result") else {
            let message = response.pointer("/error/message").and_then(Value::as_str).unwrap_or("no result");
            warn!(server = %backend.server, method, message, "backend refused a list request");
            break;
        };
        items.extend(result.get(field).and_then(Value::as_array).cloned().unwrap_or_default());
        cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() {
            break;
        }
    }
    Ok(items)
}

async fn fetch_listing(backend: &Backend) -> Result<ServerListing, BackendError> {
    let mut listing = ServerListing { initialize: backend.initialize_result().clone(), ..Default::default() };
    if listing.has_capability("tools") {
        listing.tools = list_all(backend, "tools/list", "tools").await?;
    }
    if listing.has_capability("prompts") {
        listing.prompts = list_all(backend, "prompts/list", "prompts").await?;
    }
    if listing.has_capability("resources") {
        listing.resources = list_all(backend, "resources/list", "resources").await?;
        listing.resource_templates = list_all(backend, "resources/templates/list", "resourceTemplates").await?;
    }
    Ok(listing)
}
