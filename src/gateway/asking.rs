//! Calls that ask a client something (sampling, elicitation) on a server that
//! has no way to say which call a request belongs to: a handshake-era server
//! over stdio (or Docker). Over HTTP the request rides the stream of its call,
//! and a modern server asks inside its answer, so both are exact already.
//!
//! The gateway learns which tools of a server ask (from requests it could
//! attribute, and from the calls in flight when it could not), and runs every
//! call of such a tool on an instance where no other session has one in
//! flight: the shared instance when it is free, else an extra instance of the
//! same server and sharing key (lane 1, 2, … up to `max_instances`), else the
//! call waits for one to free. A request the backend sends then has exactly
//! one possible owner, calls of other tools keep sharing the one instance
//! (and its state), and the extra instances stop once idle for a minute.
//! `serialize: true` stays the explicit, stricter alternative.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tracing::info;

use super::{Gateway, SessionInfo, lock};
use crate::backend::{AskingClaim, Backend, BackendError};
use crate::config::{ServerConfig, Transport};
use crate::sink::SessionId;

/// How long an extra instance may sit idle before it is stopped (the shared
/// one keeps the server's own idle timeout).
pub(super) const EXTRA_INSTANCE_IDLE: Duration = Duration::from_secs(60);

/// Server → definition fingerprint → the tools seen to ask a client. Nested,
/// so that the look-up every call makes borrows instead of allocating.
type Known = HashMap<String, HashMap<String, BTreeSet<String>>>;

#[derive(Default)]
pub(super) struct Asking {
    tools: Mutex<Known>,
    /// Woken whenever a claim ends, for calls waiting for a free instance.
    released: Arc<Notify>,
}

impl Asking {
    /// Whether `tool` asks; `None` when nothing is known of this definition
    /// yet (not even that none of its tools does).
    fn asks(&self, server: &str, config: &ServerConfig, tool: &str) -> Option<bool> {
        let known = lock(&self.tools);
        known.get(server)?.get(config.fingerprint_str()).map(|tools| tools.contains(tool))
    }

    /// Starts what is known of a definition from what its listing kept.
    fn seed(&self, server: &str, config: &ServerConfig, tools: BTreeSet<String>) {
        let mut known = lock(&self.tools);
        let definitions = known.entry(server.to_string()).or_default();
        definitions.entry(config.fingerprint()).or_default().extend(tools);
    }

    /// Records that `tools` ask: the ones that were not known, and all now known.
    fn learn(&self, server: &str, config: &ServerConfig, tools: Vec<String>) -> (Vec<String>, BTreeSet<String>) {
        let mut known = lock(&self.tools);
        let set = known.entry(server.to_string()).or_default().entry(config.fingerprint()).or_default();
        let new = tools.into_iter().filter(|tool| set.insert(tool.clone())).collect();
        (new, set.clone())
    }
}

/// Whether a request this backend sends carries no sign of the call that
/// caused it: neither a stream (HTTP) nor an answer (the modern era) ties it
/// to its call, so the gateway learns and claims (see the module doc).
fn asks_without_a_trace(backend: &Backend) -> bool {
    !backend.is_modern() && backend.config.transport != Transport::Http
}

/// Whether calls to this backend need a claim to be attributable (on a
/// `serialize: true` server every call waits its turn instead).
fn needs_claims(backend: &Backend) -> bool {
    asks_without_a_trace(backend) && !backend.config.serialize
}

/// The tool a request calls, for a `tools/call`.
fn called_tool<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    (method == "tools/call").then(|| params.get("name").and_then(Value::as_str)).flatten()
}

