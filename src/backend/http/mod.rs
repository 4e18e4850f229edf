//! Remote backends: MCP over Streamable HTTP (`url:`), or the 2024-11-05
//! HTTP+SSE transport when the server predates it (see [`legacy`]).
//!
//! Every message to the server is a POST. Answers come back as JSON or as an
//! event stream; what arrives on a request's stream (progress, sampling or
//! elicitation requests) belongs to the session that sent that request, so
//! server requests are attributed exactly, with no guessing. A request's stream
//! that ends before its answer (a server that polls, or a dropped connection)
//! is resumed with `Last-Event-ID` after the server's `retry`. The server's
//! `Mcp-Session-Id` is kept and sent back; a 404 means the server forgot the
//! session, and the gateway initializes again and resends, without the clients
//! noticing. A server that is unreachable or overloaded (429, 502–504) is tried
//! again a few times with backoff before a call fails. The session is deleted
//! when the instance stops.

mod legacy;
mod modern;

use crate::lock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::dispatch::dispatch;
use super::handshake::{self, EraPlan};
use super::{Backend, BackendError, BackendHandler, Identity, Resolved};
use crate::config::ServerConfig;
use crate::era::{Era, HTTP_SSE_VERSION, LATEST_MODERN_VERSION};
use crate::jsonrpc::{self, Kind};
use crate::redact;
use crate::sink::SessionId;

/// How many times a request the server never received is sent again.
const RETRIES: u32 = 3;
/// The first pause before sending again; it doubles each time.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest `Retry-After` or SSE `retry` the gateway waits for.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);
/// Resumptions of a request's stream in a row that bring nothing new.
const RESUMPTIONS: u32 = 5;

/// What the transport keeps between messages.
#[derive(Default)]
struct Conversation {
    session_id: Option<String>,
    protocol_version: Option<String>,
    /// The `initialize` request, resent when the server forgets the session.
    initialize: Option<Value>,
    /// Where messages go once the server turned out to speak the 2024-11-05
    /// HTTP+SSE transport (the `endpoint` its event stream named).
    legacy_endpoint: Option<reqwest::Url>,
}

struct RemoteConnection {
    client: reqwest::Client,
    /// Where requests go. It may hold credentials (`user:pass@`, `?token=`):
    /// never printed; messages use [`RemoteConnection::shown_url`].
    url: String,
    /// The URL as errors and logs show it (see [`crate::redact`]).
    shown_url: String,
    headers: Vec<(String, String)>,
    conversation: Mutex<Conversation>,
    server: String,
    /// Cancelled when the instance stops: ends every stream and retry.
    stop: CancellationToken,
    /// A modern server's requests on their way (see [`modern`]).
    open_streams: modern::OpenStreams,
    /// A modern server's `x-mcp-header` annotations (see [`modern`]).
    param_headers: modern::ParamHeaders,
    /// The OAuth credential sent as `Authorization: Bearer`, when the server
    /// has no static `Authorization` header.
    oauth: Option<crate::oauth::Binding>,
    /// The server answered 401 (after any refresh): a start that fails says
    /// a login is needed, not that the server is of another era.
    unauthorized: std::sync::atomic::AtomicBool,
    /// Why the last try to get a fresh access token could not reach the
    /// authorization server (down, 5xx, in its backoff pause), while tokens
    /// are still held: a 401 then is no reason to log in again.
    refresh_failure: Mutex<Option<String>>,
}

/// A request the server refused for want of a login or of scopes.
enum LoginRefusal {
    /// A 401: a person has to log in (why, naming the command).
    Login(String),
    /// A 403 `insufficient_scope` that a login asking for `scope` (the union
    /// of the scopes granted and wanted) may get past: step-up.
    StepUp { reason: String, scope: String },
    /// A 403 for scopes the last login asked for already: no login is
    /// started for them again (why, naming the scopes).
    Final(String),
}

impl LoginRefusal {
    fn reason(self) -> String {
        match self {
            LoginRefusal::Login(reason) | LoginRefusal::StepUp { reason, .. } | LoginRefusal::Final(reason) => reason,
        }
    }
}

/// Where an event stream ended, to resume it from there.
#[derive(Default)]
struct StreamPosition {
    last_event_id: Option<String>,
    retry: Option<Duration>,
}

