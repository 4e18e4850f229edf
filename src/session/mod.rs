//! One client connection, served as an MCP server.
//!
//! The gateway answers `initialize`, `ping` and the `*/list` methods itself and
//! forwards calls to the backend that owns the named tool, prompt or resource.
//! Each request runs as its own task so a slow tool never holds up the session;
//! a client's `notifications/cancelled`, or its disconnect, drops the task, which
//! tells the backend (see `Backend::request`).
//!
//! A connection speaks the handshake era (`initialize`) or the modern one
//! (2026-07-28, an envelope on every request), decided by its first request;
//! [`modern`] holds what the modern era adds.

mod logins;
mod meta_tools;
mod modern_client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, warn};

use crate::backend::{Answer, BackendError};
use crate::catalog::Catalog;
use crate::config::ToolsMode;
use crate::framing::{Frame, LineCodec};
use crate::gateway::{Gateway, LogLevel, SessionContext, SessionInfo};
use crate::jsonrpc::{self, Kind};
use crate::preamble::{ClientEnv, Preamble};
use crate::sink::{Outbound, SessionSink};
use logins::{LoginAnswer, LoginRefusal};
use modern_client::{Era, ModernFront};

/// A session the gateway agreed to serve: its id, where it works, and who
/// its client is. Made by [`admit`] from the connection's preamble.
pub struct Admitted {
    id: crate::sink::SessionId,
    context: SessionContext,
    client_pid: Option<u32>,
    env: ClientEnv,
    resends_unstarted: bool,
    /// The shim's `--entry`: what the client calls the gateway.
    entry: Option<String>,
}

impl Admitted {
    /// The session's id, told to its client in the preamble reply.
    pub fn id(&self) -> crate::sink::SessionId {
        self.id
    }
}

/// Decides whether a session may start: its working directory and profile
/// resolve, and the gateway is under `limits.sessions`. The reason when not
/// is for the client (the shim prints it; the front door answers it).
pub fn admit(gateway: &Gateway, preamble: Preamble) -> Result<Admitted, String> {
    let context =
        gateway.session_context(preamble.cwd.as_deref(), preamble.profile.as_deref()).inspect_err(|reason| {
            warn!(%reason, "refused a session");
        })?;
    let limit = gateway.config().limits.sessions;
    if gateway.session_count() >= limit {
        let reason = format!("the gateway already serves {limit} sessions (limits.sessions); try again later");
        warn!("refused a session: {reason}");
        return Err(reason);
    }
    Ok(Admitted {
        id: gateway.next_session_id(),
        context,
        client_pid: preamble.client_pid,
        env: preamble.env,
        resends_unstarted: preamble.resends_unstarted,
        entry: preamble.entry,
    })
}

/// Serves an admitted session over a line transport (a socket after its
/// preamble, or the HTTP front door's pipe) until it closes or the daemon
/// shuts down.
pub async fn serve<R, W>(
    gateway: Arc<Gateway>,
    admitted: Admitted,
    frames: FramedRead<R, LineCodec>,
    write: W,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Admitted { id, context, client_pid, env, resends_unstarted, entry } = admitted;
    let span = crate::trace::session_span(id, client_pid);
    async move {
        let limits = gateway.config().limits.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = SessionSink::with_limits(id, tx, limits.backlog_per_session, limits.backlog_bytes_per_session);
        let front = Arc::new(ModernFront::default());
        let writer = tokio::spawn(write_messages(write, rx, sink.backlog(), front.clone()).in_current_span());
        let mut info = SessionInfo::new(sink, context, client_pid, env);
        info.entry = entry;
        gateway.register_session(info.clone());
        info!(
            cwd = ?info.cwd,
            workspace = %info.workspace.display(),
            profile = ?info.profile,
            entry = ?info.entry,
            "session started"
        );
        crate::memory::drop_code_when_settled();
        let session = Arc::new(Session::new(gateway.clone(), info, front, resends_unstarted));
        session.run(frames, shutdown).await;
        gateway.unregister_session(id);
        drop(session);
        let _ = writer.await;
        info!("session ended");
        if gateway.session_count() == 0 {
            crate::memory::release_freed();
        }
    }
    .instrument(span)
    .await
}

