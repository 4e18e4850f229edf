//! The HTTP front door: MCP Streamable HTTP at `/mcp`, for clients that prefer
//! a URL to a command.
//!
//! Each HTTP session is an ordinary gateway session: the front door admits it
//! with a preamble of its own making (`session::admit`), serves it over an
//! in-memory pipe in the line protocol the shim speaks, and so gets the same
//! sharing, workspaces, multiplexing and routing. What it
//! adds is HTTP: authentication, DNS-rebinding protection, session ids, and
//! sorting the session's outgoing messages onto the right stream (the answer
//! and the progress of a request go back on the POST that sent it; anything
//! else on the session's GET stream).
//!
//! Everything an outsider controls is bounded: connections (`max_connections`),
//! the time to send headers and then a body (`read_timeout`), body size,
//! sessions (`max_sessions`), how far a client may fall behind reading its
//! streams ([`session::STREAM_QUEUE`], then its session is closed), and how long an
//! unused session lives (`session_idle_timeout`).

mod cors;
mod credentials;
mod sessionless;
mod streams;

use crate::lock;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::HttpConfig;
use crate::framing::LineCodec;
use crate::gateway::Gateway;
use crate::jsonrpc::{self, Kind};
use crate::preamble::{PREAMBLE_VERSION, Preamble};
use credentials::{Authenticator, CredentialId};
use streams::{HttpSession, Outgoing, RequestStream};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// The header a client may use to name its working directory (its workspace).
const CWD_HEADER: &str = "x-mcp-gateway-cwd";
/// The header a client may use to name its config entry for the gateway, as
/// the shim's `--entry` does: the client puts it in front of tool names.
const ENTRY_HEADER: &str = "x-mcp-gateway-entry";
/// Who a request was authenticated as.
#[derive(Debug, Clone)]
struct Caller {
    /// The credential it came with: the sessions it opens are bound to it.
    credential: CredentialId,
    profile: Option<String>,
    workspace: Option<String>,
}

struct FrontDoor {
    gateway: Arc<Gateway>,
    config: HttpConfig,
    /// The tokens, API keys and localhost trust in force (they follow reloads).
    authenticator: Authenticator,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    sessions: Mutex<HashMap<String, Arc<HttpSession>>>,
    /// The shared modern-era session of each caller (see [`modern`]), by caller.
    modern_sessions: Mutex<HashMap<String, String>>,
    shutdown: CancellationToken,
}

/// Starts the front door if the config has an `http:` section.
pub async fn serve(gateway: Arc<Gateway>, shutdown: CancellationToken) -> std::io::Result<Option<SocketAddr>> {
    let Some(config) = gateway.config().http.clone() else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let _ = gateway.http_addr.set(addr);
    // Resolved now, so that a disabled entry or an empty list is reported at start.
    let authenticator = Authenticator::new();
    authenticator.current(&gateway);
    let port = addr.port();
    let mut allowed_hosts: Vec<String> =
        ["127.0.0.1", "localhost", "[::1]"].iter().map(|h| format!("{h}:{port}")).collect();
    allowed_hosts.extend(config.allowed_hosts.iter().cloned());
    let mut allowed_origins: Vec<String> =
        ["127.0.0.1", "localhost", "[::1]"].iter().map(|h| format!("http://{h}:{port}")).collect();
    allowed_origins.extend(config.allowed_origins.iter().cloned());
    let front = Arc::new(FrontDoor {
        gateway,
        authenticator,
        allowed_hosts,
        allowed_origins,
        sessions: Mutex::new(HashMap::new()),
        modern_sessions: Mutex::new(HashMap::new()),
        shutdown: shutdown.clone(),
        config: config.clone(),
    });
    tokio::spawn(expire_idle_sessions(front.clone()));
    let app = Router::new()
        .route("/mcp", axum::routing::post(post).get(get).delete(delete).options(options))
        .layer(middleware::from_fn_with_state(front.clone(), guard))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(front);
    info!(%addr, "HTTP front door listening at /mcp");
    tokio::spawn(accept_loop(listener, app, config, shutdown));
    Ok(Some(addr))
}

/// Serves each connection, up to `max_connections` at once (more are closed as
/// they arrive), each with a deadline for its request headers.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, config: HttpConfig, shutdown: CancellationToken) {
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: pause rather than spin.
                warn!(error = %e, "the HTTP front door could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(%peer, limit = config.max_connections, "too many HTTP connections; closed a new one");
            continue;
        };
        let (app, shutdown, read_timeout) = (app.clone(), shutdown.clone(), config.read_timeout);
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                tower_service::Service::call(&mut app.clone(), request)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(read_timeout);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "an HTTP connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
}