/// Stops an HTTP instance: ends the transport and deletes the server's session.
pub struct HttpHandle {
    transport: Arc<RemoteConnection>,
    backend: Arc<Backend>,
}

impl HttpHandle {
    pub async fn stop(&self) {
        self.transport.stop.cancel();
        let session = lock(&self.transport.conversation).session_id.clone();
        if let Some(session) = session {
            let request = self.transport.request(reqwest::Method::DELETE).header("mcp-session-id", session);
            let _ = tokio::time::timeout(Duration::from_secs(2), request.send()).await;
        }
        self.backend.mark_exited("stopped by the gateway".into());
    }
}

impl RemoteConnection {
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        self.request_to(method, &self.url)
    }

    fn request_to(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    /// A POST of `message` to `url`, with the call's trace context as headers:
    /// the ones in its `params._meta` (see `trace`), for a server that traces
    /// HTTP rather than MCP.
    fn post_to(&self, url: impl reqwest::IntoUrl, message: &Value) -> reqwest::RequestBuilder {
        let mut request = self.request_to(reqwest::Method::POST, url).json(message);
        for (name, value) in crate::trace::headers_of(message) {
            request = request.header(name, value);
        }
        request
    }

    fn legacy_endpoint(&self) -> Option<reqwest::Url> {
        lock(&self.conversation).legacy_endpoint.clone()
    }

    /// Sends what `build` makes; again, after a pause, when the server could not
    /// be reached or said it is overloaded (429, 502, 503, 504): the message
    /// never arrived, so sending it again is safe. The pause doubles from
    /// [`FIRST_RETRY`], or is the server's `Retry-After` (at most [`LONGEST_PAUSE`]).
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, reqwest::Error> {
        let mut pause = FIRST_RETRY;
        let mut attempt = 0;
        let mut refreshed = false;
        let mut stepped_up = false;
        loop {
            let bearer = self.bearer().await;
            let mut request = build();
            if let Some(bearer) = &bearer {
                request = request.bearer_auth(bearer);
            }
            // reqwest's errors name the URL, credentials and all.
            let result = request.send().await.map_err(reqwest::Error::without_url);
            // A token the server refused: refresh it (once; another session
            // may have done so already) and send again.
            if let (Ok(r), Some(oauth), Some(sent)) = (&result, &self.oauth, &bearer)
                && r.status() == reqwest::StatusCode::UNAUTHORIZED
                && !refreshed
            {
                refreshed = true;
                let refresh = oauth.manager.refresh(&oauth.target, Some(sent)).await;
                self.note_refresh(refresh.as_ref().err());
                match refresh {
                    Ok(_) => continue,
                    Err(e) => warn!(server = %self.server, error = %e, "the server refused the access token"),
                }
            }
            // Too few scopes: the next login asks for more (step-up).
            if let (Ok(r), Some(oauth)) = (&result, &self.oauth)
                && r.status() == reqwest::StatusCode::FORBIDDEN
            {
                let header = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let challenge = crate::oauth::Challenge::parse(header);
                if challenge.error.as_deref() == Some("insufficient_scope")
                    && let Err(e) = oauth.manager.need_scopes(&oauth.target, challenge.scope.as_deref())
                {
                    warn!(server = %self.server, error = %e, "cannot record the scopes the server asked for");
                }
                // A client-credentials server needs no person for a step-up
                // either: a token asking for the union, once per request (and
                // once per scope set, as for logins: `step_up`).
                if oauth.target.settings.client_credentials
                    && !stepped_up
                    && matches!(oauth.manager.step_up(&oauth.target), Some(crate::oauth::StepUp::Login { .. }))
                {
                    stepped_up = true;
                    let fetched = oauth.manager.refresh(&oauth.target, bearer.as_deref()).await;
                    self.note_refresh(fetched.as_ref().err());
                    match fetched {
                        Ok(_) => continue,
                        Err(e) => {
                            warn!(server = %self.server, error = %e, "no token with the scopes the server asked for")
                        }
                    }
                }
            }
            let wait = match &result {
                Err(e) if e.is_connect() => Some(pause),
                Ok(r) if matches!(r.status().as_u16(), 429 | 502 | 503 | 504) => {
                    Some(retry_after(r).unwrap_or(pause).min(LONGEST_PAUSE))
                }
                _ => None,
            };
            let Some(wait) = wait.filter(|_| attempt < RETRIES && !self.stop.is_cancelled()) else {
                if let Ok(r) = &result {
                    let refused = r.status() == reqwest::StatusCode::UNAUTHORIZED;
                    let was = self.unauthorized.swap(refused, std::sync::atomic::Ordering::Relaxed);
                    // Whether the server wants a login, for `status` and
                    // `doctor`: told on a refusal and on the first answer after one
                    // (not on every request).
                    if let (true, Some(oauth)) = (refused || was, &self.oauth) {
                        oauth.manager.challenged(&oauth.target, refused);
                    }
                }
                return result;
            };
            attempt += 1;
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => redact::http_error(e),
            };
            debug!(server = %self.server, attempt, ?wait, why, "sending again");
            tokio::select! {
                _ = self.stop.cancelled() => return result,
                _ = tokio::time::sleep(wait) => {}
            }
            pause *= 2;
        }
    }

    /// The access token to send, when the server is an OAuth server someone
    /// has logged in to (refreshed first when it is about to expire).
    async fn bearer(&self) -> Option<String> {
        let oauth = self.oauth.as_ref()?;
        let bearer = oauth.manager.bearer(&oauth.target).await;
        self.note_refresh(bearer.as_ref().err());
        match bearer {
            Ok(token) => token,
            Err(e) => {
                warn!(server = %self.server, error = %e, "no usable access token");
                None
            }
        }
    }

    /// Remembers whether getting a fresh access token failed for want of a
    /// reachable authorization server (see `refresh_failure`).
    fn note_refresh(&self, error: Option<&crate::oauth::OAuthError>) {
        let unreachable = error.filter(|e| matches!(e, crate::oauth::OAuthError::Unreachable(_)));
        *lock(&self.refresh_failure) = unreachable.map(ToString::to_string);
    }

    /// Why a 401 fails a request while the tokens are kept but could not be
    /// refreshed (the authorization server is down or in a backoff pause):
    /// not a login, a wait.
    fn refused_while_refresh_fails(&self, status: reqwest::StatusCode) -> Option<String> {
        if status != reqwest::StatusCode::UNAUTHORIZED {
            return None;
        }
        let why = lock(&self.refresh_failure).clone()?;
        Some(format!(
            "the server refused the access token and the gateway could not refresh it ({why}); \
             the login is kept, so call again once the authorization server answers"
        ))
    }

    /// Why a 401, or a 403 for want of scopes, fails a request: the login it
    /// needs, when the gateway can log in to the server.
    fn refused_for_login(&self, status: reqwest::StatusCode) -> Option<LoginRefusal> {
        let oauth = self.oauth.as_ref()?;
        let command = crate::oauth::login_command(&oauth.target.server);
        match status {
            // A client-credentials server needs no person: why its own
            // credentials did not get a token the server takes, as is.
            reqwest::StatusCode::UNAUTHORIZED if oauth.target.settings.client_credentials => {
                Some(LoginRefusal::Final(oauth.manager.client_refusal(&oauth.target)))
            }
            reqwest::StatusCode::UNAUTHORIZED => Some(LoginRefusal::Login(format!(
                "the server needs a login (it answered 401 Unauthorized): run `{command}`"
            ))),
            reqwest::StatusCode::FORBIDDEN => match oauth.manager.step_up(&oauth.target)? {
                crate::oauth::StepUp::Login { scope } => Some(LoginRefusal::StepUp {
                    reason: format!(
                        "the server needs more scopes than the login granted (403 insufficient_scope, \
                         asking for `{scope}`): run `{command}`"
                    ),
                    scope,
                }),
                crate::oauth::StepUp::Exhausted(why) => Some(LoginRefusal::Final(why)),
            },
            _ => None,
        }
    }

    /// Why a 401 or 403 fails a request when the credential is the static
    /// `Authorization` of the server's `headers:` (a team gateway's token,
    /// say): the value to check, never the value itself. Not sent again: the
    /// same token would be refused the same way.
    fn refused_credentials(&self, status: reqwest::StatusCode) -> Option<String> {
        let refused = matches!(status, reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN);
        let static_auth = self.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        (refused && static_auth && self.oauth.is_none()).then(|| {
            format!(
                "the server refused the `Authorization` of its `headers:` (HTTP {status}); \
                 check the token it names (in the gateway `.env`, say)"
            )
        })
    }

    /// POSTs one message and returns the response, with the session headers.
    async fn post(&self, message: &Value) -> Result<reqwest::Response, reqwest::Error> {
        let (session, version) = {
            let conversation = lock(&self.conversation);
            (conversation.session_id.clone(), conversation.protocol_version.clone())
        };
        let version = version.filter(|_| jsonrpc::method(message) != "initialize");
        self.send(|| {
            let mut request = self.post_to(&self.url, message).header("accept", "application/json, text/event-stream");
            if let Some(session) = &session {
                request = request.header("mcp-session-id", session);
            }
            if let Some(version) = &version {
                request = request.header("mcp-protocol-version", version);
            }
            request
        })
        .await
    }

    /// Opens a GET event stream: the standalone one, or (with `last_event_id`)
    /// the rest of a stream that ended early.
    async fn get_stream(&self, last_event_id: Option<&str>) -> Result<reqwest::Response, reqwest::Error> {
        let (session, version) = {
            let conversation = lock(&self.conversation);
            (conversation.session_id.clone(), conversation.protocol_version.clone())
        };
        self.send(|| {
            let mut request = self.request(reqwest::Method::GET).header("accept", "text/event-stream");
            if let Some(session) = &session {
                request = request.header("mcp-session-id", session);
            }
            if let Some(version) = &version {
                request = request.header("mcp-protocol-version", version);
            }
            if let Some(id) = last_event_id {
                request = request.header("last-event-id", id);
            }
            request
        })
        .await
    }

    /// The messages of a response: a JSON body (one message or an array) or the
    /// `data` of each event of an event stream, each handed to `each` as it
    /// comes. Returns where an event stream ended; a body that is not JSON is an error.
    async fn read(&self, response: reqwest::Response, mut each: impl FnMut(Value)) -> Result<StreamPosition, String> {
        if let Some(session) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            lock(&self.conversation).session_id = Some(session.to_string());
        }
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if event_stream {
            let mut position = StreamPosition::default();
            let mut events = events_of(response);
            loop {
                let event = tokio::select! {
                    _ = self.stop.cancelled() => break,
                    event = events.next() => event,
                };
                let event = match event {
                    Some(Ok(event)) => event,
                    Some(Err(e)) => {
                        debug!(server = %self.server, error = %e, "the event stream broke");
                        break;
                    }
                    None => break,
                };
                if !event.id.is_empty() {
                    position.last_event_id = Some(event.id.clone());
                }
                if let Some(retry) = event.retry {
                    position.retry = Some(retry.min(LONGEST_PAUSE));
                }
                if event.data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(message) => each(message),
                    Err(e) => warn!(server = %self.server, error = %e, "dropped an event that is not JSON"),
                }
            }
            return Ok(position);
        }
        let body = response.bytes().await.map_err(|e| redact::http_error(&e))?;
        if body.is_empty() {
            return Ok(StreamPosition::default());
        }
        match serde_json::from_slice::<Value>(&body).map_err(|e| format!("the answer is not JSON: {e}"))? {
            Value::Array(messages) => messages.into_iter().for_each(each),
            message => each(message),
        }
        Ok(StreamPosition::default())
    }

    /// The server forgot our session: initialize again (same parameters).
    async fn reinitialize(&self) -> Result<(), String> {
        let Some(mut initialize) = lock(&self.conversation).initialize.clone() else {
            return Err("no initialize to replay".into());
        };
        lock(&self.conversation).session_id = None;
        initialize["id"] = json!(jsonrpc::ids::REINITIALIZE);
        let response = self.post(&initialize).await.map_err(|e| redact::http_error(&e))?;
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

/// The events of an event-stream response. Its errors are stripped of the URL
/// (which may hold credentials) before anything can print them.
fn events_of(
    response: reqwest::Response,
) -> impl futures_util::Stream<Item = Result<eventsource_stream::Event, eventsource_stream::EventStreamError<reqwest::Error>>>
{
    response.bytes_stream().map(|chunk| chunk.map_err(reqwest::Error::without_url)).eventsource()
}

/// The pause a 429 or 503 asks for, when it says one in seconds.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response.headers().get("retry-after")?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

/// Connects to a remote server and completes its `initialize` handshake.
pub async fn connect(
    identity: Identity,
    config: &ServerConfig,
    resolved: &Resolved,
    startup_timeout: Duration,
    handler: Arc<dyn BackendHandler>,
    era: EraPlan,
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
    let transport = Arc::new(RemoteConnection {
        client,
        shown_url: redact::redacted_url(&url),
        url,
        headers: resolved.headers.clone(),
        conversation: Mutex::new(Conversation::default()),
        server: server.clone(),
        stop: CancellationToken::new(),
        open_streams: modern::OpenStreams::default(),
        param_headers: modern::ParamHeaders::default(),
        oauth: resolved.oauth.clone(),
        unauthorized: std::sync::atomic::AtomicBool::new(false),
        refresh_failure: Mutex::new(None),
    });
    let (writer, lines) = mpsc::unbounded_channel();
    let backend = Arc::new(Backend::new(identity.clone(), config.clone(), None, writer));
    let span = tracing::info_span!(parent: None, "backend", server = %server, key = %identity.key.0);
    tokio::spawn(send_loop(transport.clone(), backend.clone(), handler.clone(), lines).instrument(span));
    let handle = HttpHandle { transport, backend: backend.clone() };
    // A caller that gives up while the server is being reached leaves nobody
    // to stop the transport's tasks: they stop with this guard.
    let abandoned = handle.transport.stop.clone().drop_guard();
    let settled = settle(&handle, &backend, era, startup_timeout, &server, handler).await;
    abandoned.disarm();
    settled.map(|()| (backend, handle))
}

/// Settles the era and completes the start of a connected instance.
async fn settle(
    handle: &HttpHandle,
    backend: &Arc<Backend>,
    era: EraPlan,
    startup_timeout: Duration,
    server: &str,
    handler: Arc<dyn BackendHandler>,
) -> Result<(), BackendError> {
    if era.asks() {
        let discovered = tokio::time::timeout(startup_timeout, modern::discover(&handle.transport)).await;
        match discovered {
            Ok(Some(initialize)) => {
                backend.settle_era(Era::Modern);
                backend.set_initialized(initialize);
                backend.listen(None);
                info!(server = %server, "the server speaks MCP {LATEST_MODERN_VERSION}");
                return Ok(());
            }
            _ if era.requires_modern() => {
                handle.stop().await;
                let refused = handle.transport.unauthorized.load(std::sync::atomic::Ordering::Relaxed);
                let unauthorized = reqwest::StatusCode::UNAUTHORIZED;
                if let Some(reason) = handle
                    .transport
                    .refused_while_refresh_fails(unauthorized)
                    .or_else(|| handle.transport.refused_for_login(unauthorized).map(LoginRefusal::reason))
                    .or_else(|| handle.transport.refused_credentials(unauthorized))
                    .filter(|_| refused)
                {
                    return Err(BackendError::Config { server: server.to_string(), message: reason });
                }
                return Err(handshake::not_modern(server));
            }
            _ => {}
        }
    }
    match handshake::handshake(backend, startup_timeout).await {
        Ok(result) => {
            backend.settle_era(Era::Handshake);
            if let Some(version) = result.get("protocolVersion").and_then(Value::as_str) {
                lock(&handle.transport.conversation).protocol_version = Some(version.to_string());
            }
            backend.set_initialized(result);
            // A 2024-11-05 server already has its one stream open. Otherwise open
            // the GET stream before `initialized`: servers announce what they add
            // on becoming initialized there, and an unheard notification is lost.
            if handle.transport.legacy_endpoint().is_none() {
                let (ready, opened) = tokio::sync::oneshot::channel();
                tokio::spawn(listen(handle.transport.clone(), backend.clone(), handler, ready).in_current_span());
                let _ = tokio::time::timeout(Duration::from_secs(2), opened).await;
            }
            backend.notify("notifications/initialized", Value::Null);
            Ok(())
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
    transport: Arc<RemoteConnection>,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    // Said once the first attempt is answered (open, refused or failed).
    let mut ready = Some(ready);
    let mut position = StreamPosition::default();
    loop {
        let response = tokio::select! {
            _ = transport.stop.cancelled() => return,
            response = transport.get_stream(position.last_event_id.as_deref()) => response,
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
                match transport.read(r, |message| dispatch(&backend, handler.as_ref(), message, None)).await {
                    Ok(ended) => {
                        position.last_event_id = ended.last_event_id.or(position.last_event_id.take());
                        position.retry = ended.retry.or(position.retry);
                    }
                    Err(e) => debug!(server = %transport.server, error = %e, "the GET stream failed"),
                }
            }
            Ok(r) => debug!(server = %transport.server, status = %r.status(), "the GET stream was refused"),
            Err(e) => debug!(server = %transport.server, error = %redact::http_error(&e), "the GET stream failed"),
        }
        tokio::select! {
            _ = transport.stop.cancelled() => return,
            _ = tokio::time::sleep(position.retry.unwrap_or(Duration::from_secs(1))) => {}
        }
    }
}

/// Takes messages the gateway writes to the backend and POSTs each.
async fn send_loop(
    transport: Arc<RemoteConnection>,
    backend: Arc<Backend>,
    handler: Arc<dyn BackendHandler>,
    mut lines: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    loop {
        let line = tokio::select! {
            _ = transport.stop.cancelled() => break,
            line = lines.recv() => match line { Some(line) => line, None => break },
        };
        let Ok(message) = serde_json::from_slice::<Value>(&line) else { continue };
        // The backend's era, not one of the transport's own: one record, set
        // once by `settle` before anything but the start-up is sent.
        if backend.is_modern() {
            modern::send(&transport, &backend, &handler, message);
            continue;
        }
        if jsonrpc::method(&message) == "initialize" {
            lock(&transport.conversation).initialize = Some(message.clone());
        }
        // Each message on its own task: a long call must not hold up others.
        let (transport, backend, handler) = (transport.clone(), backend.clone(), handler.clone());
        tokio::spawn(async move { exchange(&transport, &backend, &handler, message).await }.in_current_span());
    }
}

/// One POST and what comes back on it.
async fn exchange(
    transport: &Arc<RemoteConnection>,
    backend: &Arc<Backend>,
    handler: &Arc<dyn BackendHandler>,
    message: Value,
) {
    let is_request = jsonrpc::kind(&message) == Kind::Request;
    // The id to answer with an error when the message cannot be delivered.
    let reply_id = message.get("id").cloned().filter(|_| is_request);
    if let Some(endpoint) = transport.legacy_endpoint() {
        return legacy::post(transport, backend, &endpoint, &message, reply_id).await;
    }
    let origin: Option<SessionId> = reply_id.as_ref().and_then(|id| backend.session_of_request(id));
    let is_initialize = jsonrpc::method(&message) == "initialize";
    let had_session = lock(&transport.conversation).session_id.is_some() && !is_initialize;
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
                return fail(backend, reply_id, format!("HTTP 400: {}", snippet(&body)));
            }
            debug!(server = %transport.server, body, "the server lost the session");
            match transport.reinitialize().await {
                Ok(()) => transport.post(&message).await,
                Err(e) => {
                    let reason = format!("the server forgot the session and initializing again failed: {e}");
                    return fail(backend, reply_id, reason);
                }
            }
        }
        other => other,
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            return fail(
                backend,
                reply_id,
                format!("cannot reach {}: {}", transport.shown_url, redact::http_error(&e)),
            );
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::ACCEPTED {
        return;
    }
    // A server of the 2024-11-05 era has no POST at its URL: it wants a GET
    // event stream first, which names where to POST.
    if is_initialize && matches!(status.as_u16(), 400 | 404 | 405) {
        return match legacy::open(transport.clone(), backend.clone(), handler.clone()).await {
            Ok(endpoint) => legacy::post(transport, backend, &endpoint, &message, reply_id).await,
            Err(e) => {
                let reason = format!(
                    "initialize answered HTTP {status}, and the {HTTP_SSE_VERSION} HTTP+SSE transport failed: {e}"
                );
                fail(backend, reply_id, reason)
            }
        };
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return fail_refused(transport, backend, &message, reply_id, status, &body);
    }
    let each = |m: Value| dispatch(backend, handler.as_ref(), m, origin);
    let mut position = match transport.read(response, each).await {
        Ok(position) => position,
        Err(e) => return fail(backend, reply_id, e),
    };
    let Some(id) = reply_id.clone() else { return };
    // The stream ended before the answer: the server may be polling (it closes
    // streams and expects a GET with `Last-Event-ID`), or the connection
    // dropped. Resume where it ended, after the server's `retry`. (Answered or
    // cancelled, the request is no longer awaited.)
    let mut fruitless = 0;
    while !transport.stop.is_cancelled() && backend.awaits_answer(&id) {
        let Some(last) = position.last_event_id.clone() else {
            return fail(backend, reply_id, "the server's answer held no response".into());
        };
        if fruitless == RESUMPTIONS {
            return fail(backend, reply_id, format!("the answer stream stopped after event {last}"));
        }
        fruitless += 1;
        tokio::select! {
            _ = transport.stop.cancelled() => return,
            _ = tokio::time::sleep(position.retry.unwrap_or(Duration::from_millis(500))) => {}
        }
        debug!(server = %transport.server, last, "resuming the answer stream");
        match transport.get_stream(Some(&last)).await {
            Ok(r) if r.status().is_success() => {
                if let Ok(resumed) = transport.read(r, each).await
                    && resumed.last_event_id.is_some()
                {
                    fruitless = 0;
                    position.last_event_id = resumed.last_event_id;
                    position.retry = resumed.retry.or(position.retry);
                }
            }
            Ok(r) => {
                let reason = format!("resuming the answer stream answered HTTP {}", r.status());
                return fail(backend, reply_id, reason);
            }
            Err(e) => {
                debug!(server = %transport.server, error = %redact::http_error(&e), "resuming the answer stream failed")
            }
        }
    }
}