async fn write_messages<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    backlog: Arc<crate::sink::Backlog>,
    front: Arc<ModernFront>,
) {
    // Waited on across the loop, not made anew for each message (each new
    // wait registered with the token, and each dropped one unregistered), and
    // polled after the message or the write: a wake-up that has one ready
    // then looks at nothing else. A client that stops reading blocks the
    // write, and the cut-off is seen there.
    let overflowed = backlog.overflowed().clone();
    let overflowed = overflowed.cancelled();
    tokio::pin!(overflowed);
    'messages: loop {
        let outbound = tokio::select! {
            biased;
            outbound = rx.recv() => match outbound { Some(outbound) => outbound, None => break },
            // A client too far behind is cut off; what is queued is dropped.
            _ = &mut overflowed => break,
        };
        backlog.written(&outbound);
        // Answers come serialized already (see `Outbound`); the rest may be
        // changed for a modern client first.
        let lines = match outbound {
            Outbound::Line(line) => vec![line],
            Outbound::Message { message, .. } if front.is_modern() => {
                front.outgoing(message).iter().map(jsonrpc::to_line).collect()
            }
            Outbound::Message { message, .. } => vec![jsonrpc::to_line(&message)],
        };
        for line in lines {
            // A client that does not read blocks this write: the cut-off must
            // not wait for it.
            let written = tokio::select! {
                biased;
                written = write.write_all(&line) => written,
                _ = &mut overflowed => break 'messages,
            };
            if let Err(e) = written {
                debug!(error = %e, "client connection closed while writing");
                break 'messages;
            }
        }
    }
    let _ = write.shutdown().await;
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A request's entry in the session's in-flight map, removed when it is dropped
/// (answered, cancelled, or abandoned because the client went away).
struct InFlight {
    session: Arc<Session>,
    key: String,
}

/// Why a request was not registered as in flight.
enum Refusal {
    /// The session has `limits.requests_per_session` requests in flight already.
    TooMany(usize),
    /// Another request in flight in this session has the same id: its answer
    /// could not be told apart (and a repeated id would slip past the limit).
    IdInUse,
}

impl InFlight {
    /// Registers a request under its id (as JSON text, so `7` and `"7"` differ),
    /// checking the limit and the id in one step so two requests cannot race past either.
    fn register(session: Arc<Session>, key: String, token: CancellationToken, limit: usize) -> Result<Self, Refusal> {
        {
            let mut in_flight = crate::lock(&session.in_flight);
            if in_flight.contains_key(&key) {
                return Err(Refusal::IdInUse);
            }
            if in_flight.len() >= limit {
                return Err(Refusal::TooMany(limit));
            }
            in_flight.insert(key.clone(), token);
        }
        Ok(Self { session, key })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::lock(&self.session.in_flight).remove(&self.key);
    }
}

struct Session {
    gateway: Arc<Gateway>,
    info: SessionInfo,
    /// Requests in flight, by the client's id as JSON text, so a cancellation finds them.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
    /// The gateway's own questions to the client (elicitation), by id.
    asks: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Value>>>,
    next_ask: std::sync::atomic::AtomicU64,
    /// The modern era's state (listen streams, parked calls), shared with the writer.
    modern: Arc<ModernFront>,
    /// Global config changes a meta-tool showed and awaits the confirmation of.
    confirmations: meta_tools::Confirmations,
    /// See [`Preamble::resends_unstarted`].
    resends_unstarted: bool,
}

/// What a request sent to a draining daemon is answered with, when its client
/// cannot be handed it back.
const RESTARTING: &str = "the mcp-gateway daemon is restarting, so this request was not started; send it again";

/// Whether a message (or a batch) holds a request, which a draining session
/// does not start.
fn has_request(message: &Value) -> bool {
    match message {
        Value::Array(batch) => batch.iter().any(|m| jsonrpc::kind(m) == Kind::Request),
        message => jsonrpc::kind(message) == Kind::Request,
    }
}

/// The result of one request: a response to send, or nothing (cancelled).
type Outcome = Option<Reply>;

/// A session's answer to one request: a tree, or a backend's answer relayed
/// as the line it came in, with the client's id spliced in (`raw_answer`).
enum Reply {
    Value(Value),
    Line(Vec<u8>),
}

impl From<Value> for Reply {
    fn from(value: Value) -> Self {
        Reply::Value(value)
    }
}

impl Reply {
    /// The answer as a tree (a relayed line was JSON when it was spliced).
    fn into_value(self) -> Value {
        match self {
            Reply::Value(value) => value,
            Reply::Line(line) => serde_json::from_slice(&line).unwrap_or_else(|e| {
                jsonrpc::error(Value::Null, jsonrpc::INTERNAL_ERROR, format!("an answer could not be read: {e}"))
            }),
        }
    }
}

impl Session {
    fn new(gateway: Arc<Gateway>, info: SessionInfo, modern: Arc<ModernFront>, resends_unstarted: bool) -> Self {
        Self {
            gateway,
            info,
            in_flight: Mutex::new(HashMap::new()),
            asks: Mutex::new(HashMap::new()),
            next_ask: std::sync::atomic::AtomicU64::new(1),
            modern,
            confirmations: Default::default(),
            resends_unstarted,
        }
    }

    fn send(&self, message: Value) {
        self.info.sink.send(message);
    }

    fn reply(&self, reply: Reply) {
        match reply {
            Reply::Value(message) => self.info.sink.send(message),
            Reply::Line(line) => self.info.sink.send_line(line),
        };
    }

