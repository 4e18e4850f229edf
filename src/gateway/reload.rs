//! Applying a new config to a running gateway without interrupting anyone.
//!
//! A config with an error is reported (file, line, reason; also in `status`)
//! and the last good one stays in force. Otherwise the new config replaces the
//! old at once: added servers are listed on the next request (sessions are told
//! the lists changed); a removed or changed server's running instances take no
//! new calls (new calls resolve to a new instance, or to "no such server") and
//! are stopped once their calls in flight have finished.
//!
//! A file that turns empty (or disappears) while a non-empty config is in
//! force is most likely a save half-way: many editors and tools truncate the
//! file, then write it. Applying that would drop every server until the
//! rewrite lands, so the last good config stays until the file has stayed
//! empty for [`EMPTY_SETTLE`]; only then is it taken as meant, and said so in
//! the log. A config that is meant to have no servers can say so at once with
//! `servers: {}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::{Gateway, lock};
use crate::backend::Backend;
use crate::config::Config;
use crate::paths;

/// How long a config file must stay empty before an empty config is applied
/// in place of a non-empty one: far longer than any truncate-then-write save.
pub const EMPTY_SETTLE: Duration = Duration::from_secs(2);

/// Whether the config file holds nothing: absent, or only whitespace.
fn holds_nothing(path: &std::path::Path) -> bool {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

impl Gateway {
    /// Re-reads the config file and applies it.
    pub fn reload(self: &Arc<Self>) {
        let location = paths::config_location(self.explicit_config.as_deref());
        if !self.empty_file_has_settled(&location.path) {
            return;
        }
        let loaded = match Config::load(&location.path) {
            Ok(Some(config)) => config,
            Ok(None) => {
                info!(path = %location.path.display(), "the config file is gone; continuing with no servers");
                Config::default()
            }
            Err(e) => {
                error!("config not applied, the last good one stays in force: {e}");
                *lock(&self.config_error) = Some(e.to_string());
                return;
            }
        };
        *lock(&self.config_error) = None;
        let old = self.config();
        if *old == loaded {
            return;
        }
        if old.telemetry != loaded.telemetry {
            warn!(
                "`telemetry:` changed: trace export is set up when the daemon starts, so this applies after \
                 `mcp-gateway stop` (the next terminal starts it again)"
            );
        }
        crate::workspace::check_mappings(&loaded);
        self.pool.set_limits(Duration::from_secs(loaded.startup_timeout_secs), loaded.max_message_bytes);
        self.pool.set_supervision(loaded.supervision.clone());
        self.oauth.set_token_store(super::token_store(&loaded));
        let new = Arc::new(loaded);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        info!(path = %location.path.display(), servers = new.servers.len(), "config reloaded");
        // Instances whose definition is gone or different drain and stop.
        for backend in self.pool.running_all() {
            let current = old.servers.get(&backend.server) == Some(&backend.config);
            let still = new.servers.get(&backend.server).is_some_and(|s| s.enabled && *s == backend.config);
            if current && !still {
                self.drain_and_stop(backend);
            }
        }
        self.lists_changed();
        self.sync_log_levels();
    }

    /// Whether the config file may be applied as it is: true unless it holds
    /// nothing while a non-empty config is in force and has not held nothing
    /// for [`EMPTY_SETTLE`] yet. The first time it is seen so, the last good
    /// config stays (also said in `status`), and a look again is scheduled.
    fn empty_file_has_settled(self: &Arc<Self>, path: &std::path::Path) -> bool {
        let mut since = lock(&self.empty_config_since);
        if !holds_nothing(path) || *self.config() == Config::default() {
            *since = None;
            return true;
        }
        match *since {
            Some(at) if at.elapsed() >= EMPTY_SETTLE => {
                *since = None;
                warn!(
                    path = %path.display(),
                    "the config file has stayed empty for {EMPTY_SETTLE:?}; applying it: no servers are configured now"
                );
                true
            }
            // A look again is scheduled.
            Some(_) => false,
            None => {
                *since = Some(Instant::now());
                warn!(
                    path = %path.display(),
                    "the config file is empty (or gone), as it is half-way through a save; the last good config \
                     stays in force, and the empty one is applied only if the file is still empty in {EMPTY_SETTLE:?}"
                );
                *lock(&self.config_error) = Some(format!(
                    "{}: the file is empty (or gone); the last good config stays in force unless it is still empty in {} s",
                    path.display(),
                    EMPTY_SETTLE.as_secs()
                ));
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let gateway = self.clone();
                    runtime.spawn(async move {
                        tokio::time::sleep(EMPTY_SETTLE).await;
                        gateway.reload();
                    });
                }
                false
            }
        }
    }

    /// A workspace's own file changed: its sessions may see other servers now.
    pub fn workspace_changed(&self) {
        self.lists_changed();
    }

    /// Stops an instance once nothing is in flight on it (or the request timeout passed).
    fn drain_and_stop(self: &Arc<Self>, backend: Arc<Backend>) {
        let gateway = self.clone();
        tokio::spawn(async move {
            let limit = Duration::from_secs(gateway.config().request_timeout_secs);
            let started = Instant::now();
            while backend.in_flight().0 > 0 && started.elapsed() < limit {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            info!(server = %backend.server, key = %backend.key.0, "stopping a backend whose definition changed or was removed");
            let grace = Duration::from_secs(gateway.config().shutdown_grace_secs);
            gateway.pool.stop(&backend.identity, grace).await;
        });
    }

    /// The last config error, if the file on disk is not the one in force.
    pub fn config_error(&self) -> Option<String> {
        lock(&self.config_error).clone()
    }
}
