//! What happens to each message a backend sends, whatever carried it: a stdio
//! child's line, an HTTP answer's body or event, a legacy SSE stream's event.
//!
//! One function for every transport, so that the rules (pings answered here,
//! progress back to the session that asked, server requests attributed,
//! answers matched to their caller) cannot drift apart between transports.
//! The transports only decode bytes into JSON and say which session's stream a
//! message came on, when theirs can tell.

use std::sync::Arc;

use serde_json::{Value, json};
use tracing::{debug, warn};

use super::{Backend, BackendHandler};
use crate::jsonrpc::{self, Kind};
use crate::sink::SessionId;

/// Routes one message from the backend. `origin`: the session whose request
/// opened the stream it came on (HTTP backends), when known.
pub(super) fn dispatch(
    backend: &Arc<Backend>,
    handler: &dyn BackendHandler,
    message: Value,
    origin: Option<SessionId>,
) {
    match jsonrpc::kind(&message) {
        Kind::Response
            if message
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.starts_with(jsonrpc::ids::LISTEN_PREFIX)) =>
        {
            let error = message.get("error").map(ToString::to_string).unwrap_or_default();
            debug!(error, "the server ended the gateway's listen stream (list changes will not be heard)");
        }
        Kind::Response => {
            if !backend.pending.complete(message) {
                debug!("dropped a response to an unknown or cancelled request id");
            }
        }
        Kind::Request if jsonrpc::method(&message) == "ping" => {
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            backend.send(&jsonrpc::result(id, json!({})));
        }
        Kind::Request => handler.on_request(backend, message, origin),
        Kind::Notification if jsonrpc::method(&message) == "notifications/progress" => {
            let mut message = message;
            if let Some(params) = message.get_mut("params")
                && let Some(sink) = backend.pending.route_progress(params)
            {
                sink.send(message);
            } else {
                debug!("dropped progress for a request that is no longer in flight");
            }
        }
        Kind::Notification => handler.on_notification(backend, message),
        Kind::Invalid => warn!("dropped an invalid JSON-RPC message from the backend"),
    }
}
