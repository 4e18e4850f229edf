//! A remote server of the modern era (2026-07-28) over HTTP: no session, no
//! GET stream; every request is a POST of its own that carries its envelope
//! and says in headers what it is (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`), answered as JSON or on an event stream that carries its
//! progress and ends with its answer. A request is cancelled by closing its
//! stream, so the gateway keeps a handle on each. A `tools/call` also mirrors
//! the arguments its tool's schema marks with `x-mcp-header` into
//! `Mcp-Param-<Name>` headers (the server rejects the call without them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::{Instrument, debug};

use super::{RemoteConnection, fail, fail_refused};
use crate::backend::dispatch::dispatch;
use crate::backend::{Backend, BackendHandler};
use crate::era::LATEST_MODERN_VERSION;
use crate::jsonrpc::{self, Kind};
use crate::lock;
use crate::routing_headers;

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

/// What each tool of the server wants mirrored into `Mcp-Param-*` headers,
/// learnt from its `tools/list` answers (`None` until one was seen).
#[derive(Default)]
pub(super) struct ParamHeaders(Mutex<Option<HashMap<String, routing_headers::Annotations>>>);

impl ParamHeaders {
    /// Takes in one page of a `tools/list` answer (the first page starts afresh).
    fn learn(&self, tools: &[Value], first_page: bool) {
        let mut known = lock(&self.0);
        let map = known.get_or_insert_with(HashMap::new);
        if first_page {
            map.clear();
        }
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
            let annotations = tool.get("inputSchema").and_then(routing_headers::annotations).unwrap_or_default();
            if annotations.is_empty() {
                map.remove(name);
            } else {
                map.insert(name.to_string(), annotations);
            }
        }
    }

    fn known(&self) -> bool {
        lock(&self.0).is_some()
    }

    /// The `Mcp-Param-*` headers of a call of `tool` with `arguments`.
    fn headers(&self, tool: &str, arguments: &Value) -> Vec<(String, String)> {
        let known = lock(&self.0);
        let Some(annotations) = known.as_ref().and_then(|m| m.get(tool)) else { return Vec::new() };
        routing_headers::param_headers(annotations, arguments)
    }
}

/// Lists the server's tools once, for their `x-mcp-header` annotations, when
/// a call comes before any listing (the gateway's catalog may come from disk).
async fn learn_param_headers(transport: &RemoteConnection) {
    let mut cursor: Option<Value> = None;
    loop {
        let mut params = serde_json::json!({});
        if let Some(cursor) = &cursor {
            params["cursor"] = cursor.clone();
        }
        let Some(result) = ask(transport, jsonrpc::ids::LIST_TOOLS, "tools/list", params).await else { return };
        let tools = result.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
        transport.param_headers.learn(&tools, cursor.is_none());
        cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() {
            return;
        }
    }
}

/// Asks the server something on the gateway's own behalf (with the gateway's
/// envelope): the result, or `None` when it refused or gave none.
async fn ask(transport: &RemoteConnection, id: &str, method: &str, mut params: Value) -> Option<Value> {
    crate::era::stamp(&mut params, &crate::era::gateway_envelope());
    let message = jsonrpc::request(Value::from(id), method, params);
    let response = match post_negotiating(transport, &message).await.ok()? {
        Posted::Answer(response) => response,
        Posted::Refused(status, _) => {
            debug!(server = %transport.server, %status, "{method} refused");
            return None;
        }
    };
    let mut answer = None;
    transport
        .read(response, |m| {
            if m.get("id") == message.get("id") {
                answer = m.get("result").cloned();
            }
        })
        .await
        .ok()?;
    answer
}

/// What a POST of a modern request came to.
enum Posted {
    /// A success status: the answer is in the body, JSON or an event stream.
    Answer(reqwest::Response),
    /// Any other status, with the body (a JSON-RPC error, usually).
    Refused(reqwest::StatusCode, String),
}

impl Posted {
    async fn of(response: reqwest::Response) -> Posted {
        let status = response.status();
        if status.is_success() {
            return Posted::Answer(response);
        }
        Posted::Refused(status, response.text().await.unwrap_or_default())
    }
}

/// POSTs one modern request; when the server refuses the protocol version it
/// carries (HTTP 400, -32022) yet names one the gateway speaks, sends it once
/// more at that version, envelope and header alike (SEP-2575: a client
/// retries with a mutually supported version rather than fail the call).
async fn post_negotiating(transport: &RemoteConnection, message: &Value) -> Result<Posted, reqwest::Error> {
    let (status, body) = match Posted::of(post(transport, message).await?).await {
        Posted::Refused(status, body) => (status, body),
        answer => return Ok(answer),
    };
    let refusal = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    let version_refused = status == reqwest::StatusCode::BAD_REQUEST
        && refusal.pointer("/error/code").and_then(Value::as_i64) == Some(jsonrpc::UNSUPPORTED_VERSION);
    let retry = crate::era::version_to_retry(&refusal).filter(|_| version_refused);
    let Some(version) = retry else { return Ok(Posted::Refused(status, body)) };
    debug!(server = %transport.server, method = jsonrpc::method(message), version, "version refused; sending again");
    let mut again = message.clone();
    if let Some(meta) = again.pointer_mut("/params/_meta").and_then(Value::as_object_mut) {
        meta.insert(crate::era::VERSION_KEY.to_string(), Value::from(version));
    }
    Ok(Posted::of(post(transport, &again).await?).await)
}

