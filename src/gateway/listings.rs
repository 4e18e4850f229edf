//! What each server offers (its listing) and the catalog a session sees.
//!
//! A listing is taken once per server definition, kept in memory and on disk,
//! and refreshed when the backend says its lists changed, or (a modern server
//! that gives its lists a `ttlMs`) once that has passed and the server is used. A session's catalog is
//! built from the listings of the servers it sees and cached per server set.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{debug, warn};

use super::{Gateway, SessionInfo, lock};
use crate::backend::{Backend, BackendError};
use crate::catalog::{Catalog, CatalogInput, ListingCache, ServerListing, may_expose};
use crate::config::ServerConfig;
use crate::jsonrpc;

/// The notifications that tell clients to list again.
const LIST_CHANGED: [&str; 3] =
    ["notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"];

/// Which parts of a server's listing changed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Changes {
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

/// A listing in memory, with where it came from.
struct LiveListing {
    listing: Arc<ServerListing>,
    /// Whether it was taken from a running backend (else: from the disk cache).
    from_backend: bool,
    /// Until when the server said its lists stay fresh (`ttlMs`), if it did.
    fresh_until: Option<Instant>,
    /// When its fetch started (see [`Listings::started`]); 0 from the disk cache.
    started: u64,
}

/// The longest a server's `ttlMs` is believed (as the SDKs clamp it).
const LONGEST_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a re-listing after a `list_changed` waits for the rest of a
/// burst of them (server-everything's four at start-up come within a
/// millisecond or two, each written on its own).
const BURST: Duration = Duration::from_millis(10);

/// `(server name, definition fingerprint)`.
type ListingKey = (String, String);

pub(super) struct Listings {
    disk: Mutex<ListingCache>,
    live: Mutex<HashMap<ListingKey, LiveListing>>,
    /// One fetch at a time per listing, so N sessions listing at once cause one spawn.
    fetching: Mutex<HashMap<ListingKey, Arc<tokio::sync::Mutex<()>>>>,
    /// First listings under way for a catalog, as tasks of their own: they go
    /// on when the request that started them has stopped waiting (see [`Wait`]).
    first_fetches: Mutex<HashMap<ListingKey, FirstFetch>>,
    /// Catalogs by the exact set of servers they were built from.
    catalogs: Mutex<Catalogs>,
    /// Re-listings after a `list_changed` under way, by backend (its `Arc`'s
    /// address), each with whether another notice came in since its fetch
    /// started: those ask for one more re-listing after it, not one each. A
    /// server that registers its tools one by one says `list_changed` for each
    /// (server-everything: four at start-up), which made five listings of
    /// every kind where two do (the first, and one after the notices).
    relisting: Mutex<HashMap<usize, bool>>,
    /// Numbers fetches in the order they start. Two can overlap (the first
    /// listing, and the re-listing after a `list_changed` the server sent
    /// meanwhile) and finish in either order: only a later-started one may
    /// replace a stored listing, or the older answer would undo the change.
    fetches: std::sync::atomic::AtomicU64,
}

