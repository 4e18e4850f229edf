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

use super::{BACKEND_PROTOCOL_VERSION, Backend, BackendError, stderr_suffix};

/// How a new instance's era is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraPlan {
    /// Ask with `server/discover`, fall back to `initialize`.
    Probe,
    Handshake,
    Modern,
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
    if era != EraPlan::Handshake {
        let started = std::time::Instant::now();
        match discover(backend, timeout).await? {
            Some(result) => {
                backend.set_modern();
                return Ok(result);
            }
            None if era == EraPlan::Modern => return Err(not_modern(&backend.server)),
            None => debug!(elapsed = ?started.elapsed(), "the server is of the handshake era"),
        }
        return handshake(backend, timeout.saturating_sub(started.elapsed())).await;
    }
    handshake(backend, timeout).await
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
        "protocolVersion": BACKEND_PROTOCOL_VERSION,
        "capabilities": capabilities,
        "clientInfo": {"name": "mcp-gateway", "version": crate::VERSION},
    });
    let response = startup_request(backend, "initialize", params, timeout).await?;
    if let Some(error) = response.get("error") {
        return Err(BackendError::Initialize {
            server: backend.server.clone(),
            message: error.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
        });
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}
