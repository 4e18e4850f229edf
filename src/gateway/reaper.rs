//! The idle reaper and health pinger: every half second, backends no session
//! has used for their idle timeout are stopped, and idle ones that stay are
//! pinged (one that does not answer is killed, and restarted on its next use).

use std::sync::Weak;
use std::time::Duration;

use serde_json::Value;
use tracing::info;

use super::Gateway;
use crate::backend::Backend;

impl Gateway {
    /// Whether a backend is still needed although idle: it has calls in flight,
    /// subscribers, or requests out to clients.
    fn busy(&self, backend: &Backend) -> bool {
        backend.in_flight().0 > 0 || self.has_subscribers(backend) || self.has_server_requests(backend)
    }
}

/// Stops backends no session has used for their idle timeout, and pings the
/// idle ones that stay: one that does not answer is killed (and restarted on
/// its next use).
pub(super) async fn run(gateway: Weak<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(gateway) = gateway.upgrade() else { return };
        let default = gateway.config().idle_timeout;
        let supervision = gateway.pool.supervision();
        for backend in gateway.pool.running_all() {
            if backend.ping_due(supervision.health_interval) {
                let gateway = gateway.clone();
                let backend = backend.clone();
                let timeout = supervision.health_timeout;
                tokio::spawn(async move {
                    // The modern era has no `ping`: its cheapest question is discover.
                    let method = if backend.is_modern() { "server/discover" } else { "ping" };
                    let answered = tokio::time::timeout(timeout, backend.request(method, Value::Null, None)).await;
                    if answered.is_err() {
                        let reason = format!("did not answer a health ping within {timeout:?}; restarted");
                        tracing::warn!(server = %backend.server, "{reason}");
                        gateway.pool.kill_unhealthy(&backend, reason).await;
                    }
                });
            }
            let mut limit = backend.config.idle_timeout.unwrap_or(default);
            if backend.identity.lane > 0 {
                limit = limit.min(super::asking::EXTRA_INSTANCE_IDLE);
            }
            if backend.idle_for() >= limit && !gateway.busy(&backend) {
                // Checked again where a call would take it, so none is given
                // an instance that is being stopped.
                let idle = backend.idle_for();
                let grace = Duration::from_secs(gateway.config().shutdown_grace_secs);
                if gateway.pool.stop_idle(&backend.identity, limit, grace, |b| gateway.busy(b)).await {
                    info!(server = %backend.server, key = %backend.key.0, ?idle, "stopped an idle backend");
                }
            }
        }
    }
}