impl Listings {
    pub(super) fn new(disk: ListingCache) -> Self {
        Self {
            disk: Mutex::new(disk),
            live: Mutex::default(),
            fetching: Mutex::default(),
            first_fetches: Mutex::default(),
            catalogs: Mutex::default(),
            relisting: Mutex::default(),
            fetches: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn known(&self, key: &ListingKey) -> Option<Arc<ServerListing>> {
        lock(&self.live).get(key).map(|l| l.listing.clone())
    }

    /// In memory, else from the disk cache (without starting anything).
    fn cached(&self, key: &ListingKey) -> Option<Arc<ServerListing>> {
        if let Some(listing) = self.known(key) {
            return Some(listing);
        }
        let listing = lock(&self.disk).get(&key.0, &key.1)?;
        let live = LiveListing { listing: listing.clone(), from_backend: false, fresh_until: None, started: 0 };
        lock(&self.live).insert(key.clone(), live);
        Some(listing)
    }
}

/// Catalogs by the exact set of servers they were built from (and the name
/// budget they were built for), with a count of
/// the changes that emptied them: a catalog built from listings gathered
/// before a change (a slow first listing overtaken by a re-listing after
/// `list_changed`) is handed to its own request but never stored, so no stale
/// catalog outlives the change that made it stale.
#[derive(Default)]
struct Catalogs {
    built: HashMap<String, Arc<Catalog>>,
    generation: u64,
    /// The catalog each session was last handed from `built`, with what its
    /// signature was worked out from: while the config and the session's
    /// workspace file are the same ones (the same `Arc`s) and its name budget
    /// is the same, so is the signature, and the signature need not be built
    /// and hashed again (about 5 % of a call's work). Emptied with `built`.
    by_session: HashMap<crate::sink::SessionId, SessionCatalog>,
}

/// What [`Catalogs::by_session`] keeps of one session.
struct SessionCatalog {
    config: Arc<crate::config::Config>,
    workspace_file: Arc<crate::workspace::WorkspaceFile>,
    budget: usize,
    catalog: Arc<Catalog>,
}

/// More sessions than this remembered at once (never, with the sessions'
/// limits) starts the memo afresh rather than grow it.
const REMEMBERED_SESSIONS: usize = 4096;

impl Catalogs {
    fn clear(&mut self) {
        self.built.clear();
        self.by_session.clear();
        self.generation += 1;
    }

    /// The catalog `session` was last handed, if its signature's inputs are
    /// the same ones.
    fn remembered(
        &self,
        session: crate::sink::SessionId,
        config: &Arc<crate::config::Config>,
        workspace_file: &Arc<crate::workspace::WorkspaceFile>,
        budget: usize,
    ) -> Option<Arc<Catalog>> {
        let kept = self.by_session.get(&session)?;
        (Arc::ptr_eq(&kept.config, config)
            && Arc::ptr_eq(&kept.workspace_file, workspace_file)
            && kept.budget == budget)
            .then(|| kept.catalog.clone())
    }

    fn remember(&mut self, session: crate::sink::SessionId, kept: SessionCatalog) {
        if self.by_session.len() >= REMEMBERED_SESSIONS {
            self.by_session.clear();
        }
        self.by_session.insert(session, kept);
    }

    /// Stores `catalog` if nothing changed since `generation` was read.
    fn insert(&mut self, generation: u64, signature: String, catalog: Arc<Catalog>) {
        if generation == self.generation {
            self.built.insert(signature, catalog);
        }
    }
}

/// How long building a catalog waits for a server whose listing is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until it is listed or fails: the request is for this server.
    Full,
    /// At most this long since its listing started; past that the server is
    /// left out, and every session is told to list again when it arrives.
    AtMost(Duration),
    /// Not at all, and nothing is started: the request cannot be for it.
    KnownOnly,
}

type ListingResult = Result<Arc<ServerListing>, BackendError>;

/// A first listing running as its own task, shared by everyone who waits for it.
#[derive(Clone)]
struct FirstFetch {
    started: Instant,
    result: futures_util::future::Shared<futures_util::future::BoxFuture<'static, ListingResult>>,
    /// Set (by a waiter that gave up) when a catalog went out without this
    /// server, and (by the task) when the listing is in: whichever of the two
    /// comes second sees the other, so an arrival is never left unannounced.
    left_out: Arc<std::sync::atomic::AtomicBool>,
    done: Arc<std::sync::atomic::AtomicBool>,
}

/// What a catalog says of a server left out because its listing is not in yet.
const STILL_STARTING: &str =
    "still starting; its tools are listed (and notifications/tools/list_changed sent) once it answers";

fn listing_key(name: &str, config: &ServerConfig) -> ListingKey {
    (name.to_string(), config.fingerprint())
}

/// A backend's entry in [`Listings::relisting`] while its re-listing runs;
/// removed when that ends, however it ends.
struct Relisting<'a> {
    running: &'a Mutex<HashMap<usize, bool>>,
    backend: usize,
}

