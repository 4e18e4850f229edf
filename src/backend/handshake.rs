//! The start of a backend, whatever carries its messages: settling which era
//! it speaks (`server/discover` first, or straight to `initialize`) and the
//! `initialize` handshake itself.
//!
//! It lives beside the transports, not in one of them, because every transport
//! starts the same way: a stdio or Docker child is asked over its pipes, a
//! remote server of the handshake era over HTTP. Only the modern HTTP
//! transport asks `server/discover` its own way (each of its requests is a
//! POST with headers of its own, see `http::modern::discover`), and then
//! still settles the era by the [`EraPlan`] and errors defined here.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::debug;

use super::{Backend, BackendError, stderr_suffix};
use crate::config::Protocol;
use crate::era::Era;

/// How a new instance's era is settled: whether to ask at all.
///
/// Derived at each start from the two things that decide it, the user's
/// `protocol:` setting and what an earlier start of the same definition
/// found, so neither has to be consulted anywhere else. What the start finds
/// goes onto the instance as an [`Era`]; the plan is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraPlan {
    /// Ask with `server/discover`, fall back to `initialize`.
    Probe,
    /// Speak this era without asking. A known modern server that does not
    /// answer `server/discover` fails to start rather than falling back, as
    /// `protocol: modern` promises.
    Known(Era),
}

impl EraPlan {
    /// The plan for a start under `protocol`, given the era an earlier start of
    /// the same definition found (in this daemon, or recorded with its listing
    /// on disk). Only `auto` asks, and a server remembered as of the handshake
    /// era is not asked again: that saves the round trip (or the wait, for a
    /// server that ignores methods it does not know). One remembered as modern
    /// is still asked, which costs nothing, as `server/discover` is its
    /// handshake, and lets a server that went back to the handshake era (the
    /// same command line can run a newer or older release) still start.
    pub fn new(protocol: Protocol, remembered: Option<Era>) -> EraPlan {
        match (protocol, remembered) {
            (Protocol::Handshake, _) | (Protocol::Auto, Some(Era::Handshake)) => EraPlan::Known(Era::Handshake),
            (Protocol::Modern, _) => EraPlan::Known(Era::Modern),
            (Protocol::Auto, None | Some(Era::Modern)) => EraPlan::Probe,
        }
    }

    /// Whether the start begins with `server/discover`.
    pub(super) fn asks(self) -> bool {
        self != EraPlan::Known(Era::Handshake)
    }

    /// Whether a server that does not answer `server/discover` fails to start.
    pub(super) fn requires_modern(self) -> bool {
        self == EraPlan::Known(Era::Modern)
    }
}

/// The error of a server that must be modern but does not answer
/// `server/discover` as one: every transport reports it in these words.
pub(super) fn not_modern(server: &str) -> BackendError {
    BackendError::Initialize {
        server: server.to_string(),
        message: "configured `protocol: modern`, but it does not answer server/discover".into(),
    }
}

/// Settles the era and completes the start: `server/discover` for a modern
/// server (the answer, seen as an `initialize` result), else `initialize`.
pub(super) async fn initialize(backend: &Backend, timeout: Duration, era: EraPlan) -> Result<Value, BackendError> {
    if era.asks() {
        let started = std::time::Instant::now();
        match discover(backend, timeout).await? {
            Some(result) => {
                backend.settle_era(Era::Modern);
                return Ok(result);
            }
            None if era.requires_modern() => return Err(not_modern(&backend.server)),
            None => debug!(elapsed = ?started.elapsed(), "the server is of the handshake era"),
        }
        let remaining = timeout.saturating_sub(started.elapsed());
        return handshake(backend, remaining).await.inspect(|_| backend.settle_era(Era::Handshake));
    }
    handshake(backend, timeout).await.inspect(|_| backend.settle_era(Era::Handshake))
}

/// Asks `server/discover`; `Some` with the answer seen as an `initialize` result
/// when the server speaks a modern version, `None` when it answers anything
/// else (an error, or only handshake versions).
async fn discover(backend: &Backend, timeout: Duration) -> Result<Option<Value>, BackendError> {
    let mut params = json!({});
    crate::era::stamp(&mut params, &crate::era::gateway_envelope());
    let response = startup_request(backend, "server/discover", params, timeout).await?;
    Ok(response.get("result").and_then(crate::era::initialize_from_discover))
}

/// A request of the start-up, which must be answered within `timeout`.
async fn startup_request(
    backend: &Backend,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, BackendError> {
    match tokio::time::timeout(timeout, backend.request(method, params, None)).await {
        Ok(response) => response,
        Err(_) => Err(BackendError::StartupTimeout {
            server: backend.server.clone(),
            secs: timeout.as_secs(),
            stderr: stderr_suffix(&backend.stderr_tail(5)),
        }),
    }
}

/// The `initialize` request and its answer (the caller sends `initialized`
/// when its transport is ready to hear what the server says next).
pub(super) async fn handshake(backend: &Backend, timeout: Duration) -> Result<Value, BackendError> {
    // Sampling and elicitation are relayed to the client that caused them. Roots
    // only for a per-workspace instance, whose sessions share one root; other
    // shared backends must not be steered by one terminal's roots (DESIGN.md).
    let mut capabilities = json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}});
    if backend.key.workspace_root().is_some() {
        capabilities["roots"] = json!({});
    }
    let params = json!({
        "protocolVersion": crate::era::LATEST_HANDSHAKE_VERSION,
        "capabilities": capabilities,
        "clientInfo": {"name": "mcp-gateway", "version": crate::VERSION},
    });
    let response = startup_request(backend, "initialize", params, timeout).await?;
    if let Some(error) = response.get("error") {
        // The server wants a login: say so, and what to run, not that
        // `initialize` failed.
        if let Some(reason) = error.pointer("/data/loginRequired").and_then(Value::as_str) {
            return Err(BackendError::Config { server: backend.server.clone(), message: reason.to_string() });
        }
        return Err(BackendError::Initialize {
            server: backend.server.clone(),
            message: error.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
        });
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_auto_asks_and_not_a_server_remembered_as_of_the_handshake_era() {
        for remembered in [None, Some(Era::Handshake), Some(Era::Modern)] {
            assert_eq!(EraPlan::new(Protocol::Handshake, remembered), EraPlan::Known(Era::Handshake));
            assert_eq!(EraPlan::new(Protocol::Modern, remembered), EraPlan::Known(Era::Modern));
        }
        assert_eq!(EraPlan::new(Protocol::Auto, None), EraPlan::Probe);
        assert_eq!(EraPlan::new(Protocol::Auto, Some(Era::Handshake)), EraPlan::Known(Era::Handshake));
        assert_eq!(EraPlan::new(Protocol::Auto, Some(Era::Modern)), EraPlan::Probe, "asked anyway: no cost");
        let plans = [EraPlan::Probe, EraPlan::Known(Era::Handshake), EraPlan::Known(Era::Modern)];
        assert_eq!(plans.map(EraPlan::asks), [true, false, true]);
        assert_eq!(plans.map(EraPlan::requires_modern), [false, false, true]);
    }
}
