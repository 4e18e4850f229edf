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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::streams::HttpSession;
use super::{CWD_HEADER, Caller, FrontDoor, OpenError, json_response, plain};
use crate::era::{SUBSCRIPTION_ID_KEY, VERSION_KEY};
use crate::jsonrpc::{self, Kind};
use crate::lock;

/// Whether a request's `MCP-Protocol-Version` names the modern era.
pub(super) fn is_modern(headers: &HeaderMap) -> bool {
    headers
        .get(super::VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| crate::era::MODERN_VERSIONS.contains(&v))
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

/// A modern-era POST: one request (or a notification) and its own stream.
pub(super) async fn post(front: &Arc<FrontDoor>, caller: &Caller, headers: &HeaderMap, mut message: Value) -> Response {
    let header = headers.get(super::VERSION_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if jsonrpc::kind(&message) != Kind::Request {
        // Its one notification, `notifications/cancelled`, is said over HTTP by
        // closing the request's stream.
        return StatusCode::ACCEPTED.into_response();
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let enveloped = jsonrpc::params(&message).get("_meta").and_then(|m| m.get(VERSION_KEY)).and_then(Value::as_str);
    let Some(version) = enveloped else {
        let message = format!("a {header} request needs `_meta.{VERSION_KEY}` and its other envelope keys");
        return json_response(StatusCode::BAD_REQUEST, &jsonrpc::error(id, jsonrpc::INVALID_PARAMS, message));
    };
    if version != header {
        let error = jsonrpc::error(
            id,
            jsonrpc::HEADER_MISMATCH,
            format!("the MCP-Protocol-Version header ({header}) and the envelope ({version}) disagree"),
        );
        return json_response(StatusCode::BAD_REQUEST, &error);
    }
    let cwd = headers.get(CWD_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let session = match shared_session(front, caller, cwd).await {
        Ok(session) => session,
        Err(OpenError::Full) => return plain(StatusCode::SERVICE_UNAVAILABLE, "too many sessions"),
        Err(OpenError::Refused(reason)) => {
            return json_response(StatusCode::BAD_REQUEST, &jsonrpc::error(id, jsonrpc::INVALID_REQUEST, reason));
        }
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
    let (stream, rx) = session.open_request(&key, wire_token.as_ref());
    if session.to_gateway.send(jsonrpc::to_line(&message)).is_err() {
        session.abandon(&key, &stream);
        return plain(StatusCode::NOT_FOUND, "session closed");
    }
    super::event_stream(super::request_events(rx, session, stream, Some(restore)))
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
    let (id, session) = super::open_session(front, caller, cwd).await?;
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