impl<'a> Relisting<'a> {
    /// `None` when a re-listing of `backend` runs already: it is asked for
    /// one more instead.
    fn start(running: &'a Mutex<HashMap<usize, bool>>, backend: &Arc<Backend>) -> Option<Self> {
        let backend = Arc::as_ptr(backend) as usize;
        let mut map = lock(running);
        if let Some(again) = map.get_mut(&backend) {
            *again = true;
            return None;
        }
        map.insert(backend, false);
        Some(Self { running, backend })
    }

    /// Whether a notice came since the last call (during the re-listing
    /// that just ended: another is due); clears it.
    fn again(&self) -> bool {
        lock(self.running).get_mut(&self.backend).is_some_and(std::mem::take)
    }
}

impl Drop for Relisting<'_> {
    fn drop(&mut self) {
        lock(self.running).remove(&self.backend);
    }
}

impl Gateway {
    /// What `server` offers: from memory, else from the disk cache (without
    /// starting it), else by starting it for `session` and listing everything.
    pub async fn listing(
        self: &Arc<Self>,
        name: &str,
        config: &ServerConfig,
        session: &SessionInfo,
    ) -> Result<Arc<ServerListing>, BackendError> {
        let key = listing_key(name, config);
        if let Some(listing) = self.listings.cached(&key) {
            return Ok(listing);
        }
        let fetch = lock(&self.listings.fetching).entry(key.clone()).or_default().clone();
        let _one_at_a_time = fetch.lock().await;
        if let Some(listing) = self.listings.cached(&key) {
            return Ok(listing);
        }
        let backend = self.backend(name, session).await?;
        if let Some(listing) = self.listings.known(&key) {
            return Ok(listing); // Starting it listed it already (see refresh_if_stale).
        }
        Ok(self.relist(&backend).await?.0)
    }

    /// How old each configured server's listing on disk is, in seconds
    /// (`None`: never listed under its current definition), for `status`.
    pub fn catalog_ages(&self) -> serde_json::Map<String, Value> {
        let config = self.config();
        let disk = lock(&self.listings.disk);
        let now = std::time::SystemTime::now();
        config
            .servers
            .iter()
            .map(|(name, server)| {
                let age = disk
                    .listed_at(name, server.fingerprint_str())
                    .map(|at| now.duration_since(at).unwrap_or_default().as_secs());
                (name.clone(), Value::from(age))
            })
            .collect()
    }

    /// The tools a listing of this definition recorded as asking clients.
    pub(super) fn listed_asking_tools(&self, server: &str, config: &ServerConfig) -> BTreeSet<String> {
        let listing = self.listings.cached(&listing_key(server, config));
        listing.map(|listing| listing.asking_tools.clone()).unwrap_or_default()
    }

    /// Records with the listing (and on disk) that these tools ask clients.
    pub(super) fn remember_asking_tools(&self, server: &str, config: &ServerConfig, tools: &BTreeSet<String>) {
        let key = listing_key(server, config);
        if self.listings.cached(&key).is_none_or(|known| known.asking_tools.is_superset(tools)) {
            return;
        }
        // Changed in place, under the lock, so a re-listing stored meanwhile is kept.
        let listing = {
            let mut live = lock(&self.listings.live);
            let Some(entry) = live.get_mut(&key) else { return };
            let mut listing = (*entry.listing).clone();
            listing.asking_tools.extend(tools.iter().cloned());
            entry.listing = Arc::new(listing);
            entry.listing.clone()
        };
        lock(&self.listings.disk).put(&key.0, &key.1, &listing);
    }