/// The start of a body, for an error message.
fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

/// Answers a request the server refused with `status` (and `body`): for want
/// of a login or of scopes, for a static token it refused, or else by status.
fn fail_refused(
    transport: &RemoteConnection,
    backend: &Backend,
    message: &Value,
    id: Option<Value>,
    status: reqwest::StatusCode,
    body: &str,
) {
    if let Some(reason) = transport.refused_while_refresh_fails(status) {
        return fail(backend, id, reason);
    }
    if let Some(reason) = transport.refused_for_login(status) {
        return fail_for_login(backend, message, id, reason);
    }
    let reason = transport.refused_credentials(status).unwrap_or_else(|| format!("HTTP {status}"));
    fail(backend, id, format!("{reason}: {}", snippet(body)));
}

/// Answers a request the server refused for want of a login or of scopes,
/// with an error whose `data` says `loginRequired` (and, for a step-up, the
/// `scope` to ask for): the session turns a tool call's into the login (a
/// URL elicitation) or a tool error naming the command, and the gateway's
/// own requests (listing the server) fail rather than take the refusal for
/// an empty list. A step-up that was tried already is final: a tool call
/// hears why as a tool error.
fn fail_for_login(backend: &Backend, message: &Value, id: Option<Value>, refusal: LoginRefusal) {
    let (scope, last) = match &refusal {
        LoginRefusal::StepUp { scope, .. } => (Some(scope.clone()), false),
        LoginRefusal::Login(_) => (None, false),
        LoginRefusal::Final(_) => (None, true),
    };
    let reason = refusal.reason();
    warn!(server = %backend.server, "{reason}");
    let Some(id) = id else { return };
    let text = format!("server `{}`: {reason}", backend.server);
    let answer = if last && jsonrpc::method(message) == "tools/call" {
        jsonrpc::result(id, json!({ "content": [{ "type": "text", "text": text }], "isError": true }))
    } else {
        let mut data = json!({ "loginRequired": reason });
        if let Some(scope) = scope {
            data["scope"] = Value::String(scope);
        }
        jsonrpc::error_with_data(id, jsonrpc::INTERNAL_ERROR, text, data)
    };
    backend.deliver(answer);
}

/// Answers a request that could not be delivered with an error naming the server.
fn fail(backend: &Backend, id: Option<Value>, reason: String) {
    warn!(server = %backend.server, "{reason}");
    if let Some(id) = id {
        let message = format!("server `{}`: {reason}", backend.server);
        backend.deliver(jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, message));
    }
}

#[cfg(test)]
mod tests;