/// Closes sessions unused for `session_idle_timeout`, so that clients that go
/// away without a DELETE do not keep gateway sessions forever.
async fn expire_idle_sessions(front: Arc<FrontDoor>) {
    let timeout = front.config.session_idle_timeout;
    let period = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = front.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        // A reload that removed a credential ends its sessions even if no
        // request comes to notice it.
        front.credentials();
        let expired: Vec<Arc<HttpSession>> = {
            let mut sessions = lock(&front.sessions);
            let ids: Vec<String> =
                sessions.iter().filter(|(_, s)| s.idle_for(timeout)).map(|(id, _)| id.clone()).collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in expired {
            info!(session = session.id, ?timeout, "closed an HTTP session unused for its idle timeout");
            session.close();
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn unauthorized() -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"mcp-gateway\""));
    response
}

impl FrontDoor {
    /// The credentials in force. When a reload changed them, sessions opened
    /// with a credential that is gone (or now maps elsewhere) are closed: no
    /// request could use them any more.
    fn credentials(&self) -> Arc<credentials::Credentials> {
        let current = self.authenticator.current(&self.gateway);
        if current.changed {
            let revoked: Vec<Arc<HttpSession>> = {
                let mut sessions = lock(&self.sessions);
                let ids: Vec<String> = sessions
                    .iter()
                    .filter(|(_, s)| !current.credentials.still_configured(&s.owner))
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.iter().filter_map(|id| sessions.remove(id)).collect()
            };
            for session in revoked {
                info!(
                    credential = session.owner.label(),
                    "closed an HTTP session whose credential is no longer configured"
                );
                session.close();
            }
            let sessions = lock(&self.sessions);
            lock(&self.modern_sessions).retain(|_, id| sessions.contains_key(id));
        }
        current.credentials
    }
}

/// The one value of a header that must appear at most once; `Err` when it
/// appears more than once (a request smuggling two `Host`s past a check that
/// reads only the first).
fn single_header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    match values.next() {
        Some(_) => Err(()),
        None => Ok(first),
    }
}

/// DNS-rebinding protection (Host, Origin), CORS, then authentication.
///
/// A `Host` or `Origin` that appears twice is a malformed request: 400, as
/// RFC 9112 (section 3.2) requires for `Host`, and the same for `Origin`
/// (RFC 6454 defines one value), before either is compared with anything. One
/// that is present once but not allowed is a refusal by policy: 403.
async fn guard(
    State(front): State<Arc<FrontDoor>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let Ok(host) = single_header(headers, header::HOST) else {
        debug!(%peer, "refused an HTTP request with more than one Host header");
        return plain(StatusCode::BAD_REQUEST, "more than one Host header");
    };
    let host = host.and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !front.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return plain(StatusCode::FORBIDDEN, "forbidden host");
    }
    let Ok(origin) = single_header(headers, header::ORIGIN) else {
        debug!(%peer, "refused an HTTP request with more than one Origin header");
        return plain(StatusCode::BAD_REQUEST, "more than one Origin header");
    };
    let origin = origin.cloned();
    if let Some(origin) = &origin {
        let allowed = origin.to_str().is_ok_and(|o| front.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(o)));
        if !allowed {
            return plain(StatusCode::FORBIDDEN, "forbidden origin");
        }
    }
    let credentials = front.credentials();
    // A preflight comes without credentials; it is answered with what any
    // page of an allowed origin may send, and reaches no session.
    if request.method() == Method::OPTIONS
        && let Some(origin) = &origin
    {
        return cors::preflight(origin, headers, &credentials.api_key_header);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let api_key = headers.get(credentials.api_key_header.as_str()).and_then(|v| v.to_str().ok());
    let entry = bearer
        .and_then(|t| credentials::matching(&credentials.bearer, t))
        .or_else(|| api_key.and_then(|k| credentials::matching(&credentials.api_keys, k)));
    let caller = match (entry, &credentials.localhost) {
        (Some(entry), _) => Some(Caller {
            credential: entry.id.clone(),
            profile: entry.profile.clone(),
            workspace: entry.workspace.clone(),
        }),
        (None, Some(loopback)) if peer.ip().is_loopback() && bearer.is_none() && api_key.is_none() => {
            Some(Caller { credential: loopback.clone(), profile: None, workspace: None })
        }
        (None, _) => None,
    };
    let mut response = match caller {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => unauthorized(),
    };
    if let Some(origin) = &origin {
        cors::allow(&mut response, origin);
    }
    response
}
/// The answer for a session id that names no session of the caller's: the
/// same whether the session does not exist or another credential opened it,
/// so a session id proves nothing to anyone but its owner.
fn unknown_session() -> Response {
    plain(StatusCode::NOT_FOUND, "unknown or expired session")
}