    /// Records with the listing (and on disk) that `tool` asks clients for
    /// `kind`; when that is news, catalogs are rebuilt and sessions told to
    /// list their tools again (one that cannot answer it no longer sees it).
    pub(super) fn remember_ask_kind(&self, server: &str, config: &ServerConfig, tool: &str, kind: &str) {
        let key = listing_key(server, config);
        let known = |l: &ServerListing| l.asks_for.get(tool).is_some_and(|kinds| kinds.contains(kind));
        if self.listings.cached(&key).is_none_or(|listing| known(&listing)) {
            return;
        }
        let listing = {
            let mut live = lock(&self.listings.live);
            let Some(entry) = live.get_mut(&key) else { return };
            let mut listing = (*entry.listing).clone();
            listing.asks_for.entry(tool.to_string()).or_default().insert(kind.to_string());
            entry.listing = Arc::new(listing);
            entry.listing.clone()
        };
        lock(&self.listings.disk).put(&key.0, &key.1, &listing);
        tracing::info!(
            server,
            tool,
            kind,
            "this tool asks clients for {kind}: it is listed only to sessions that can answer"
        );
        lock(&self.listings.catalogs).clear();
        self.announce(Changes { tools: true, prompts: false, resources: false });
    }

    /// The era a listing of this definition recorded (in memory or on disk).
    pub(super) fn listed_era(&self, server: &str, config: &ServerConfig) -> Option<crate::era::Era> {
        self.listings.cached(&listing_key(server, config)).and_then(|listing| listing.era)
    }

    /// Lists everything a running backend offers and stores it.
    async fn relist(self: &Arc<Self>, backend: &Backend) -> Result<(Arc<ServerListing>, Changes), BackendError> {
        let key = listing_key(&backend.server, &backend.config);
        let started = self.listings.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (mut listing, ttl) = fetch_listing(backend).await?;
        // What the gateway learnt about the tools outlives a re-listing.
        if let Some(known) = self.listings.cached(&key) {
            listing.asking_tools = known.asking_tools.clone();
            listing.asks_for = known.asks_for.clone();
        }
        let listing = Arc::new(listing);
        let fresh_until = ttl.map(|ttl| Instant::now() + ttl);
        let changes = {
            let mut live = lock(&self.listings.live);
            if let Some(newer) = live.get(&key).filter(|l| l.started > started) {
                debug!(server = %backend.server, "a listing fetched later is stored already; this older one is dropped");
                return Ok((newer.listing.clone(), Changes::default()));
            }
            let changes = Changes::between(live.get(&key).map(|l| &*l.listing), &listing);
            live.insert(
                key.clone(),
                LiveListing { listing: listing.clone(), from_backend: true, fresh_until, started },
            );
            changes
        };
        if changes.any() {
            lock(&self.listings.disk).put(&key.0, &key.1, &listing);
            lock(&self.listings.catalogs).clear();
        }
        Ok((listing, changes))
    }