/// POSTs one modern request with its headers. `MCP-Protocol-Version` says
/// what the envelope says (the two must agree), the latest version when the
/// request carries none.
async fn post(transport: &RemoteConnection, message: &Value) -> Result<reqwest::Response, reqwest::Error> {
    let method = jsonrpc::method(message).to_string();
    let version = crate::era::version_of(jsonrpc::params(message)).unwrap_or(LATEST_MODERN_VERSION).to_string();
    let name = routing_headers::name_of(message).map(routing_headers::encode);
    let mut params_headers = Vec::new();
    if method == "tools/call" {
        if !transport.param_headers.known() {
            Box::pin(learn_param_headers(transport)).await;
        }
        let params = jsonrpc::params(message);
        let arguments = params.get("arguments").unwrap_or(&Value::Null);
        params_headers =
            transport.param_headers.headers(routing_headers::name_of(message).unwrap_or_default(), arguments);
    }
    transport
        .send(|| {
            let mut request = transport
                .post_to(&transport.url, message)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", &version)
                .header(routing_headers::METHOD_HEADER, &method);
            if let Some(name) = &name {
                request = request.header(routing_headers::NAME_HEADER, name);
            }
            for (header, value) in &params_headers {
                request = request.header(header.as_str(), value.as_str());
            }
            request
        })
        .await
}

/// `server/discover`, asked before anything else: the answer seen as an
/// `initialize` result when the server speaks a modern version.
pub(super) async fn discover(transport: &RemoteConnection) -> Option<Value> {
    // A refusal means the handshake era.
    let answer = ask(transport, jsonrpc::ids::DISCOVER, "server/discover", serde_json::json!({})).await;
    answer.as_ref().and_then(crate::era::initialize_from_discover)
}

/// Sends one message of the gateway to a modern server: a request on a stream
/// of its own (kept, so a cancellation can close it); a cancellation closes
/// the stream it names; nothing else exists to send in this era.
pub(super) fn send(
    transport: &Arc<RemoteConnection>,
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

async fn exchange(transport: &RemoteConnection, backend: &Arc<Backend>, handler: &dyn BackendHandler, message: Value) {
    let id = message.get("id").cloned();
    let origin = id.as_ref().and_then(|id| backend.session_of_request(id));
    let response = match post_negotiating(transport, &message).await {
        Ok(Posted::Answer(response)) => response,
        Ok(Posted::Refused(status, body)) => {
            // The revision answers some errors with a 4xx status and the
            // JSON-RPC error as the body (-32020, -32021, -32022): that error
            // is the server's answer, to be relayed as it is.
            return match refusal_answer(&body, id.as_ref()) {
                Some(answer) => dispatch(backend, handler, answer, origin),
                None => fail_refused(transport, backend, &message, id, status, &body),
            };
        }
        Err(e) => {
            return fail(
                backend,
                id,
                format!("cannot reach {}: {}", transport.shown_url, crate::redact::http_error(&e)),
            );
        }
    };
    let listing =
        (jsonrpc::method(&message) == "tools/list").then(|| jsonrpc::params(&message).get("cursor").is_none());
    let learn = |m: &Value| {
        if let Some(first_page) = listing
            && m.get("id") == id.as_ref()
            && let Some(tools) = m.pointer("/result/tools").and_then(Value::as_array)
        {
            transport.param_headers.learn(tools, first_page);
        }
    };
    if let Err(e) = transport
        .read(response, |m| {
            learn(&m);
            dispatch(backend, handler, m, origin)
        })
        .await
    {
        return fail(backend, id, e);
    }
    if let Some(id) = id.filter(|id| backend.awaits_answer(id)) {
        fail(backend, Some(id), "the server ended the answer stream without an answer".into());
    }
}

/// A refused POST's body when it is the JSON-RPC error answer to `id`.
fn refusal_answer(body: &str, id: Option<&Value>) -> Option<Value> {
    let answer: Value = serde_json::from_str(body).ok()?;
    (answer.get("error").is_some_and(Value::is_object) && id.is_some() && answer.get("id") == id).then_some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refusal_whose_body_is_the_error_answer_is_the_answer() {
        let body = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32021,"message":"needs sampling"}}"#;
        assert_eq!(refusal_answer(body, Some(&json!(7))).unwrap()["error"]["code"], -32021);
        assert!(refusal_answer(body, Some(&json!(8))).is_none(), "another request's");
        assert!(refusal_answer(body, None).is_none(), "a notification has no answer");
        assert!(refusal_answer("<html>bad gateway</html>", Some(&json!(7))).is_none());
        assert!(refusal_answer(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#, Some(&json!(7))).is_none());
    }

    #[test]
    fn param_headers_are_learnt_per_tool_from_listings() {
        let schema = json!({"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}});
        let headers = ParamHeaders::default();
        assert!(!headers.known());
        headers.learn(&[json!({"name": "deploy", "inputSchema": schema})], true);
        assert!(headers.known());
        let got = headers.headers("deploy", &json!({"region": "Zürich"}));
        assert_eq!(got, [("Mcp-Param-Region".to_string(), routing_headers::encode("Zürich"))]);
        assert!(headers.headers("other", &json!({"region": "x"})).is_empty());
        // A first page starts afresh: the tool is gone.
        headers.learn(&[json!({"name": "other"})], true);
        assert!(headers.headers("deploy", &json!({"region": "x"})).is_empty());
    }
}
