//! A remote server of the modern era (2026-07-28) over HTTP: no session, no
//! GET stream; every request is a POST of its own that carries its envelope
//! and says in headers what it is (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`), answered as JSON or on an event stream that carries its
//! progress and ends with its answer. A request is cancelled by closing its
//! stream, so the gateway keeps a handle on each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;
use tracing::{Instrument, debug};

use super::{Transport, fail, snippet};
use crate::backend::stdio::dispatch;
use crate::backend::{Backend, BackendHandler};
use crate::era::MODERN_VERSIONS;
use crate::jsonrpc::{self, Kind};
use crate::lock;

/// The requests on their way, by id (as JSON text): aborting one closes its stream.
#[derive(Default)]
pub(super) struct OpenStreams(Mutex<HashMap<String, tokio::task::AbortHandle>>);

impl OpenStreams {
    fn insert(&self, id: &Value, handle: tokio::task::AbortHandle) {
        lock(&self.0).insert(id.to_string(), handle);
    }

    fn remove(&self, id: &Value) -> Option<tokio::task::AbortHandle> {
        lock(&self.0).remove(&id.to_string())
    }
}

/// The `Mcp-Name` of a request: what it names (a tool, a prompt, a resource).
fn name_of(message: &Value) -> Option<&str> {
    let params = jsonrpc::params(message);
    match jsonrpc::method(message) {
        "tools/call" | "prompts/get" => params.get("name")?.as_str(),
        "resources/read" => params.get("uri")?.as_str(),
        _ => None,
    }
}

/// A header value as the modern transport wants it: as is when it is plain
/// visible ASCII, else `=?base64?…?=`.
fn header_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.starts_with("=?");
    if plain {
        value.to_string()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// POSTs one modern request with its headers.
pub(super) async fn post(transport: &Transport, message: &Value) -> Result<reqwest::Response, reqwest::Error> {
    let method = jsonrpc::method(message).to_string();
    let name = name_of(message).map(header_value);
    transport
        .send(|| {
            let mut request = transport
                .request(reqwest::Method::POST)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", MODERN_VERSIONS[0])
                .header("mcp-method", &method)
                .json(message);
            if let Some(name) = &name {
                request = request.header("mcp-name", name);
            }
            request
        })
        .await
}

/// `server/discover`, asked before anything else: the answer seen as an
/// `initialize` result when the server speaks a modern version.
pub(super) async fn discover(transport: &Transport) -> Option<Value> {
    let mut params = serde_json::json!({});
    crate::era::stamp(&mut params, &crate::era::gateway_envelope());
    let message = jsonrpc::request(Value::from("mcp-gateway-discover"), "server/discover", params);
    let response = post(transport, &message).await.ok()?;
    if !response.status().is_success() {
        debug!(server = %transport.server, status = %response.status(), "server/discover refused: handshake era");
        return None;
    }
    let mut answer = None;
    transport
        .read(response, |m| {
            if m.get("id") == message.get("id") {
                answer = m.get("result").cloned();
            }
        })
        .await
        .ok()?;
    answer.as_ref().and_then(crate::era::initialize_from_discover)
}

/// Sends one message of the gateway to a modern server: a request on a stream
/// of its own (kept, so a cancellation can close it); a cancellation closes
/// the stream it names; nothing else exists to send in this era.
pub(super) fn send(
    transport: &Arc<Transport>,
    backend: &Arc<Backend>,
    handler: &Arc<dyn BackendHandler>,
    message: Value,
) {
    match jsonrpc::kind(&message) {
        Kind::Request => {
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            let (transport2, backend2, handler2) = (transport.clone(), backend.clone(), handler.clone());
            let id2 = id.clone();
            let task = tokio::spawn(
                async move {
                    exchange(&transport2, &backend2, handler2.as_ref(), message).await;
                    transport2.open_streams.remove(&id2);
                }
                .in_current_span(),
            );
            transport.open_streams.insert(&id, task.abort_handle());
        }
        Kind::Notification if jsonrpc::method(&message) == "notifications/cancelled" => {
            let id = jsonrpc::params(&message).get("requestId").cloned().unwrap_or(Value::Null);
            if let Some(stream) = transport.open_streams.remove(&id) {
                stream.abort();
            }
        }
        _ => debug!(method = jsonrpc::method(&message), "nothing to send to a modern server"),
    }
}

async fn exchange(transport: &Transport, backend: &Arc<Backend>, handler: &dyn BackendHandler, message: Value) {
    let id = message.get("id").cloned();
    let origin = id.as_ref().and_then(|id| backend.session_of_request(id));
    let response = match post(transport, &message).await {
        Ok(response) => response,
        Err(e) => return fail(backend, id, format!("cannot reach {}: {e}", transport.url)),
    };
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return fail(backend, id, format!("HTTP {status}: {}", snippet(&body)));
    }
    if let Err(e) = transport.read(response, |m| dispatch(backend, handler, m, origin)).await {
        return fail(backend, id, e);
    }
    if let Some(id) = id.filter(|id| backend.awaits_answer(id)) {
        fail(backend, Some(id), "the server ended the answer stream without an answer".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_go_in_headers_plain_or_encoded() {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami"}});
        assert_eq!(name_of(&call), Some("whoami"));
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///a b"}});
        assert_eq!(name_of(&read), Some("file:///a b"));
        assert_eq!(header_value("whoami"), "whoami");
        assert_eq!(
            header_value("naïve"),
            format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode("naïve"))
        );
        assert!(header_value(" padded").starts_with("=?base64?"));
    }
}