    /// A listing that came from the disk cache, or whose `ttlMs` has passed, is
    /// refreshed from the running backend, and sessions are told if anything
    /// changed.
    pub(super) fn refresh_if_stale(self: &Arc<Self>, backend: &Arc<Backend>) {
        let key = listing_key(&backend.server, &backend.config);
        let now = Instant::now();
        let stale = lock(&self.listings.live)
            .get(&key)
            .is_some_and(|l| !l.from_backend || l.fresh_until.is_some_and(|until| now >= until));
        if stale {
            if let Some(live) = lock(&self.listings.live).get_mut(&key) {
                // One refresh, however many callers.
                live.from_backend = true;
                live.fresh_until = None;
            }
            let gateway = self.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                match gateway.relist(&backend).await {
                    Ok((_, changes)) => gateway.announce(changes),
                    Err(e) => debug!(server = %backend.server, error = %e, "background re-listing failed"),
                }
            });
        }
    }

    /// The servers (or what they offer) changed: catalogs are rebuilt on the next
    /// request, and every session is told to list again.
    pub(super) fn lists_changed(&self) {
        lock(&self.listings.catalogs).clear();
        self.announce(Changes { tools: true, prompts: true, resources: true });
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

    /// Re-lists after a backend said its lists changed, then tells every session
    /// if anything did change (servers also send it once at start-up).
    /// Notices that come while a re-listing of the same backend runs are
    /// answered by one more re-listing after it (see [`Listings::relisting`]).
    pub(super) async fn on_list_changed(self: &Arc<Self>, backend: &Arc<Backend>, method: &str) {
        let Some(running) = Relisting::start(&self.listings.relisting, backend) else {
            debug!(server = %backend.server, "{method} while a re-listing runs: one more follows it");
            return;
        };
        // The rest of a burst is on its way (a server writes each notice on
        // its own): a moment's wait lets one fetch answer all of it.
        tokio::time::sleep(BURST).await;
        loop {
            // Notices that came before this fetch starts are answered by it:
            // the server changed before it sent them, so before it reads this.
            running.again();
            match self.relist(backend).await {
                Ok((_, changes)) => {
                    if !changes.any() {
                        debug!(server = %backend.server, "{method} without a change");
                    }
                    self.announce(changes);
                }
                Err(e) => warn!(server = %backend.server, error = %e, "could not re-list after {method}"),
            }
            if !running.again() {
                return;
            }
        }
    }

    /// The catalog a session sees for an aggregated list: every server it
    /// sees, each waited for at most `list_wait_secs` (a server that hangs at
    /// start-up must not hold up the list; it is announced when it arrives).
    /// Servers that cannot be listed are left out (and logged); such a catalog
    /// is not kept, so the next request tries again.
    /// Forgets what was remembered of a session that has ended.
    pub(super) fn forget_session_catalog(&self, session: crate::sink::SessionId) {
        lock(&self.listings.catalogs).by_session.remove(&session);
    }

    pub async fn catalog(self: &Arc<Self>, session: &SessionInfo) -> Arc<Catalog> {
        let bound = Duration::from_secs(self.config().list_wait_secs);
        self.catalog_waiting(session, |_, _| Wait::AtMost(bound)).await
    }

    /// The catalog a request for the tool or prompt exposed as `name` needs:
    /// only the servers that can expose that name (see [`may_expose`]) are
    /// waited for; the others count with what is known of them, and nothing is
    /// started for them. A call to one server never waits for another.
    pub async fn catalog_for_name(self: &Arc<Self>, session: &SessionInfo, name: &str) -> Arc<Catalog> {
        self.catalog_waiting(session, |server, config| {
            if may_expose(server, config.prefix, name) { Wait::Full } else { Wait::KnownOnly }
        })
        .await
    }

    /// The catalog a request for the resource `uri` needs. A URI does not say
    /// which server has it, so: what is known first; then the bounded wait of
    /// an aggregated list; only when neither has it and some server is still
    /// starting, the full wait for everyone (a request that would otherwise fail).
    pub async fn catalog_for_uri(self: &Arc<Self>, session: &SessionInfo, uri: &str) -> Arc<Catalog> {
        let known = self.catalog_waiting(session, |_, _| Wait::KnownOnly).await;
        if known.resource_server(uri).is_some() {
            return known;
        }
        let bounded = self.catalog(session).await;
        if bounded.resource_server(uri).is_some() || bounded.unavailable.iter().all(|(_, why)| why != STILL_STARTING) {
            return bounded;
        }
        self.catalog_waiting(session, |_, _| Wait::Full).await
    }

    /// Builds the catalog of a session, waiting for each server's listing as `wait` says.
    async fn catalog_waiting(
        self: &Arc<Self>,
        session: &SessionInfo,
        wait: impl Fn(&str, &ServerConfig) -> Wait,
    ) -> Arc<Catalog> {
        // What the client said in `initialize` is in the gateway's record of
        // the session, not in a copy taken before it.
        let budget = self.name_budget(session);
        let config = self.config();
        let workspace_file = self.workspace_files.load(&session.workspace);
        if let Some(catalog) =
            lock(&self.listings.catalogs).remembered(session.id, &config, &workspace_file, budget.len())
        {
            return catalog;
        }
        let signature = format!("{}\u{1d}{}", budget.len(), self.servers_signature(session, &config, &workspace_file));
        let generation = {
            let mut catalogs = lock(&self.listings.catalogs);
            if let Some(catalog) = catalogs.built.get(&signature).cloned() {
                let kept = SessionCatalog { config, workspace_file, budget: budget.len(), catalog: catalog.clone() };
                catalogs.remember(session.id, kept);
                return catalog;
            }
            catalogs.generation
        };
        let servers = self.servers_for(session);
        let results = futures_util::future::join_all(
            servers.iter().map(|(name, config)| self.listing_within(name, config, session, wait(name, config))),
        )
        .await;
        let mut unavailable = Vec::new();
        let mut listings = Vec::new();
        for ((name, config), result) in servers.iter().zip(results) {
            match result {
                Some(Ok(listing)) => listings.push((name.as_str(), config, listing)),
                Some(Err(e)) => {
                    warn!(server = name, error = %e, "server left out of the catalog");
                    unavailable.push((name.clone(), e.to_string()));
                }
                None => {
                    debug!(server = name, "server left out of the catalog for now: its listing is not in yet");
                    unavailable.push((name.clone(), STILL_STARTING.to_string()));
                }
            }
        }
        let inputs: Vec<CatalogInput<'_>> = listings
            .iter()
            .map(|(server, config, listing)| CatalogInput {
                server,
                prefix: config.prefix,
                filter: &config.tools,
                listing,
            })
            .collect();
        let mut catalog = Catalog::build(&inputs, budget);
        let complete = unavailable.is_empty();
        catalog.unavailable = unavailable;
        let catalog = Arc::new(catalog);
        if complete {
            lock(&self.listings.catalogs).insert(generation, signature, catalog.clone());
        }
        catalog
    }

    /// A server's listing: at once when it is known (memory or disk cache),
    /// else from its first fetch, waited for as `wait` says; `None` when it is
    /// not in within that (the fetch goes on and is announced when it lands).
    async fn listing_within(
        self: &Arc<Self>,
        name: &str,
        config: &ServerConfig,
        session: &SessionInfo,
        wait: Wait,
    ) -> Option<ListingResult> {
        let key = listing_key(name, config);
        if let Some(listing) = self.listings.cached(&key) {
            return Some(Ok(listing));
        }
        if wait == Wait::KnownOnly {
            return None;
        }
        let fetch = self.first_fetch(key, name, config, session);
        let bound = match wait {
            Wait::AtMost(bound) => bound.saturating_sub(fetch.started.elapsed()),
            Wait::Full | Wait::KnownOnly => return Some(fetch.result.await),
        };
        match tokio::time::timeout(bound, fetch.result.clone()).await {
            Ok(result) => Some(result),
            Err(_) => {
                fetch.left_out.store(true, std::sync::atomic::Ordering::SeqCst);
                if fetch.done.load(std::sync::atomic::Ordering::SeqCst) {
                    // It landed just now: use it (the task may announce it too; harmless).
                    return Some(fetch.result.await);
                }
                None
            }
        }
    }

    /// The first fetch of a listing under way, or a new one, started as a task
    /// of its own for `session` (whose credentials start the backend).
    fn first_fetch(
        self: &Arc<Self>,
        key: ListingKey,
        name: &str,
        config: &ServerConfig,
        session: &SessionInfo,
    ) -> FirstFetch {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut fetches = lock(&self.listings.first_fetches);
        if let Some(fetch) = fetches.get(&key) {
            return fetch.clone();
        }
        let left_out = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let task = {
            let gateway = self.clone();
            let (name, config, session, key) = (name.to_string(), config.clone(), session.clone(), key.clone());
            let (left_out, done) = (left_out.clone(), done.clone());
            tokio::spawn(async move {
                let result = gateway.listing(&name, &config, &session).await;
                lock(&gateway.listings.first_fetches).remove(&key);
                done.store(true, Ordering::SeqCst);
                if left_out.load(Ordering::SeqCst) && result.is_ok() {
                    debug!(server = %name, "a listing left out of catalogs arrived; telling every session");
                    gateway.lists_changed();
                }
                result
            })
        };
        let server = name.to_string();
        let result = async move {
            task.await.unwrap_or_else(|e| {
                Err(BackendError::Spawn { server, reason: format!("listing it failed inside the gateway: {e}") })
            })
        };
        let fetch = FirstFetch {
            started: Instant::now(),
            result: futures_util::FutureExt::shared(futures_util::FutureExt::boxed(result)),
            left_out,
            done,
        };
        fetches.insert(key, fetch.clone());
        fetch
    }

    /// The listings a session's servers already have, without starting anything.
    pub fn known_listings(&self, session: &SessionInfo) -> Vec<(String, Arc<ServerListing>)> {
        self.servers_for(session)
            .into_iter()
            .filter_map(|(name, config)| Some((name.clone(), self.listings.cached(&listing_key(&name, &config))?)))
            .collect()
    }
}

