//! JSON-RPC 2.0 on raw `serde_json::Value`s.
//!
//! The gateway never deserialises messages into typed structs: it reads the few
//! fields it routes on (`id`, `method`, `params._meta`) and passes everything else
//! through untouched, so that protocol fields newer than this build survive.

use serde_json::{Map, Value, json};

// Error codes, each defined here once: JSON-RPC's own, then MCP's.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP: a `resources/read` for a URI no server has.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// MCP 2025-11-25: the request needs the person to visit a URL first
/// (URLElicitationRequiredError; `data.elicitations` says where).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;
/// A request that timed out (as the MCP SDKs use it).
pub const REQUEST_TIMEOUT: i64 = -32001;
/// MCP 2026-07-28: the `MCP-Protocol-Version` header and the envelope disagree.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the request's envelope lacks a client capability the call
/// needs (`data.requiredCapabilities` names it).
pub const MISSING_CAPABILITY: i64 = -32021;
/// MCP 2026-07-28: the request names a protocol version the peer does not speak.
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// What a decoded JSON value is, by the JSON-RPC rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid,
}

/// Classifies one JSON-RPC message (not a batch).
pub fn kind(message: &Value) -> Kind {
    let Some(obj) = message.as_object() else { return Kind::Invalid };
    let has_method = obj.get("method").is_some_and(Value::is_string);
    let id = obj.get("id");
    let valid_id = id.is_some_and(|id| id.is_string() || id.is_number() || id.is_null());
    match (has_method, id) {
        (true, None) => Kind::Notification,
        (true, Some(_)) if valid_id => Kind::Request,
        (false, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => Kind::Response,
        _ => Kind::Invalid,
    }
}

/// The `method` of a request or notification.
pub fn method(message: &Value) -> &str {
    message.get("method").and_then(Value::as_str).unwrap_or_default()
}

/// The `params` of a message, or JSON null.
pub fn params(message: &Value) -> &Value {
    message.get("params").unwrap_or(&Value::Null)
}

/// A response carrying `result`.
pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A response carrying an error object.
pub fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// A response carrying an error object with `data`.
pub fn error_with_data(id: Value, code: i64, message: impl Into<String>, data: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into(), "data": data}})
}

/// A request.
pub fn request(id: Value, method: &str, params: Value) -> Value {
    let mut msg = Map::new();
    msg.insert("jsonrpc".into(), "2.0".into());
    msg.insert("id".into(), id);
    msg.insert("method".into(), method.into());
    if !params.is_null() {
        msg.insert("params".into(), params);
    }
    Value::Object(msg)
}

/// A request with a numeric id, serialised as one stdio line: the same text as
/// `to_line(&request(id.into(), method, params))`, without building the message.
pub fn request_line(id: u64, method: &str, params: &Value) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Request<'a> {
        jsonrpc: &'static str,
        id: u64,
        method: &'a str,
        #[serde(skip_serializing_if = "Value::is_null")]
        params: &'a Value,
    }
    let mut line =
        serde_json::to_vec(&Request { jsonrpc: "2.0", id, method, params }).unwrap_or_else(|_| b"null".to_vec());
    line.push(b'\n');
    line
}

/// A notification.
pub fn notification(method: &str, params: Value) -> Value {
    let mut msg = Map::new();
    msg.insert("jsonrpc".into(), "2.0".into());
    msg.insert("method".into(), method.into());
    if !params.is_null() {
        msg.insert("params".into(), params);
    }
    Value::Object(msg)
}

/// Serialises a message as one stdio line (compact JSON never contains a raw newline).
pub fn to_line(message: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).unwrap_or_else(|_| b"null".to_vec());
    line.push(b'\n');
    line
}

/// The `params._meta.progressToken` of a request, if any.
pub fn progress_token(params: &Value) -> Option<&Value> {
    params.get("_meta")?.get("progressToken")
}

/// Replaces `params._meta.progressToken`, returning the old token.
pub fn replace_progress_token(params: &mut Value, token: Value) -> Option<Value> {
    let slot = params.get_mut("_meta")?.get_mut("progressToken")?;
    Some(std::mem::replace(slot, token))
}

// ---------------------------------------------------------------------------
/// Ids the gateway mints
///
/// Requests and tokens the gateway itself puts on the wire, spelled once so
/// that no two kinds can be given the same spelling by accident, and so that a
/// reader of a backend's log can tell what sent them. They are strings on
/// purpose: a backend connection's own request ids are integers (see
/// `backend::pending`), so no minted id can be taken for the answer to a
/// session's request.
pub mod ids {
    /// Prefix of the gateway's listen streams on modern servers
    /// (`subscriptions/listen`), numbered from 1 per backend: an answer with
    /// this prefix means the server ended a stream, not a call's answer.
    pub const LISTEN_PREFIX: &str = "mcp-gateway-listen-";
    /// Prefix of the progress token that stands in for a session's own on a
    /// request to a backend, followed by the request's backend-side id (unique
    /// per backend connection, so two sessions' tokens cannot meet).
    pub const PROGRESS_TOKEN_PREFIX: &str = "mcp-gateway-";
    /// The `initialize` replayed to a remote server that forgot the gateway's
    /// session (its answer is read on the spot, never by the pending table).
    pub const REINITIALIZE: &str = "mcp-gateway-reinitialize";
    /// The gateway's own `tools/list` to a modern remote server, for the
    /// `x-mcp-header` annotations a call must mirror into headers.
    pub const LIST_TOOLS: &str = "mcp-gateway-tools";
    /// The `server/discover` that asks a remote server its era at start.
    pub const DISCOVER: &str = "mcp-gateway-discover";
    /// Prefix of the id a backend's request to a client (sampling,
    /// elicitation) carries to that client, numbered from 1 per daemon. It
    /// travels the other way from a progress token, so the two never meet.
    pub const SERVER_REQUEST_PREFIX: &str = "mcp-gateway-";
    /// Prefix of the gateway's own questions to a client (the meta-tools'
    /// elicitations), numbered from 1 per session.
    pub const ASK_PREFIX: &str = "mcp-gateway-ask-";
    /// Prefix of the `requestState` of a modern client's parked call (followed
    /// by an unguessable id): recognisable, so that a modern server's own state
    /// (passed through to a modern client) is never taken for one.
    pub const REQUEST_STATE_PREFIX: &str = "mcp-gateway:";
}
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})), Kind::Request);
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":"a","method":"ping"})), Kind::Request);
        assert_eq!(kind(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})), Kind::Notification);
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":1,"result":{}})), Kind::Response);
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}})), Kind::Response);
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":{},"method":"ping"})), Kind::Invalid);
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":1})), Kind::Invalid);
        assert_eq!(kind(&json!([1, 2])), Kind::Invalid);
        assert_eq!(kind(&json!("x")), Kind::Invalid);
    }

    #[test]
    fn request_line_is_the_request_serialised() {
        for params in [Value::Null, json!({"name": "t", "arguments": {"z": 1, "a": [1, "x"]}})] {
            assert_eq!(
                request_line(7, "tools/call", &params),
                to_line(&request(json!(7), "tools/call", params.clone()))
            );
        }
    }

    #[test]
    fn progress_token_round_trip() {
        let mut params = json!({"name":"t","_meta":{"progressToken": 7}});
        assert_eq!(progress_token(&params), Some(&json!(7)));
        assert_eq!(replace_progress_token(&mut params, json!("gw-1")), Some(json!(7)));
        assert_eq!(progress_token(&params), Some(&json!("gw-1")));
        assert_eq!(replace_progress_token(&mut json!({}), json!(1)), None);
    }
}
