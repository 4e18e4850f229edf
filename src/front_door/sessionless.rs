//! The modern era (2026-07-28) at the front door: a POST whose
//! `MCP-Protocol-Version` is modern belongs to no session; it is authenticated
//! on its own, like every request. Every such request of one caller (the same
//! credential, same working directory) is served by one
//! shared gateway session of the modern era, so a parked `input_required` call
//! is found again by the retry, whichever connection brings it. As requests of
//! many clients meet there, each one's id and progress token are replaced by
//! ones unique in the session on the way in, and restored on the way out
//! (listen streams' subscription ids too). A stream the client closes cancels
//! its request: in this era that is how a client cancels over HTTP.
//!
//! Before anything serves a request it goes through the revision's checks
//! (envelope, routing headers, version, removed methods), and every error
//! answer, wherever it came from, carries the HTTP status the revision gives
//! its code; so an answer that comes alone goes out as JSON, and a request's
//! stream starts only with a message that is not its answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::streams::HttpSession;
use super::{CWD_HEADER, Caller, DetachOnDrop, FrontDoor, OpenError, json_response, plain};
use crate::era::{CAPABILITIES_KEY, MODERN_VERSIONS, SUBSCRIPTION_ID_KEY, VERSION_KEY};
use crate::jsonrpc::{self, Kind};
use crate::{lock, routing_headers};

/// Whether a request belongs to this module: its `MCP-Protocol-Version` is
/// not one of the handshake era (a version the gateway does not know is
/// answered here, in the modern era's words, as a dual-era server does).
pub(super) fn is_sessionless(headers: &HeaderMap) -> bool {
    header(headers, super::VERSION_HEADER).is_some_and(|v| !crate::era::HANDSHAKE_VERSIONS.contains(&v.as_str()))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The HTTP status of a modern answer: an error the revision gives a status
/// (a malformed request, a missing capability, an unsupported version: 400;
/// an unknown method: 404) has it, wherever it was produced; anything else
/// is 200.
fn status_of(answer: &Value) -> StatusCode {
    match answer.pointer("/error/code").and_then(Value::as_i64) {
        Some(
            jsonrpc::PARSE_ERROR
            | jsonrpc::INVALID_REQUEST
            | jsonrpc::INVALID_PARAMS
            | jsonrpc::HEADER_MISMATCH
            | jsonrpc::MISSING_CAPABILITY
            | jsonrpc::UNSUPPORTED_VERSION,
        ) => StatusCode::BAD_REQUEST,
        Some(jsonrpc::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

fn answer(answer: &Value) -> Response {
    json_response(status_of(answer), answer)
}

fn unsupported_version(id: Value, requested: &Value) -> Value {
    jsonrpc::error_with_data(
        id,
        jsonrpc::UNSUPPORTED_VERSION,
        format!("Unsupported protocol version {requested}"),
        json!({ "supported": crate::era::all_versions(), "requested": requested }),
    )
}

/// The revision's checks of a request before anything serves it, in its
/// order (the first that fails answers): an envelope with the two required
/// keys; headers that say what the body says (`MCP-Protocol-Version`,
/// `Mcp-Method`, `Mcp-Name`); a version the gateway speaks; a method the
/// revision has.
fn check(message: &Value, headers: &HeaderMap) -> Result<(), Value> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let invalid = |text: String| jsonrpc::error(id.clone(), jsonrpc::INVALID_PARAMS, text);
    let Some(meta) = jsonrpc::params(message).get("_meta").and_then(Value::as_object) else {
        return Err(invalid(format!(
            "params._meta must be an object carrying the envelope keys `{VERSION_KEY}` and `{CAPABILITIES_KEY}`"
        )));
    };
    let missing: Vec<&str> = [VERSION_KEY, CAPABILITIES_KEY].into_iter().filter(|k| !meta.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(invalid(format!("params._meta lacks the envelope key(s) {}", missing.join(", "))));
    }
    let version = &meta[VERSION_KEY];
    let mismatch = |text: String| jsonrpc::error(id.clone(), jsonrpc::HEADER_MISMATCH, text);
    let header_version = header(headers, super::VERSION_HEADER).unwrap_or_default();
    if version.as_str() != Some(header_version.as_str()) {
        return Err(mismatch(format!(
            "the MCP-Protocol-Version header ({header_version}) is not the envelope's version ({version})"
        )));
    }
    if let Some(text) = routing_headers::mismatch(message, |name| header(headers, name)) {
        return Err(mismatch(text));
    }
    if !MODERN_VERSIONS.contains(&header_version.as_str()) {
        return Err(unsupported_version(id, version));
    }
    let method = jsonrpc::method(message);
    if crate::era::REMOVED_METHODS.contains(&method) {
        let text = format!("Method not found: {method} (MCP {header_version} removed it)");
        return Err(jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, text));
    }
    Ok(())
}

/// What a request's messages carry on the wire, and what the client sent: the
/// one put back in place of the other on the way out.
#[derive(Clone)]
pub(super) struct Restore {
    wire_id: Value,
    id: Value,
    token: Option<(Value, Value)>,
}

impl Restore {
    pub(super) fn wire_id(&self) -> Value {
        self.wire_id.clone()
    }

    pub(super) fn apply(&self, mut message: Value) -> Value {
        if jsonrpc::kind(&message) == Kind::Response && message.get("id") == Some(&self.wire_id) {
            message["id"] = self.id.clone();
        }
        if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
            if let Some((wire, original)) = &self.token
                && params.get("progressToken") == Some(wire)
            {
                params.insert("progressToken".into(), original.clone());
            }
            if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut)
                && meta.get(SUBSCRIPTION_ID_KEY) == Some(&self.wire_id)
            {
                meta.insert(SUBSCRIPTION_ID_KEY.into(), self.id.clone());
            }
        }
        message
    }
}