/// Calls a paginated list method until the backend has no next page.
/// Every page of a list, and the `ttlMs` its first page gave (a positive one:
/// 0, "stale at once", would mean listing on every call; list changes are
/// heard anyway).
async fn list_all(
    backend: &Backend,
    method: &str,
    field: &str,
) -> Result<(Vec<Value>, Option<Duration>), BackendError> {
    const MAX_PAGES: usize = 1000;
    let mut items = Vec::new();
    let mut ttl = None;
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let response = backend.request(method, params, None).await?;
        let Some(result) = response.get("result") else {
            let message = response.pointer("/error/message").and_then(Value::as_str).unwrap_or("no result");
            // A server that needs a login lists nothing yet: that is no
            // (empty) listing to keep.
            if response.pointer("/error/data/loginRequired").is_some() {
                return Err(BackendError::Config { server: backend.server.clone(), message: message.to_string() });
            }
            warn!(server = %backend.server, method, message, "backend refused a list request");
            break;
        };
        if cursor.is_none() {
            ttl = result
                .get("ttlMs")
                .and_then(Value::as_u64)
                .filter(|ms| *ms > 0)
                .map(|ms| Duration::from_millis(ms).clamp(Duration::from_secs(1), LONGEST_TTL));
        }
        items.extend(result.get(field).and_then(Value::as_array).cloned().unwrap_or_default());
        cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() {
            break;
        }
    }
    Ok((items, ttl))
}