/// Why a request that needs a session (or a caller) gets none.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    MissingSessionId,
    /// No such session, or not the caller's: told apart only in the log.
    UnknownSession,
    Unauthenticated,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::MissingSessionId => plain(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id"),
            Refusal::UnknownSession => unknown_session(),
            Refusal::Unauthenticated => unauthorized(),
        }
    }
}

/// The session a request names, if the caller's credential opened it.
fn session_of(front: &FrontDoor, headers: &HeaderMap, caller: &Caller) -> Result<Arc<HttpSession>, Refusal> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(Refusal::MissingSessionId);
    };
    let session = lock(&front.sessions).get(id).cloned().ok_or(Refusal::UnknownSession)?;
    if session.owner != caller.credential {
        warn!(
            credential = caller.credential.label(),
            owner = session.owner.label(),
            "refused an HTTP session id presented with another credential than the one that opened the session"
        );
        return Err(Refusal::UnknownSession);
    }
    Ok(session)
}

/// The caller the guard authenticated (always there behind it; a request
/// without one is refused rather than served as anybody).
fn caller_of(request: &Request) -> Result<Caller, Refusal> {
    request.extensions().get::<Caller>().cloned().ok_or(Refusal::Unauthenticated)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn post(State(front): State<Arc<FrontDoor>>, request: Request) -> Response {
    let caller = match caller_of(&request) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let (parts, body) = request.into_parts();
    let body =
        match tokio::time::timeout(front.config.read_timeout, axum::body::to_bytes(body, front.config.max_body_bytes))
            .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "the body took too long"),
        };
    let mut message: Value = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &jsonrpc::error(Value::Null, jsonrpc::PARSE_ERROR, format!("parse error: {e}")),
            );
        }
    };
    if message.is_array() {
        let error = jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, "batches are not supported over HTTP");
        return json_response(StatusCode::BAD_REQUEST, &error);
    }
    // A client that traces HTTP: its headers become the call's `_meta` ones.
    let adopted = crate::trace::adopt_headers(&mut message, &parts.headers);
    if sessionless::is_sessionless(&parts.headers) {
        return sessionless::post(&front, &caller, &parts.headers, message).await;
    }
    let is_initialize = jsonrpc::method(&message) == "initialize";
    let (session, new_id) = if is_initialize && !parts.headers.contains_key(SESSION_HEADER) {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        match open_session(&front, &caller, header(CWD_HEADER), header(ENTRY_HEADER)).await {
            Ok((id, session)) => (session, Some(id)),
            Err(OpenError::Full) => return plain(StatusCode::SERVICE_UNAVAILABLE, "too many sessions"),
            Err(OpenError::Refused(reason)) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &jsonrpc::error(
                        message.get("id").cloned().unwrap_or(Value::Null),
                        jsonrpc::INVALID_REQUEST,
                        reason,
                    ),
                );
            }
        }
    } else {
        match session_of(&front, &parts.headers, &caller) {
            Ok(session) => (session, None),
            Err(refusal) => return refusal.into_response(),
        }
    };
    session.touch();
    // The body as it came (fields this crate does not know pass unchanged),
    // unless the trace headers were added to it.
    let mut line = if adopted { serde_json::to_vec(&message).unwrap_or_else(|_| body.to_vec()) } else { body.to_vec() };
    line.retain(|b| *b != b'\n' && *b != b'\r');
    line.push(b'\n');
    if jsonrpc::kind(&message) != Kind::Request {
        let _ = session.to_gateway.send(line);
        return StatusCode::ACCEPTED.into_response();
    }
    let request_key = message.get("id").map(Value::to_string).unwrap_or_default();
    let (stream, mut rx) = session.open_request(&request_key, jsonrpc::progress_token(jsonrpc::params(&message)));
    if session.to_gateway.send(line).is_err() {
        session.abandon(&request_key, &stream);
        return plain(StatusCode::NOT_FOUND, "session closed");
    }
    if is_initialize {
        // The handshake answers in plain JSON, with the session id.
        let answer = rx.recv().await;
        session.detach(&stream, true);
        let Some((_, answer, _)) = answer else { return plain(StatusCode::INTERNAL_SERVER_ERROR, "session closed") };
        if let Some(version) = answer["result"]["protocolVersion"].as_str() {
            let _ = session.protocol_version.set(version.to_string());
        }
        let mut response = json_response(StatusCode::OK, &answer);
        if let Some(id) = new_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            response.headers_mut().insert(SESSION_HEADER, id);
        }
        return response;
    }
    // Everything for this request, then its answer, on one SSE stream. A
    // session of 2025-11-25 or later is first given the stream's event id, so
    // it can resume even before the first message; older clients would take
    // the empty event for a malformed message. (The version the session
    // negotiated, not the header: some clients send a stale one.)
    let version = session.protocol_version.get().map_or(crate::era::STREAMABLE_HTTP_VERSION, String::as_str);
    let priming = (version >= crate::era::PRIMING_EVENTS_SINCE).then(|| format!("{}-0", stream.number));
    let response = event_stream(request_events(rx, session, stream, None));
    match priming {
        Some(id) => primed(response, &id),
        None => response,
    }
}

