//! Remote backends: MCP over Streamable HTTP (`url:`).
//!
//! Every message to the server is a POST. Answers come back as JSON or as an
//! event stream; what arrives on a request's stream (progress, sampling or
//! elicitation requests) belongs to the session that sent that request, so
//! server requests are attributed exactly, with no guessing. The server's
//! `Mcp-Session-Id` is kept and sent back; a 404 means the server forgot the
//! session, and the gateway initializes again and resends, without the clients
//! noticing. The session is deleted when the instance stops.

use crate::lock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::pending::SessionId;
use super::stdio::dispatch;
use super::{Backend, BackendError, BackendHandler, Identity, Resolved};
use crate::config::ServerConfig;
use crate::jsonrpc::{self, Kind};

/// What the transport keeps between messages.
#[derive(Default)]
struct Conversation {
    session_id: Option<String>,
    protocol_version: Option<String>,
    /// The `initialize` request, resent when the server forgets the session.
    initialize: Option<Value>,
}

struct Transport {
    client: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    conversation: Mutex<Conversation>,
    server: String,
}

/// Stops an HTTP instance: ends the transport and deletes the server's session.
pub struct HttpHandle {
    transport: Arc<Transport>,
    backend: Arc<Backend>,
    stop: CancellationToken,
}

impl HttpHandle {
    pub async fn stop(&self) {
        self.stop.cancel();
        let session = lock(&self.transport.conversation).session_id.clone();
        if let Some(session) = session {
            let request = self.transport.request(reqwest::Method::DELETE).header("mcp-session-id", session);
            let _ = tokio::time::timeout(Duration::from_secs(2), request.send()).await;
        }
        self.backend.mark_exited("stopped by the gateway".into());
    }
}

impl Transport {
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, &self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    /// POSTs one message and returns the response, with the session headers.
    async fn post(&self, message: &Value) -> Result<reqwest::Response, reqwest::Error> {
        let (session, version) = {
            let conversation = lock(&self.conversation);
            (conversation.session_id.clone(), conversation.protocol_version.clone())
        };
        let mut request =
            self.request(reqwest::Method::POST).header("accept", "application/json, text/event-stream").json(message);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(version) = version.filter(|_| jsonrpc::method(message) != "initialize") {
            request = request.header("mcp-protocol-version", version);
        }
        request.send().await
    }

    /// The messages of a response: a JSON body (one message or an array) or the
    /// `data` of each event of an event stream, each handed to `each` as it comes.
    async fn read(&self, response: reqwest::Response, mut each: impl FnMut(Value)) -> Result<(), String> {
        if let Some(session) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            lock(&self.conversation).session_id = Some(session.to_string());
        }
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if event_stream {
            let mut events = response.bytes_stream().eventsource();
            while let Some(event) = events.next().await {
                let event = event.map_err(|e| e.to_string())?;
                if event.data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(message) => each(message),
                    Err(e) => warn!(server = %self.server, error = %e, "dropped an event that is not JSON"),
                }
            }
            return Ok(());
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.is_empty() {
            return Ok(());
        }
        match serde_json::from_slice::<Value>(&body).map_err(|e| format!("the answer is not JSON: {e}"))? {
            Value::Array(messages) => messages.into_iter().for_each(each),
            message => each(message),
        }
        Ok(())
    }

    /// The server forgot our session: initialize again (same parameters).
    async fn reinitialize(&self) -> Result<(), String> {
        let Some(mut initialize) = lock(&self.conversation).initialize.clone() else {
            return Err("no initialize to replay".into());
        };
        lock(&self.conversation).session_id = None;
        initialize["id"] = json!("mcp-gateway-reinitialize");
        let response = self.post(&initialize).await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("initialize answered HTTP {}", response.status()));
        }
        self.read(response, |_| {}).await?;
        let initialized = jsonrpc::notification("notifications/initialized", Value::Null);
        let _ = self.post(&initialized).await;
        info!(server = %self.server, "the server had forgotten the session; initialized again");
        Ok(())
    }
}

/// Connects to a remote server and completes its `initialize` handshake.
pub async fn connect(
    identity: Identity,
    config: &ServerConfig,
    resolved: &Resolved,
    startup_timeout: Duration,
    handler: Arc<dyn BackendHandler>,
) -> Result<(Arc<Backend>, HttpHandle), BackendError> {
    let server = identity.server.clone();
    let url = resolved
        .url
        .clone()
        .ok_or_else(|| BackendError::Config { server: server.clone(), message: "no `url`".into() })?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| BackendError::Spawn { server: server.clone(), reason: e.to_string() })?;
    let transport = Arc::new(Transport {
        client,
        url,
        headers: resolved.headers.clone(),
        conversation: Mutex::new(Conversation::default()),
        server: server.clone(),
    });
    let (writer, lines) = mpsc::unbounded_channel();
    let backend = Arc::new(Backend::new(identity.clone(), config.clone(), None, writer));
    let stop = CancellationToken::new();
    let span = tracing::info_span!(parent: None, "backend", server = %server, key = %identity.key.0);
    let handler_for_listen = handler.clone();
    tokio::spawn(send_loop(transport.clone(), backend.clone(), handler, lines, stop.clone()).instrument(span));
    let handle = HttpHandle { transport, backend: backend.clone(), stop };
    match super::stdio::initialize(&backend, startup_timeout).await {
        Ok(result) => {
            if let Some(version) = result.get("protocolVersion").and_then(Value::as_str) {
                lock(&handle.transport.conversation).protocol_version = Some(version.to_string());
            }
            backend.set_initialized(result);
            // Open the GET stream before `initialized`: servers announce what they
            // add on becoming initialized there, and an unheard notification is lost.
            let (ready, opened) = tokio::sync::oneshot::channel();
            tokio::spawn(
                listen(handle.transport.clone(), backend.clone(), handler_for_listen, handle.stop.clone(), ready)
                    .in_current_span(),
            );
            let _ = tokio::time::timeout(Duration::from_secs(2), opened).await;
            backend.notify("notifications/initialized", Value::Null);
            Ok((backend, handle))
        }
        Err(e) => {
            handle.stop().await;
            Err(e)
        }
    }
}