/// Makes wire ids unique across every modern request of the front door.
static NEXT_WIRE_ID: AtomicU64 = AtomicU64::new(1);

/// A modern-era POST: one request (or a notification), answered in JSON when
/// the answer is all there is, else on an event stream of its own.
pub(super) async fn post(front: &Arc<FrontDoor>, caller: &Caller, headers: &HeaderMap, mut message: Value) -> Response {
    if jsonrpc::kind(&message) != Kind::Request {
        // Its one notification, `notifications/cancelled`, is said over HTTP by
        // closing the request's stream.
        let version = header(headers, super::VERSION_HEADER).unwrap_or_default();
        if !MODERN_VERSIONS.contains(&version.as_str()) {
            return answer(&unsupported_version(Value::Null, &version.into()));
        }
        return StatusCode::ACCEPTED.into_response();
    }
    if let Err(error) = check(&message, headers) {
        return answer(&error);
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let cwd = headers.get(CWD_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let session = match shared_session(front, caller, cwd).await {
        Ok(session) => session,
        Err(OpenError::Full) => return plain(StatusCode::SERVICE_UNAVAILABLE, "too many sessions"),
        Err(OpenError::Refused(reason)) => return answer(&jsonrpc::error(id, jsonrpc::INVALID_REQUEST, reason)),
    };
    session.touch();
    let n = NEXT_WIRE_ID.fetch_add(1, Ordering::Relaxed);
    let wire_id = Value::String(format!("http-{n}"));
    message["id"] = wire_id.clone();
    let token = match message.pointer_mut("/params/_meta/progressToken") {
        Some(token) => {
            let wire = Value::String(format!("http-{n}-progress"));
            Some((wire.clone(), std::mem::replace(token, wire)))
        }
        None => None,
    };
    let restore = Restore { wire_id: wire_id.clone(), id, token };
    let key = wire_id.to_string();
    let wire_token = restore.token.as_ref().map(|(wire, _)| wire.clone());
    let (stream, mut rx) = session.open_request(&key, wire_token.as_ref());
    if session.to_gateway.send(jsonrpc::to_line(&message)).is_err() {
        session.abandon(&key, &stream);
        return plain(StatusCode::NOT_FOUND, "session closed");
    }
    // The guard first: a client that goes away while the answer is awaited
    // cancels the request.
    let mut guard = DetachOnDrop { session, stream, answer_sent: false, cancel: Some(wire_id) };
    // Whether the answer is all there is decides JSON or a stream, and the
    // status: so nothing is sent before the first message.
    let Some(first) = rx.recv().await else { return plain(StatusCode::INTERNAL_SERVER_ERROR, "session closed") };
    if first.2 {
        guard.answer_sent = true;
        return answer(&restore.apply(first.1));
    }
    super::event_stream(super::events_after(guard, Some(first), rx, Some(restore)))
}

/// The caller's shared modern session, opened on first use (and again after it
/// expired or closed).
async fn shared_session(
    front: &Arc<FrontDoor>,
    caller: &Caller,
    cwd: Option<String>,
) -> Result<Arc<HttpSession>, OpenError> {
    // The credential's keyed hash, not its value; its mapping is part of it.
    let key = serde_json::to_string(&(caller.credential.digest(), &cwd)).unwrap_or_default();
    let known = lock(&front.modern_sessions).get(&key).cloned();
    if let Some(id) = known
        && let Some(session) = lock(&front.sessions).get(&id).cloned()
        && !session.closed.is_cancelled()
        && session.owner == caller.credential
    {
        return Ok(session);
    }
    let (id, session) = super::open_session(front, caller, cwd, None).await?;
    lock(&front.modern_sessions).insert(key, id);
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_tokens_and_subscription_ids_come_back_as_the_client_sent_them() {
        let restore =
            Restore { wire_id: json!("http-7"), id: json!(1), token: Some((json!("http-7-progress"), json!("mine"))) };
        assert_eq!(restore.apply(json!({"jsonrpc": "2.0", "id": "http-7", "result": {}}))["id"], 1);
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "http-7-progress", "progress": 1}});
        assert_eq!(restore.apply(progress)["params"]["progressToken"], "mine");
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
            "params": {"_meta": {SUBSCRIPTION_ID_KEY: "http-7"}}});
        assert_eq!(restore.apply(changed)["params"]["_meta"][SUBSCRIPTION_ID_KEY], 1);
        let other = json!({"jsonrpc": "2.0", "id": "http-8", "result": {}});
        assert_eq!(restore.apply(other.clone()), other);
    }
}