/// Everything a backend offers, and the shortest `ttlMs` its lists gave.
async fn fetch_listing(backend: &Backend) -> Result<(ServerListing, Option<Duration>), BackendError> {
    let mut listing = ServerListing {
        initialize: backend.initialize_result().clone(),
        era: Some(backend.era()),
        ..Default::default()
    };
    let mut ttls = Vec::new();
    if listing.has_capability("tools") {
        let (mut tools, ttl) = list_all(backend, "tools/list", "tools").await?;
        // `x-mcp-header` is the modern era's: a handshake-era server's schema
        // may carry anything under that name without meaning it.
        if backend.is_modern() {
            for tool in crate::routing_headers::drop_invalid_tools(&mut tools) {
                warn!(server = %backend.server, tool, "left out a tool whose x-mcp-header annotations are invalid");
            }
        }
        listing.tools = tools;
        ttls.push(ttl);
    }
    if listing.has_capability("prompts") {
        let (prompts, ttl) = list_all(backend, "prompts/list", "prompts").await?;
        listing.prompts = prompts;
        ttls.push(ttl);
    }
    if listing.has_capability("resources") {
        let (resources, ttl) = list_all(backend, "resources/list", "resources").await?;
        listing.resources = resources;
        ttls.push(ttl);
        let (templates, ttl) = list_all(backend, "resources/templates/list", "resourceTemplates").await?;
        listing.resource_templates = templates;
        ttls.push(ttl);
    }
    Ok((listing, ttls.into_iter().flatten().min()))
}