/// The standalone GET stream: what the server says outside any request
/// (list changes, log messages, resource updates). Reconnects after the
/// server's `retry` (default 1 s) with `Last-Event-ID`, so nothing is lost in
/// between; a server that answers 405 has no such stream.
async fn listen(
    transport: Arc<Transport>,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    // Said once the first attempt is answered (open, refused or failed).
    let mut ready = Some(ready);
    let mut last_event: Option<String> = None;
    let mut retry = Duration::from_secs(1);
    loop {
        let (session, version) = {
            let conversation = lock(&transport.conversation);
            (conversation.session_id.clone(), conversation.protocol_version.clone())
        };
        let mut request = transport.request(reqwest::Method::GET).header("accept", "text/event-stream");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
        }
        if let Some(id) = &last_event {
            request = request.header("last-event-id", id);
        }
        let response = tokio::select! {
            _ = stop.cancelled() => return,
            response = request.send() => response,
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        match response {
            Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => {
                debug!(server = %transport.server, "the server offers no GET stream");
                return;
            }
            Ok(r) if r.status().is_success() => {
                let mut events = r.bytes_stream().eventsource();
                loop {
                    let event = tokio::select! {
                        _ = stop.cancelled() => return,
                        event = events.next() => event,
                    };
                    let Some(Ok(event)) = event else { break };
                    if !event.id.is_empty() {
                        last_event = Some(event.id.clone());
                    }
                    if let Some(ms) = event.retry {
                        retry = ms.min(Duration::from_secs(60));
                    }
                    if let Ok(message) = serde_json::from_str::<Value>(&event.data) {
                        dispatch(&backend, handler.as_ref(), message, None);
                    }
                }
            }
            Ok(r) => debug!(server = %transport.server, status = %r.status(), "the GET stream was refused"),
            Err(e) => debug!(server = %transport.server, error = %e, "the GET stream failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

/// Takes messages the gateway writes to the backend and POSTs each.
async fn send_loop(
    transport: Arc<Transport>,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
    mut lines: mpsc::UnboundedReceiver<Vec<u8>>,
    stop: CancellationToken,
) {
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => break,
            line = lines.recv() => match line { Some(line) => line, None => break },
        };
        let Ok(message) = serde_json::from_slice::<Value>(&line) else { continue };
        if jsonrpc::method(&message) == "initialize" {
            lock(&transport.conversation).initialize = Some(message.clone());
        }
        // Each message on its own task: a long call must not hold up others.
        let (transport, backend, handler) = (transport.clone(), backend.clone(), handler.clone());
        tokio::spawn(async move { exchange(&transport, &backend, handler.as_ref(), message).await }.in_current_span());
    }
}

/// One POST and what comes back on it.
async fn exchange(transport: &Transport, backend: &Arc<Backend>, handler: &dyn BackendHandler, message: Value) {
    let id = message.get("id").cloned();
    let is_request = jsonrpc::kind(&message) == Kind::Request;
    let origin: Option<SessionId> = id.as_ref().filter(|_| is_request).and_then(|id| backend.session_of_request(id));
    let had_session = lock(&transport.conversation).session_id.is_some() && jsonrpc::method(&message) != "initialize";
    let response = match transport.post(&message).await {
        // The spec says 404 for a session the server no longer knows; some
        // servers (server-everything) say 400 "No valid session ID".
        Ok(r)
            if had_session
                && matches!(r.status(), reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::BAD_REQUEST) =>
        {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            if status == reqwest::StatusCode::BAD_REQUEST && !body.to_ascii_lowercase().contains("session") {
                let snippet: String = body.chars().take(200).collect();
                return fail(backend, id.filter(|_| is_request), format!("HTTP 400: {snippet}"));
            }
            debug!(server = %transport.server, body, "the server lost the session");
            match transport.reinitialize().await {
                Ok(()) => transport.post(&message).await,
                Err(e) => {
                    let reason = format!("the server forgot the session and initializing again failed: {e}");
                    return fail(backend, id.filter(|_| is_request), reason);
                }
            }
        }
        other => other,
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => return fail(backend, id.filter(|_| is_request), format!("cannot reach {}: {e}", transport.url)),
    };
    let status = response.status();
    if status == reqwest::StatusCode::ACCEPTED {
        return;
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let snippet: String = body.chars().take(200).collect();
        return fail(backend, id.filter(|_| is_request), format!("HTTP {status}: {snippet}"));
    }
    if let Err(e) = transport.read(response, |m| dispatch(backend, handler, m, origin)).await {
        debug!(server = %transport.server, error = %e, "the answer stream broke");
    }
}

/// Answers a request that could not be delivered with an error naming the server.
fn fail(backend: &Backend, id: Option<Value>, reason: String) {
    warn!(server = %backend.server, "{reason}");
    if let Some(id) = id {
        let message = format!("server `{}`: {reason}", backend.server);
        backend.deliver(jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, message));
    }
}
