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

use base64::Engine;
use serde_json::Value;
use tracing::{Instrument, debug};

use super::{RemoteConnection, fail, snippet};
use crate::backend::dispatch::dispatch;
use crate::backend::{Backend, BackendHandler};
use crate::era::LATEST_MODERN_VERSION;
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

/// Where a tool's `x-mcp-header` annotations are: (property path, header token).
type Annotations = Vec<(Vec<String>, String)>;

/// What each tool of the server wants mirrored into `Mcp-Param-*` headers,
/// learnt from its `tools/list` answers (`None` until one was seen).
#[derive(Default)]
pub(super) struct ParamHeaders(Mutex<Option<HashMap<String, Annotations>>>);

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
            let annotations = tool.get("inputSchema").and_then(annotations).unwrap_or_default();
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

    /// The `Mcp-Param-*` headers of a call of `tool` with `arguments`: each
    /// annotated argument that is present and a scalar, rendered as the
    /// transport renders header values.
    fn headers(&self, tool: &str, arguments: &Value) -> Vec<(String, String)> {
        let known = lock(&self.0);
        let Some(annotations) = known.as_ref().and_then(|m| m.get(tool)) else { return Vec::new() };
        annotations
            .iter()
            .filter_map(|(path, token)| {
                let value = path.iter().try_fold(arguments, |node, key| node.get(key))?;
                let rendered = match value {
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => return None,
                };
                Some((format!("Mcp-Param-{token}"), header_value(&rendered)))
            })
            .collect()
    }
}

/// The valid `x-mcp-header` annotations of a tool's input schema: on a
/// property reached through `properties` alone, a string/integer/boolean,
/// named by an HTTP token, unique ignoring case. A schema with an invalid one
/// gets no headers at all (the server then checks none either).
fn annotations(schema: &Value) -> Option<Annotations> {
    fn walk(schema: &Value, path: &[String], out: &mut Annotations) -> Option<()> {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Some(()) };
        for (key, property) in properties {
            let mut at = path.to_vec();
            at.push(key.clone());
            if let Some(token) = property.get("x-mcp-header") {
                let token = token.as_str()?;
                let is_token = !token.is_empty()
                    && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                let scalar =
                    matches!(property.get("type").and_then(Value::as_str), Some("string" | "integer" | "boolean"));
                let unique = out.iter().all(|(_, seen)| !seen.eq_ignore_ascii_case(token));
                if !(is_token && scalar && unique) {
                    return None;
                }
                out.push((at.clone(), token.to_string()));
            }
            walk(property, &at, out)?;
        }
        Some(())
    }
    let mut out = Vec::new();
    walk(schema, &[], &mut out)?;
    Some(out)
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
    let response = post(transport, &message).await.ok()?;
    if !response.status().is_success() {
        debug!(server = %transport.server, status = %response.status(), "{method} refused");
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
    answer
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
pub(super) async fn post(transport: &RemoteConnection, message: &Value) -> Result<reqwest::Response, reqwest::Error> {
    let method = jsonrpc::method(message).to_string();
    let name = name_of(message).map(header_value);
    let mut params_headers = Vec::new();
    if method == "tools/call" {
        if !transport.param_headers.known() {
            Box::pin(learn_param_headers(transport)).await;
        }
        let params = jsonrpc::params(message);
        let arguments = params.get("arguments").unwrap_or(&Value::Null);
        params_headers = transport.param_headers.headers(name_of(message).unwrap_or_default(), arguments);
    }
    transport
        .send(|| {
            let mut request = transport
                .request(reqwest::Method::POST)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", LATEST_MODERN_VERSION)
                .header("mcp-method", &method)
                .json(message);
            if let Some(name) = &name {
                request = request.header("mcp-name", name);
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
    let response = match post(transport, &message).await {
        Ok(response) => response,
        Err(e) => {
            return fail(
                backend,
                id,
                format!("cannot reach {}: {}", transport.shown_url, crate::redact::http_error(&e)),
            );
        }
    };
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return fail(backend, id, format!("HTTP {status}: {}", snippet(&body)));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotated_arguments_become_param_headers() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
            "opts": {"type": "object", "properties": {"tenant": {"type": "integer", "x-mcp-header": "Tenant"}}},
            "plain": {"type": "string"}
        }});
        let headers = ParamHeaders::default();
        assert!(!headers.known());
        headers.learn(&[json!({"name": "deploy", "inputSchema": schema})], true);
        let got = headers
            .headers("deploy", &json!({"region": "eu-west 1", "dry": true, "opts": {"tenant": 42}, "plain": "x"}));
        assert_eq!(
            got,
            [
                ("Mcp-Param-Region".to_string(), "eu-west 1".to_string()),
                ("Mcp-Param-Dry-Run".to_string(), "true".to_string()),
                ("Mcp-Param-Tenant".to_string(), "42".to_string()),
            ]
        );
        assert!(headers.headers("deploy", &json!({"plain": "x"})).is_empty(), "absent arguments send nothing");
        assert_eq!(headers.headers("deploy", &json!({"region": "Zürich"}))[0].1, header_value("Zürich"));
        // Invalid annotations (a number, a duplicate) mean no headers for that tool.
        let bad = json!({"properties": {"n": {"type": "number", "x-mcp-header": "N"}}});
        assert_eq!(annotations(&bad), None);
        let dup = json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}});
        assert_eq!(annotations(&dup), None);
    }

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
