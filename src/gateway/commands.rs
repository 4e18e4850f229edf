//! What the command line asks of a running daemon besides its status:
//! `mcp-gateway restart SERVER` and `mcp-gateway logs [SERVER]`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::info;

use super::Gateway;

impl Gateway {
    /// Stops every instance of `server`; the next call starts a fresh one, with
    /// backoff and the circuit breaker reset. Calls in flight on them fail
    /// with an error that says the server was stopped.
    pub async fn restart_server(self: &Arc<Self>, server: &str) -> Result<usize, String> {
        let config = self.config();
        let running = self.pool.running_all().iter().any(|b| b.server == server);
        if !config.servers.contains_key(server) && !running {
            return Err(no_such_server(server, &config));
        }
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let stopped = self.pool.restart_server(server, grace).await;
        info!(server, stopped, "restart requested: instances stopped, the next call starts a new one");
        Ok(stopped)
    }

    /// The stderr of every instance (of `server`, or all) that is running or
    /// exited and not yet replaced, each as `{instance, server, key, pid,
    /// running, exit, lines, next}`. `since` maps an instance
    /// id to the `next` number a previous answer gave, so a follower gets only
    /// new lines.
    pub fn backend_logs(&self, server: Option<&str>, since: Option<&Value>) -> Result<Value, String> {
        let config = self.config();
        let mut backends = self.pool.instances();
        if let Some(server) = server {
            backends.retain(|b| b.server == server);
            if backends.is_empty() && !config.servers.contains_key(server) {
                return Err(no_such_server(server, &config));
            }
        }
        backends.sort_by(|a, b| (&a.server, &a.key.0).cmp(&(&b.server, &b.key.0)));
        let rows: Vec<Value> = backends
            .iter()
            .map(|b| {
                let id = format!("{}:{}:{}", b.server, b.key.0, b.identity.instance);
                let from = since.and_then(|s| s.get(&id)).and_then(Value::as_u64).unwrap_or(0);
                let (lines, next) = b.stderr_since(from);
                json!({
                    "instance": id, "server": b.server, "key": b.key.0, "pid": b.pid,
                    "running": b.is_alive(), "exit": b.exit_status(), "lines": lines, "next": next,
                })
            })
            .collect();
        Ok(json!({ "backends": rows }))
    }
}

fn no_such_server(server: &str, config: &crate::config::Config) -> String {
    let known: Vec<&String> = config.servers.keys().collect();
    format!("no server named `{server}` is configured or running (the config defines {known:?})")
}