/// Puts a priming event (an id, a `retry`, empty data) before an event
/// stream's first event. axum's encoder leaves out a `data` field that is
/// empty, and an event without one is never dispatched, so clients would not
/// learn the id: this one frame is written here, the rest stays axum's.
fn primed(response: Response, id: &str) -> Response {
    let frame = format!("id: {id}\nretry: {}\ndata:\n\n", RESUME_AFTER.as_millis());
    let (parts, body) = response.into_parts();
    let first = tokio_stream::once(Ok::<_, axum::Error>(bytes::Bytes::from(frame)));
    Response::from_parts(parts, axum::body::Body::from_stream(first.chain(body.into_data_stream())))
}

/// An SSE response, with keep-alive comments.
fn event_stream(events: impl tokio_stream::Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// How a client is told to wait before resuming a stream that dropped.
const RESUME_AFTER: Duration = Duration::from_millis(500);

/// The events of one request's stream: messages until (and including) the
/// answer, each with its event id. A modern request's (`restore`) has its ids
/// put back, and is cancelled if the client closes it early.
fn request_events(
    rx: mpsc::Receiver<Outgoing>,
    session: Arc<HttpSession>,
    stream: Arc<RequestStream>,
    restore: Option<sessionless::Restore>,
) -> impl tokio_stream::Stream<Item = Result<Event, Infallible>> {
    let cancel = restore.as_ref().map(sessionless::Restore::wire_id);
    let guard = DetachOnDrop { session, stream, answer_sent: false, cancel };
    events_after(guard, None, rx, restore)
}

/// The events of a request's stream from `first` (already taken off `rx`) on;
/// `guard` goes with the stream, so its end detaches (or cancels) the request.
fn events_after(
    mut guard: DetachOnDrop,
    first: Option<Outgoing>,
    rx: mpsc::Receiver<Outgoing>,
    restore: Option<sessionless::Restore>,
) -> impl tokio_stream::Stream<Item = Result<Event, Infallible>> {
    let mut finished = false;
    tokio_stream::iter(first)
        .chain(ReceiverStream::new(rx))
        .take_while(move |(_, _, answer)| {
            let keep = !finished;
            finished |= *answer;
            keep
        })
        .map(move |(id, message, answer)| {
            let guard = &mut guard; // the whole guard: it lives as long as the stream
            guard.answer_sent |= answer;
            match &restore {
                Some(restore) => Ok(to_event(None, &restore.apply(message))),
                None => Ok(to_event(id, &message)),
            }
        })
}

fn to_event(id: Option<String>, message: &Value) -> Event {
    let event = Event::default().event("message").data(message.to_string());
    match id {
        Some(id) => event.id(id),
        None => event,
    }
}

/// A request's stream whose connection ends: forgotten once the answer went
/// out, else kept for the client to resume.
struct DetachOnDrop {
    session: Arc<HttpSession>,
    stream: Arc<RequestStream>,
    answer_sent: bool,
    /// A modern request's wire id: closing its stream early cancels it.
    cancel: Option<Value>,
}

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        match &self.cancel {
            Some(wire_id) if !self.answer_sent => {
                let cancelled = jsonrpc::notification("notifications/cancelled", json!({ "requestId": wire_id }));
                let _ = self.session.to_gateway.send(jsonrpc::to_line(&cancelled));
                self.session.abandon(&wire_id.to_string(), &self.stream);
            }
            Some(_) => self.session.abandon("", &self.stream),
            None => self.session.detach(&self.stream, self.answer_sent),
        }
    }
}