impl Gateway {
    /// The instance a session request runs on: the shared one, unless it calls
    /// a tool known to ask a client (see the module doc). The claim, when
    /// there is one, must be held until the call ends.
    pub(super) async fn instance_for(
        self: &Arc<Self>,
        server: &str,
        config: &ServerConfig,
        method: &str,
        params: &Value,
        session: &SessionInfo,
    ) -> Result<(Arc<Backend>, Option<AskingClaim>), BackendError> {
        let shared = self.backend_of(server, config, session, 0).await?;
        let asks = called_tool(method, params).is_some_and(|tool| self.tool_asks(server, config, tool));
        if !asks || !needs_claims(&shared) {
            return Ok((shared, None));
        }
        let released = self.asking.released.clone();
        loop {
            // Registered before looking, so a claim let go meanwhile still wakes us.
            let freed = released.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            for lane in 0..config.max_instances {
                let backend = match lane {
                    0 => shared.clone(),
                    _ => self.backend_of(server, config, session, lane).await?,
                };
                if let Some(claim) = backend.claim_for_asking(session.id, released.clone()) {
                    if lane > 0 {
                        tracing::debug!(
                            server,
                            lane,
                            session = session.id,
                            "a call that asks runs on an extra instance"
                        );
                    }
                    return Ok((backend, Some(claim)));
                }
            }
            freed.await;
        }
    }

    /// Whether calls of `tool` may ask a client: learnt in this daemon, or
    /// kept with the server's listing by an earlier one.
    fn tool_asks(&self, server: &str, config: &ServerConfig, tool: &str) -> bool {
        if let Some(asks) = self.asking.asks(server, config, tool) {
            return asks;
        }
        let kept = self.listed_asking_tools(server, config);
        let asks = kept.contains(tool);
        self.asking.seed(server, config, kept);
        asks
    }

    /// A backend sent a request that needs a client, while `sessions` had
    /// calls in flight on it: the tools they were calling ask (all of them,
    /// when several sessions could have caused it, so that next time it is
    /// exact).
    pub(super) fn learn_asking(&self, backend: &Backend, sessions: impl IntoIterator<Item = SessionId>) {
        if !asks_without_a_trace(backend) {
            return;
        }
        let tools: Vec<String> = sessions.into_iter().flat_map(|s| backend.tools_in_flight(s)).collect();
        let (new, all) = self.asking.learn(&backend.server, &backend.config, tools);
        if !new.is_empty() {
            self.remember_asking_tools(&backend.server, &backend.config, &all);
            info!(
                server = %backend.server, tools = ?new,
                "these tools ask clients: calls of them from different sessions now run on separate instances"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(extra: &str) -> ServerConfig {
        serde_norway::from_str(&format!("command: x\n{extra}")).unwrap()
    }

    #[test]
    fn tools_are_learnt_per_definition() {
        let asking = Asking::default();
        let config = server("");
        assert_eq!(asking.asks("s", &config, "t"), None, "nothing known yet");
        let (new, all) = asking.learn("s", &config, vec!["t".into(), "t".into()]);
        assert_eq!((new, all), (vec!["t".to_string()], BTreeSet::from(["t".to_string()])));
        assert_eq!(asking.asks("s", &config, "t"), Some(true));
        assert_eq!(asking.asks("s", &config, "u"), Some(false));
        assert!(asking.learn("s", &config, vec!["t".into()]).0.is_empty(), "known already");
        assert_eq!(asking.asks("other", &config, "t"), None);
        assert_eq!(asking.asks("s", &server("args: [changed]"), "t"), None, "another definition learns anew");
        assert_eq!(asking.asks("s", &server("serialize: true"), "t"), Some(true), "settings are the same server");
    }

    #[test]
    fn what_a_listing_kept_seeds_a_definition() {
        let asking = Asking::default();
        let config = server("");
        asking.seed("s", &config, BTreeSet::new());
        assert_eq!(asking.asks("s", &config, "t"), Some(false), "known: none asks");
        asking.seed("s", &config, BTreeSet::from(["t".to_string()]));
        assert_eq!(asking.asks("s", &config, "t"), Some(true));
    }

    #[test]
    fn only_tool_calls_name_a_tool() {
        assert_eq!(called_tool("tools/call", &serde_json::json!({"name": "t"})), Some("t"));
        assert_eq!(called_tool("prompts/get", &serde_json::json!({"name": "t"})), None);
        assert_eq!(called_tool("tools/call", &serde_json::json!({})), None);
    }
}