    async fn run(
        self: &Arc<Self>,
        mut frames: FramedRead<impl AsyncRead + Unpin, LineCodec>,
        shutdown: CancellationToken,
    ) {
        let requests = TaskTracker::new();
        // Not a child of `shutdown`: a planned shutdown drains (see below).
        let cancel_all = CancellationToken::new();
        let max = self.gateway.config().max_message_bytes;
        // A planned shutdown (SIGTERM, `stop`, an upgrade) drains: the calls in
        // flight get `shutdown_grace_secs` to finish, and the session goes on
        // reading meanwhile, so that their cancellations and the client's
        // answers to their questions (sampling, elicitation) still arrive; a new
        // request is not started but handed back (see `hand_back`).
        let mut drain_until: Option<tokio::time::Instant> = None;
        // Waited on across the loop, not made anew for each line, and polled
        // after the next line (see `write_messages`): a client that keeps
        // sending is still made to yield by the runtime's budget, and then
        // the rest is looked at.
        let shut_down = shutdown.cancelled();
        tokio::pin!(shut_down);
        let overflowed = self.info.sink.overflowed().clone();
        let overflowed = overflowed.cancelled();
        tokio::pin!(overflowed);
        loop {
            let frame = tokio::select! {
                biased;
                frame = frames.next() => frame,
                _ = &mut shut_down, if drain_until.is_none() => {
                    let grace = Duration::from_secs(self.gateway.config().shutdown_grace_secs);
                    drain_until = Some(tokio::time::Instant::now() + grace);
                    requests.close();
                    continue;
                }
                _ = requests.wait(), if drain_until.is_some() => break,
                _ = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)), if drain_until.is_some() => {
                    warn!("calls in flight did not finish within the shutdown grace; cancelled them");
                    break;
                }
                _ = &mut overflowed => {
                    let reason = self.info.sink.overflow_reason().map(|r| r.to_string()).unwrap_or_default();
                    warn!("the client stopped reading ({reason}); disconnected it and cancelled its calls");
                    break;
                }
            };
            match frame {
                None => {
                    // The client stopped sending; when draining, its calls in
                    // flight may still finish.
                    if let Some(until) = drain_until {
                        let _ = tokio::time::timeout_at(until, requests.wait()).await;
                    }
                    break;
                }
                Some(Err(e)) => {
                    debug!(error = %e, "client connection failed");
                    break;
                }
                Some(Ok(Frame::TooLong)) => {
                    warn!("client sent a message larger than {max} bytes");
                    self.send(jsonrpc::error(
                        Value::Null,
                        jsonrpc::INVALID_REQUEST,
                        format!("message larger than the limit of {max} bytes (max_message_bytes); it was dropped"),
                    ));
                }
                Some(Ok(Frame::Line(line))) => self.on_line(&line, &requests, &cancel_all, drain_until.is_some()),
            }
        }
        // The client is gone (or the grace is over): drop every request task
        // (each tells its backend).
        cancel_all.cancel();
        requests.close();
        requests.wait().await;
    }

    fn on_line(self: &Arc<Self>, line: &[u8], requests: &TaskTracker, cancel_all: &CancellationToken, draining: bool) {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                warn!("client sent a line that is not UTF-8");
                self.send(jsonrpc::error(
                    Value::Null,
                    jsonrpc::PARSE_ERROR,
                    format!("the message is not valid UTF-8: {e}"),
                ));
                return;
            }
        };
        let message: Value = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => {
                warn!(error = %e, "client sent a line that is not JSON");
                self.send(jsonrpc::error(Value::Null, jsonrpc::PARSE_ERROR, format!("parse error: {e}")));
                return;
            }
        };
        if draining && has_request(&message) {
            self.hand_back(message);
            return;
        }
        match message {
            Value::Array(batch) if batch.is_empty() => {
                self.send(jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, "empty batch"));
            }
            Value::Array(batch) => {
                // Register every request of the batch now, so a cancellation on the
                // next line finds it.
                let outcomes: Vec<_> = batch.into_iter().map(|m| self.start(m, cancel_all)).collect();
                let session = self.clone();
                requests.spawn(
                    async move {
                        let replies: Vec<Value> = futures_util::future::join_all(outcomes)
                            .await
                            .into_iter()
                            .flatten()
                            .map(Reply::into_value)
                            .collect();
                        if !replies.is_empty() {
                            session.send(Value::Array(replies));
                        }
                    }
                    .in_current_span(),
                );
            }
            // Notifications and responses are handled at once, in order; no task.
            message if jsonrpc::kind(&message) != Kind::Request => {
                if let Some(reply) = self.on_other(&message) {
                    self.send(reply);
                }
            }
            message => {
                let outcome = self.start(message, cancel_all);
                let session = self.clone();
                requests.spawn(
                    async move {
                        if let Some(reply) = outcome.await {
                            session.reply(reply);
                        }
                    }
                    .in_current_span(),
                );
            }
        }
    }

    /// A request read while the daemon drains is not started here: a shim is
    /// handed the whole message back to send to the next daemon (it was never
    /// acted on, so that is safe whatever it does); any other client gets an
    /// error that says so.
    fn hand_back(&self, message: Value) {
        if self.resends_unstarted {
            debug!("handed a request back to the shim for the next daemon");
            self.send(jsonrpc::notification(crate::preamble::NOT_STARTED, json!({ "message": message })));
            return;
        }
        let refusal = |m: &Value| {
            jsonrpc::error(m.get("id").cloned().unwrap_or(Value::Null), jsonrpc::INTERNAL_ERROR, RESTARTING)
        };
        match message {
            // A batch is answered as one: its requests refused, its other
            // members (an answer to a call's question) handled as ever.
            Value::Array(batch) => {
                let replies: Vec<Value> = batch
                    .iter()
                    .filter_map(|m| if jsonrpc::kind(m) == Kind::Request { Some(refusal(m)) } else { self.on_other(m) })
                    .collect();
                self.send(Value::Array(replies));
            }
            request => self.send(refusal(&request)),
        }
    }

    /// Starts handling one message. Notifications and responses are handled at
    /// once, in order; a request is registered as in flight at once and answered
    /// by the returned future (which yields nothing if the request is cancelled).
    fn start(self: &Arc<Self>, message: Value, cancel_all: &CancellationToken) -> BoxFuture<'static, Outcome> {
        if jsonrpc::kind(&message) != Kind::Request {
            let outcome = self.on_other(&message).map(Reply::Value);
            return Box::pin(std::future::ready(outcome));
        }
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let limit = self.gateway.config().limits.requests_per_session;
        let token = cancel_all.child_token();
        let registration = match InFlight::register(self.clone(), id.to_string(), token.clone(), limit) {
            Ok(registration) => registration,
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::TooMany(limit) => {
                        format!("this session already has {limit} requests in flight (limits.requests_per_session)")
                    }
                    Refusal::IdInUse => format!(
                        "Invalid Request: id {id} is already in use by a request in flight in this session; \
                         use a new id for each request"
                    ),
                };
                warn!("refused a request: {reason}");
                return Box::pin(std::future::ready(Some(jsonrpc::error(id, jsonrpc::INVALID_REQUEST, reason).into())));
            }
        };
        Box::pin(async move {
            let session = registration.session.clone();
            tokio::select! {
                _ = token.cancelled() => None,
                reply = session.on_request(id, message) => Some(reply),
            }
        })
    }

    /// Handles a message that is not a request; returns an error reply for invalid ones.
    fn on_other(&self, message: &Value) -> Option<Value> {
        match jsonrpc::kind(message) {
            Kind::Notification => {
                self.on_notification(message);
                None
            }
            Kind::Response => {
                let key = message.get("id").map(Value::to_string).unwrap_or_default();
                let asked = crate::lock(&self.asks).remove(&key);
                match asked {
                    Some(reply) => {
                        let _ = reply.send(message.clone());
                    }
                    None => self.gateway.on_client_response(self.info.id, message.clone()),
                }
                None
            }
            Kind::Request | Kind::Invalid => {
                let id =
                    message.get("id").filter(|id| id.is_string() || id.is_number()).cloned().unwrap_or(Value::Null);
                Some(jsonrpc::error(
                    id,
                    jsonrpc::INVALID_REQUEST,
                    "not a JSON-RPC 2.0 request, notification or response",
                ))
            }
        }
    }

    fn on_notification(&self, message: &Value) {
        match jsonrpc::method(message) {
            "notifications/initialized" => debug!("client initialized"),
            "notifications/cancelled" => {
                let id = jsonrpc::params(message).get("requestId").map(Value::to_string);
                let token = id.and_then(|id| crate::lock(&self.in_flight).get(&id).cloned());
                match token {
                    Some(token) => token.cancel(),
                    None => debug!("cancellation for a request that is not in flight"),
                }
            }
            other => debug!(method = other, "dropped a client notification"),
        }
    }

    /// Answers one request, in a trace span of its own (see `trace`).
    async fn on_request(self: &Arc<Self>, id: Value, message: Value) -> Reply {
        let span = crate::trace::call_span(jsonrpc::method(&message), jsonrpc::params(&message), self.info.id, &id);
        let reply = async move {
            let method = jsonrpc::method(&message);
            debug!(method, %id, "request");
            let era = *self.modern.era.get_or_init(|| {
                if modern_client::opens_modern(method, jsonrpc::params(&message)) {
                    Era::Modern
                } else {
                    Era::Handshake
                }
            });
            match era {
                Era::Handshake => self.on_handshake_request(id, message).await,
                Era::Modern => self.on_modern_request(id, message).await.into(),
            }
        }
        .instrument(span.clone())
        .await;
        if let Reply::Value(reply) = &reply {
            crate::trace::failed_if_error(&span, reply);
        }
        reply
    }

    async fn on_handshake_request(&self, id: Value, mut message: Value) -> Reply {
        // Taken, not copied: a call's arguments can be large.
        let params = message.get_mut("params").map(Value::take).unwrap_or(Value::Null);
        let reply = match jsonrpc::method(&message) {
            "initialize" => jsonrpc::result(id, self.initialize(&params)),
            "ping" => jsonrpc::result(id, json!({})),
            "server/discover" => jsonrpc::error(
                id,
                jsonrpc::METHOD_NOT_FOUND,
                "server/discover is not supported: this gateway speaks MCP 2024-11-05 to 2025-11-25; send `initialize`",
            ),
            "logging/setLevel" => {
                match params.get("level").and_then(Value::as_str).unwrap_or_default().parse::<LogLevel>() {
                    Ok(level) => {
                        self.gateway.set_log_level(self.info.id, level);
                        jsonrpc::result(id, json!({}))
                    }
                    Err(message) => jsonrpc::error(id, jsonrpc::INVALID_PARAMS, message),
                }
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let Some(uri) = params.get("uri").and_then(Value::as_str) else {
                    return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "needs a string `uri`").into();
                };
                let done = if jsonrpc::method(&message) == "resources/subscribe" {
                    self.gateway.subscribe(&self.info, uri).await
                } else {
                    self.gateway.unsubscribe(&self.info, uri).await
                };
                match done {
                    Ok(()) => jsonrpc::result(id, json!({})),
                    Err((code, message)) => jsonrpc::error(id, code, message),
                }
            }
            "tools/list" => self.list_tools(id, &params).await,
            "prompts/list" => self.list(id, &params, |c| &c.prompts, "prompts").await,
            "resources/list" => self.list(id, &params, |c| &c.resources, "resources").await,
            "resources/templates/list" => self.list(id, &params, |c| &c.resource_templates, "resourceTemplates").await,
            "tools/call" if params.get("name").and_then(Value::as_str).is_some_and(meta_tools::is_meta) => {
                let name = params["name"].as_str().unwrap_or_default().to_string();
                let mut response =
                    meta_tools::call(&self.gateway, &self.info, self, &self.confirmations, &name, &params).await;
                response["jsonrpc"] = "2.0".into();
                response["id"] = id;
                response
            }
            // What a backend answers may be relayed as it came.
            "tools/call" => return self.call_named(id, "tools/call", params, Named::Tool).await,
            "prompts/get" => return self.call_named(id, "prompts/get", params, Named::Prompt).await,
            "resources/read" => return self.read_resource(id, params).await,
            "completion/complete" => return self.complete(id, params).await,
            "tasks/get" | "tasks/result" | "tasks/cancel" => {
                self.task_request(id, jsonrpc::method(&message), params).await
            }
            "tasks/list" => self.list_tasks(id).await,
            other => jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, format!("Method not found: {other}")),
        };
        reply.into()
    }

    fn initialize(&self, params: &Value) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str).unwrap_or_default();
        let version = crate::era::HANDSHAKE_VERSIONS
            .iter()
            .find(|v| **v == requested)
            .copied()
            .unwrap_or(crate::era::HANDSHAKE_VERSIONS[0]);
        let client_name = params.pointer("/clientInfo/name").and_then(Value::as_str).map(str::to_string);
        info!(client = ?client_name, version, "client initialized the session");
        let capabilities = params.get("capabilities").cloned().unwrap_or(Value::Null);
        self.gateway.set_client_info(self.info.id, client_name, version, capabilities);
        let mut result = self.server_description();
        result["protocolVersion"] = version.into();
        result
    }

    /// The gateway's capabilities, info and instructions (the backends' own,
    /// for those it knows), as `initialize` and `server/discover` give them.
    fn server_description(&self) -> Value {
        let known = self.gateway.known_listings(&self.info);
        let instructions: Vec<String> = known
            .iter()
            .filter_map(|(server, listing)| Some(format!("## {server}\n{}", listing.instructions()?)))
            .collect();
        let mut result = json!({
            "capabilities": {
                "tools": {"listChanged": true},
                "prompts": {"listChanged": true},
                "resources": {"listChanged": true, "subscribe": true},
                "completions": {},
                "logging": {},
            },
            "serverInfo": {"name": "mcp-gateway", "title": "MCP Gateway", "version": crate::VERSION},
        });
        if !instructions.is_empty() {
            result["instructions"] = Value::String(instructions.join("\n\n"));
        }
        // Tasks are offered when a backend offers them (what one offers, the gateway routes).
        let tasks = known.iter().filter_map(|(_, l)| l.initialize.pointer("/capabilities/tasks")).fold(
            Value::Null,
            |mut merged, caps| {
                merge(&mut merged, caps);
                merged
            },
        );
        if !tasks.is_null() {
            result["capabilities"]["tasks"] = tasks;
        }
        result
    }

    /// `tools/list`: every tool, or the meta-tools (lazy, or auto above the threshold).
    async fn list_tools(&self, id: Value, params: &Value) -> Value {
        let lazy = match self.gateway.tools_mode(&self.info) {
            ToolsMode::Full => false,
            // Lazy needs no listing at all: nothing is started to answer it.
            ToolsMode::Lazy => true,
            ToolsMode::Auto => {
                let catalog = self.gateway.catalog(&self.info).await;
                let bytes = serde_json::to_vec(&catalog.tools).map_or(0, |b| b.len());
                bytes / 4 > self.gateway.config().lazy_threshold_tokens
            }
        };
        if lazy {
            return self.page(id, params, &meta_tools::definitions(), "tools");
        }
        let catalog = self.gateway.catalog(&self.info).await;
        let answerable = |tool: &&Value| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            self.gateway.unanswerable(self.info.id, &catalog, name).is_none()
        };
        if catalog.tools.iter().all(|tool| answerable(&tool)) {
            return self.page(id, params, &catalog.tools, "tools");
        }
        // Tools known to ask for what this client cannot answer are left out.
        let tools: Vec<Value> = catalog.tools.iter().filter(answerable).cloned().collect();
        self.page(id, params, &tools, "tools")
    }

    async fn list(&self, id: Value, params: &Value, items: fn(&Catalog) -> &Vec<Value>, field: &str) -> Value {
        let catalog = self.gateway.catalog(&self.info).await;
        self.page(id, params, items(&catalog), field)
    }

    fn page(&self, id: Value, params: &Value, items: &[Value], field: &str) -> Value {
        let page_size = self.gateway.config().page_size;
        match paginate(items, params.get("cursor"), page_size) {
            Ok((page, next)) => {
                let mut result = json!({ field: page });
                if let Some(next) = next {
                    result["nextCursor"] = Value::String(next);
                }
                jsonrpc::result(id, result)
            }
            Err(message) => jsonrpc::error(id, jsonrpc::INVALID_PARAMS, message),
        }
    }

    async fn call_named(&self, id: Value, method: &str, mut params: Value, kind: Named) -> Reply {
        let Some(name) = params.get("name").and_then(Value::as_str).map(str::to_string) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("{method} needs a string `name`")).into();
        };
        let mut logged_in = false;
        let (target, catalog) = loop {
            // Only the servers that can expose this name are waited for.
            let catalog = self.gateway.catalog_for_name(&self.info, &name).await;
            let target = match kind {
                Named::Tool => catalog.tool(&name),
                Named::Prompt => catalog.prompt(&name),
            };
            if let Some(target) = target {
                break (target.clone(), catalog);
            }
            // A tool of a server that lists nothing until someone logs in:
            // the model hears what to tell the person (a tool error), not a
            // protocol failure; a client that opens URLs is sent to the login
            // (and a 2026-07-28 one's call goes on once it is done).
            if let Named::Tool = kind
                && !logged_in
                && let Some((server, _)) = catalog.unavailable_for(&name)
                && let Some(why) = self.gateway.login_needed(server, &self.info)
            {
                let server = server.to_string();
                let refusal = LoginRefusal { why, scope: None };
                match self.login_answer(id.clone(), &server, &refusal).await {
                    LoginAnswer::Answer(answer) => return answer.into(),
                    LoginAnswer::LoggedIn => {
                        logged_in = true;
                        continue;
                    }
                }
            }
            return unknown_name(id, kind, &name, &catalog).into();
        };
        if let Named::Tool = kind
            && let Some(missing) = self.gateway.unanswerable(self.info.id, &catalog, &name)
        {
            info!(tool = name, "refused a call of a tool that asks for {missing}, which this client does not support");
            return tool_refusal(id, &crate::gateway::unanswerable_message(&name, &missing)).into();
        }
        params["name"] = Value::String(target.name.clone());
        self.forward(id, &target.server, method, params).await
    }

    async fn read_resource(&self, id: Value, params: Value) -> Reply {
        let Some(uri) = params.get("uri").and_then(Value::as_str).map(str::to_string) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "resources/read needs a string `uri`").into();
        };
        let catalog = self.gateway.catalog_for_uri(&self.info, &uri).await;
        match catalog.resource_server(&uri) {
            Some(server) => self.forward(id, server, "resources/read", params).await,
            None => jsonrpc::error_with_data(
                id,
                modern_client::resource_not_found_code(self.modern.is_modern()),
                format!("Resource not found: no configured server lists `{uri}` or a template matching it"),
                json!({ "uri": uri }),
            )
            .into(),
        }
    }

    async fn complete(&self, id: Value, mut params: Value) -> Reply {
        let reference = params.get("ref").cloned().unwrap_or(Value::Null);
        let server = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
                let catalog = self.gateway.catalog_for_name(&self.info, name).await;
                match catalog.prompt(name) {
                    Some(target) => {
                        params["ref"]["name"] = Value::String(target.name.clone());
                        Some(target.server.clone())
                    }
                    None => return unknown_name(id, Named::Prompt, name, &catalog).into(),
                }
            }
            Some("ref/resource") => {
                let uri = reference.get("uri").and_then(Value::as_str).unwrap_or_default();
                self.gateway.catalog_for_uri(&self.info, uri).await.resource_server(uri).map(str::to_string)
            }
            _ => None,
        };
        match server {
            Some(server) => self.forward(id, &server, "completion/complete", params).await,
            None => jsonrpc::error(
                id,
                jsonrpc::INVALID_PARAMS,
                "completion/complete: `ref` names no known prompt or resource",
            )
            .into(),
        }
    }

    /// `tasks/get`, `tasks/result`, `tasks/cancel`: to the task's server, for its owner only.
    async fn task_request(&self, id: Value, method: &str, params: Value) -> Value {
        let task = params.get("taskId").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(server) = self.gateway.task_server(self.info.id, &task) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("Unknown task `{task}`"));
        };
        let response = self.forward(id, &server, method, params).await.into_value();
        if method != "tasks/get" && response.get("result").is_some() {
            self.gateway.forget_task(&task);
        }
        response
    }

    /// `tasks/list`: this session's tasks only, as their servers report them.
    async fn list_tasks(&self, id: Value) -> Value {
        let mut tasks = Vec::new();
        for (server, owned) in self.gateway.tasks_of(self.info.id) {
            if let Ok(response) = self.gateway.forward(&server, "tasks/list", json!({}), &self.info).await {
                let listed = response.pointer("/result/tasks").and_then(Value::as_array).cloned().unwrap_or_default();
                tasks.extend(
                    listed.into_iter().filter(|t| {
                        t.get("taskId").and_then(Value::as_str).is_some_and(|t| owned.iter().any(|o| o == t))
                    }),
                );
            }
        }
        jsonrpc::result(id, json!({ "tasks": tasks }))
    }

    /// Forwards to a backend and relays its response under the client's own id.
    /// A modern server's answer to a handshake-era client is translated: its
    /// `input_required` rounds run here, its modern-only fields go. An answer
    /// that needs nothing of that (most) is relayed as the line it came in,
    /// with only the id spliced (see `raw_answer`).
    ///
    /// A tool call the server refused for want of a login (or of scopes)
    /// waits for the login where the client can be sent to it (see
    /// [`logins`]).
    async fn forward(&self, id: Value, server: &str, method: &str, params: Value) -> Reply {
        // A 2026-07-28 client's tool call is sent again once a login asked
        // within it is done.
        let again = (method == "tools/call" && self.modern.is_modern()).then(|| params.clone());
        match self.forward_once(id.clone(), server, method, params).await {
            Ok(reply) => reply,
            Err(refusal) => self.answer_login(id, server, &refusal, again.map(|p| (method, p))).await,
        }
    }

    /// [`Session::forward`] without the login: a tool call refused for want
    /// of one is `Err`, why.
    async fn forward_once(&self, id: Value, server: &str, method: &str, params: Value) -> Result<Reply, LoginRefusal> {
        // Kept for a retry only when the backend is of the modern era (see
        // `Gateway::forward_answer_keeping`).
        let rounds = !self.modern.is_modern() && modern_client::may_need_input(method);
        let (answer, retry) = self.gateway.forward_answer_keeping(server, method, params, &self.info, rounds).await;
        let mut answer = match answer {
            // (An error goes the slow way: its span is marked failed.)
            Ok(Answer::Raw(raw)) if raw.is_plain() && raw.has_result() && !self.modern.is_modern() => {
                return Ok(Reply::Line(raw.line_with_id(&id)));
            }
            Ok(answer) => Ok(answer.into_value()),
            Err(e) => Err(e),
        };
        if let Some(retry) = retry
            && let Ok(response) = answer
        {
            answer = self.run_input_rounds(server, method, retry, response).await;
        }
        if method == "tools/call"
            && let Ok(response) = &answer
            && let Some(refusal) = LoginRefusal::of(response)
        {
            return Err(refusal);
        }
        match answer {
            Ok(mut response) => {
                if self.modern.is_modern() {
                    modern_client::modernize_error(&mut response);
                } else {
                    crate::era::strip_modern_result(&mut response);
                }
                if method == "tools/call" {
                    self.gateway.record_task(self.info.id, server, &response);
                }
                if let Some(obj) = response.as_object_mut() {
                    obj.insert("id".into(), id);
                    obj.entry("jsonrpc").or_insert_with(|| "2.0".into());
                }
                Ok(response.into())
            }
            Err(e) => match self.gateway.login_needed(server, &self.info).filter(|_| method == "tools/call") {
                Some(why) => Err(LoginRefusal { why, scope: None }),
                None => Ok(backend_error(id, server, &e).into()),
            },
        }
    }
}

