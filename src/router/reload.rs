//! Applying a new config to a running gateway without interrupting anyone.
//!
//! A config with an error is reported (file, line, reason; also in `status`)
//! and the last good one stays in force. Otherwise the new config replaces the
//! old at once: added servers are listed on the next request (sessions are told
//! the lists changed); a removed or changed server's running instances take no
//! new calls (new calls resolve to a new instance, or to "no such server") and
//! are stopped once their calls in flight have finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info};

use super::{Gateway, lock};
use crate::backend::Backend;
use crate::config::Config;
use crate::paths;

impl Gateway {
    /// Re-reads the config file and applies it.
    pub fn reload(self: &Arc<Self>) {
        let location = paths::config_location(self.explicit_config.as_deref());
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
        crate::workspace::check_mappings(&loaded);
        self.pool.set_limits(Duration::from_secs(loaded.startup_timeout_secs), loaded.max_message_bytes);
        self.pool.set_supervision(loaded.supervision.clone());
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
