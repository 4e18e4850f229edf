//! The HTTP+SSE transport of protocol 2024-11-05, for servers that predate
//! Streamable HTTP: the client GETs one long event stream, whose first event
//! (`endpoint`) names where to POST; every answer, request and notification of
//! the server comes back on that one stream.
//!
//! With one stream for everything, nothing says which session a server request
//! belongs to, so those go to the gateway's attribution rules like a stdio
//! server's. The stream is the session: when it ends, the instance has ended,
//! and the pool starts a new one on the next call.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tracing::{Instrument, debug, info, warn};

use super::{RemoteConnection, fail, snippet};
use crate::backend::dispatch::dispatch;
use crate::backend::{Backend, BackendHandler};
use crate::era::HTTP_SSE_VERSION;
use crate::lock;
use crate::redact::{RedactedUrl, http_error};

/// How long the server has to name its endpoint once the stream is open.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server has to take a message (its answer comes later, on the stream).
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the event stream, waits for its `endpoint` event and keeps reading the
/// stream on a task of its own. Returns the endpoint, also kept in the transport.
pub(super) async fn open(
    transport: Arc<RemoteConnection>,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
) -> Result<reqwest::Url, String> {
    let response = transport
        .send(|| transport.request(reqwest::Method::GET).header("accept", "text/event-stream"))
        .await
        .map_err(|e| format!("GET {}: {}", transport.shown_url, http_error(&e)))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("GET answered HTTP {status}: {}", snippet(&body)));
    }
    let base = response.url().clone();
    let mut events = super::events_of(response);
    let endpoint = tokio::time::timeout(ENDPOINT_TIMEOUT, async {
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| format!("the event stream broke: {e}"))?;
            if event.event == "endpoint" {
                return base
                    .join(event.data.trim())
                    .map_err(|e| format!("the endpoint `{}` is not a URL: {e}", event.data.trim()));
            }
        }
        Err("the event stream ended before naming an endpoint".to_string())
    })
    .await
    .map_err(|_| format!("no `endpoint` event within {} s", ENDPOINT_TIMEOUT.as_secs()))??;
    if endpoint.origin() != base.origin() {
        // The spec lets a client refuse this; a server must not send our
        // headers (credentials) to another host.
        return Err(format!(
            "the endpoint {} is on another origin than {}",
            RedactedUrl(endpoint.as_str()),
            RedactedUrl(base.as_str())
        ));
    }
    info!(server = %transport.server, "the server speaks the {HTTP_SSE_VERSION} HTTP+SSE transport");
    lock(&transport.conversation).legacy_endpoint = Some(endpoint.clone());
    let stop = transport.stop.clone();
    tokio::spawn(
        async move {
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    event = events.next() => event,
                };
                match event {
                    Some(Ok(event)) if event.event == "message" || event.event.is_empty() => {
                        match serde_json::from_str::<Value>(&event.data) {
                            Ok(message) => dispatch(&backend, handler.as_ref(), message, None),
                            Err(e) => warn!(error = %e, "dropped an event that is not JSON"),
                        }
                    }
                    Some(Ok(event)) => debug!(event = event.event, "ignored an event of an unknown type"),
                    Some(Err(e)) => {
                        debug!(error = %e, "the event stream broke");
                        break;
                    }
                    None => break,
                }
            }
            if !backend.is_stopping() {
                backend.mark_exited("the server closed its event stream".into());
                handler.on_exit(&backend);
            }
        }
        .in_current_span(),
    );
    Ok(endpoint)
}

/// POSTs one message to the endpoint; its answer comes on the event stream.
pub(super) async fn post(
    transport: &RemoteConnection,
    backend: &Backend,
    endpoint: &reqwest::Url,
    message: &Value,
    reply_id: Option<Value>,
) {
    // The answer comes on the stream: the POST itself is answered at once, and
    // one that is not (a server that lost our session may never answer) must not
    // hold the call forever.
    let post = || transport.post_to(endpoint.clone(), message).timeout(POST_TIMEOUT);
    let sent = transport.send(post).await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            fail(backend, reply_id, format!("HTTP {status}: {}", snippet(&body)));
        }
        Err(e) => {
            fail(backend, reply_id, format!("cannot reach {}: {}", RedactedUrl(endpoint.as_str()), http_error(&e)))
        }
    }
}