/// A tool call that cannot run as things are (it waits for a person to log
/// in, or asks what this client cannot answer): a tool error (`isError`)
/// saying why, so the model can relay it.
fn tool_refusal(id: Value, why: &str) -> Value {
    jsonrpc::result(id, json!({ "content": [{ "type": "text", "text": why }], "isError": true }))
}

/// Merges JSON objects (capability sets): keys of `extra` are added recursively.
fn merge(into: &mut Value, extra: &Value) {
    match (into, extra) {
        (Value::Object(into), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (into @ Value::Null, extra) => *into = extra.clone(),
        _ => {}
    }
}

/// How long the gateway waits for the client to answer its own question.
const ASK_TIMEOUT: Duration = Duration::from_secs(600);

impl meta_tools::Ask for Session {
    fn can_elicit(&self) -> bool {
        let capabilities = self.gateway.session(self.info.id).map(|s| s.capabilities).unwrap_or_default();
        capabilities
            .get("elicitation")
            .and_then(Value::as_object)
            .is_some_and(|e| e.is_empty() || e.contains_key("form"))
    }

    fn elicit(&self, params: Value) -> futures_util::future::BoxFuture<'_, Option<Value>> {
        Box::pin(self.ask_client("elicitation/create", params))
    }
}

impl Session {
    /// Asks the client something of the gateway's own (an elicitation, or a
    /// modern server's question for a handshake-era client); its `result`, or
    /// `None` if it answered with an error, went away or took too long.
    async fn ask_client(&self, method: &str, params: Value) -> Option<Value> {
        let n = self.next_ask.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = Value::String(format!("{}{n}", jsonrpc::ids::ASK_PREFIX));
        let (tx, rx) = tokio::sync::oneshot::channel();
        crate::lock(&self.asks).insert(id.to_string(), tx);
        self.send(jsonrpc::request(id.clone(), method, params));
        let answer = tokio::time::timeout(ASK_TIMEOUT, rx).await.ok().and_then(Result::ok);
        crate::lock(&self.asks).remove(&id.to_string());
        answer.and_then(|a| a.get("result").cloned())
    }
}