/// The standalone GET stream's hold on its session: its end counts as use.
struct TouchOnDrop(Arc<HttpSession>);

impl Drop for TouchOnDrop {
    fn drop(&mut self) {
        self.0.touch();
    }
}

/// Why no session was opened.
enum OpenError {
    /// `max_sessions` are live.
    Full,
    /// The gateway refused the session (its reason).
    Refused(String),
}

impl From<String> for OpenError {
    fn from(reason: String) -> Self {
        OpenError::Refused(reason)
    }
}

async fn open_session(
    front: &Arc<FrontDoor>,
    caller: &Caller,
    cwd: Option<String>,
    entry: Option<String>,
) -> Result<(String, Arc<HttpSession>), OpenError> {
    if lock(&front.sessions).len() >= front.config.max_sessions {
        warn!(limit = front.config.max_sessions, "too many HTTP sessions; refused a new one");
        return Err(OpenError::Full);
    }
    let workspace = caller.workspace.clone().map(|w| crate::workspace::expand_home(&w));
    let preamble = Preamble {
        mcp_gateway_preamble: PREAMBLE_VERSION,
        cwd: workspace.or_else(|| cwd.map(Into::into)),
        profile: caller.profile.clone(),
        entry,
        shim_version: format!("http/{}", crate::VERSION),
        ..Default::default()
    };
    let admitted = crate::session::admit(&front.gateway, preamble)?;
    // The session reads and writes lines, as over the socket; the pipe is its
    // transport, the preamble never crosses it.
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (their_read, their_write) = tokio::io::split(theirs);
    let frames = FramedRead::new(their_read, LineCodec::new(front.gateway.config().max_message_bytes));
    tokio::spawn(crate::session::serve(front.gateway.clone(), admitted, frames, their_write, front.shutdown.clone()));
    let (read, mut write) = tokio::io::split(ours);
    let mut lines = BufReader::new(read).lines();
    let (to_gateway, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    let id = front.gateway.unguessable_id("http-session", 32);
    let session = Arc::new(HttpSession::new(id.clone(), caller.credential.clone(), to_gateway));
    let closed = session.closed.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = closed.cancelled() => break,
                line = outgoing.recv() => match line {
                    Some(line) => if write.write_all(&line).await.is_err() { break },
                    None => break,
                },
            }
        }
        // Dropping the pipe ends the gateway session (its calls are cancelled).
    });
    let reader = session.clone();
    let closed = session.closed.clone();
    let front_for_reader = front.clone();
    tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                _ = closed.cancelled() => break,
                line = lines.next_line() => line,
            };
            let Ok(Some(line)) = line else { break };
            if let Ok(message) = serde_json::from_str::<Value>(&line) {
                reader.dispatch(message);
            }
        }
        // With both halves of the pipe dropped, the gateway session ends; and
        // a gateway session that ended (the daemon is stopping) ends this one.
        lock(&front_for_reader.sessions).remove(&reader.id);
        reader.close();
    });
    lock(&front.sessions).insert(id.clone(), session.clone());
    Ok((id, session))
}

async fn get(State(front): State<Arc<FrontDoor>>, request: Request) -> Response {
    let caller = match caller_of(&request) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let headers = request.headers();
    let accepts_sse =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    if !accepts_sse {
        return plain(StatusCode::NOT_ACCEPTABLE, "the GET stream is text/event-stream");
    }
    let session = match session_of(&front, headers, &caller) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    session.touch();
    // A client resuming a request's stream gets the rest of it.
    let last_event = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    if let Some((stream, rx)) = last_event.and_then(|id| session.resume(id)) {
        return event_stream(request_events(rx, session, stream, None));
    }
    let rx = session.open_get_stream();
    // The session counts as used until the stream ends.
    let guard = TouchOnDrop(session);
    let events = ReceiverStream::new(rx).map(move |(id, message, _)| {
        let _keep_alive = &guard;
        Ok::<_, Infallible>(to_event(id, &message))
    });
    event_stream(events)
}

async fn delete(State(front): State<Arc<FrontDoor>>, request: Request) -> Response {
    let caller = match caller_of(&request) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let session = match session_of(&front, request.headers(), &caller) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    // Gone already if another DELETE or the idle timer took it meanwhile.
    if lock(&front.sessions).remove(&session.id).is_none() {
        return unknown_session();
    }
    session.close();
    StatusCode::NO_CONTENT.into_response()
}

/// An authenticated `OPTIONS` that is not a CORS preflight (no `Origin`):
/// what `/mcp` accepts.
async fn options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE, OPTIONS"));
    response
}