#[derive(Clone, Copy)]
enum Named {
    Tool,
    Prompt,
}

fn unknown_name(id: Value, kind: Named, name: &str, catalog: &Catalog) -> Value {
    // A name of a server that could not be listed: say why that server is unavailable.
    if let Some((server, why)) = catalog.unavailable.iter().find(|(server, _)| name.starts_with(&format!("{server}__")))
    {
        return jsonrpc::error_with_data(id, jsonrpc::INTERNAL_ERROR, why.clone(), json!({ "server": server }));
    }
    let (what, suggestions) = match kind {
        Named::Tool => ("tool", catalog.similar_tools(name, 3)),
        Named::Prompt => ("prompt", Vec::new()),
    };
    let hint = if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
    };
    jsonrpc::error_with_data(
        id,
        jsonrpc::INVALID_PARAMS,
        format!("Unknown {what}: `{name}`{hint}{}", unavailable_note(catalog)),
        json!({ "name": name, "suggestions": suggestions }),
    )
}

fn unavailable_note(catalog: &Catalog) -> String {
    if catalog.unavailable.is_empty() {
        return String::new();
    }
    let servers: Vec<String> = catalog.unavailable.iter().map(|(s, why)| format!("`{s}` ({why})")).collect();
    format!(" (servers that could not be listed: {})", servers.join("; "))
}

fn backend_error(id: Value, server: &str, error: &BackendError) -> Value {
    warn!(server, error = %error, "request failed");
    let code = match error {
        BackendError::Timeout { .. } => jsonrpc::REQUEST_TIMEOUT,
        _ => jsonrpc::INTERNAL_ERROR,
    };
    jsonrpc::error_with_data(id, code, error.to_string(), json!({ "server": server }))
}

/// One page of `items` starting at `cursor` (an offset the gateway handed out).
fn paginate(items: &[Value], cursor: Option<&Value>, page_size: usize) -> Result<(Vec<Value>, Option<String>), String> {
    let start = match cursor {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => c
            .strip_prefix("offset:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| format!("Invalid cursor `{c}`"))?,
        Some(other) => return Err(format!("Invalid cursor {other}")),
    };
    let end = (start + page_size).min(items.len());
    let next = (end < items.len()).then(|| format!("offset:{end}"));
    Ok((items[start..end].to_vec(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paginates_with_opaque_cursors() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (page, next) = paginate(&items, None, 2).unwrap();
        assert_eq!(page, vec![json!(0), json!(1)]);
        let (page, next) = paginate(&items, Some(&json!(next.unwrap())), 2).unwrap();
        assert_eq!(page, vec![json!(2), json!(3)]);
        let (page, next) = paginate(&items, Some(&json!(next.unwrap())), 2).unwrap();
        assert_eq!((page, next), (vec![json!(4)], None));
        assert!(paginate(&items, Some(&json!("offset:99")), 2).is_err());
        assert!(paginate(&items, Some(&json!("bogus")), 2).is_err());
        assert!(paginate(&items, Some(&json!(3)), 2).is_err());
    }
}
