//! The 2026-07-28 ("modern") protocol era on the client side of a session.
//!
//! A modern client never sends `initialize`: each request carries an envelope
//! in `params._meta` (protocol version, the client's capabilities and info,
//! its log level), `server/discover` takes the handshake's place, list changes
//! and resource updates arrive only on `subscriptions/listen` streams, and the
//! server cannot send it requests. So when a backend asks this client something
//! (sampling, elicitation) during a call, the call is answered `input_required`
//! with the question, the backend's call stays parked under an unguessable
//! `requestState`, and the client's retry (a new request carrying the answers)
//! delivers them and takes up the wait again. Handshake-era backends behind the
//! gateway never notice.
//!
//! The era is decided by a connection's first request, as dual-era servers do,
//! and then holds for the connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, warn};

use super::Session;
use crate::era::{
    CAPABILITIES_KEY, CLIENT_INFO_KEY, LOG_LEVEL_KEY, MODERN_VERSIONS, SERVER_INFO_KEY, SUBSCRIPTION_ID_KEY,
    VERSION_KEY, strip_envelope,
};
use crate::gateway::LogLevel;
use crate::jsonrpc::{self, Kind, UNSUPPORTED_VERSION};
use crate::lock;

/// How long a parked call waits for the client's retry.
const PARK_TIMEOUT: Duration = Duration::from_secs(600);

pub use crate::era::Era;

/// Whether a connection's first request makes it a modern one.
pub fn opens_modern(method: &str, params: &Value) -> bool {
    method != "initialize" && params.get("_meta").and_then(|m| m.get(VERSION_KEY)).is_some()
}

/// What a modern request's envelope says.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: String,
    pub capabilities: Value,
    pub client_name: Option<String>,
    pub log_level: Option<String>,
}

/// The envelope of a request, or the error to answer it with.
pub fn envelope(id: &Value, params: &Value, all_versions: &[&str]) -> Result<Envelope, Value> {
    let meta = params.get("_meta").cloned().unwrap_or(Value::Null);
    let Some(version) = meta.get(VERSION_KEY).and_then(Value::as_str) else {
        let message = format!("this connection speaks MCP 2026-07-28: every request needs `_meta.{VERSION_KEY}`");
        return Err(jsonrpc::error(id.clone(), jsonrpc::INVALID_PARAMS, message));
    };
    if !MODERN_VERSIONS.contains(&version) {
        return Err(jsonrpc::error_with_data(
            id.clone(),
            UNSUPPORTED_VERSION,
            format!("Unsupported protocol version {version}"),
            json!({ "supported": all_versions, "requested": version }),
        ));
    }
    let Some(capabilities) = meta.get(CAPABILITIES_KEY).filter(|c| c.is_object()) else {
        let message = format!("every request needs `_meta.{CAPABILITIES_KEY}` (an object; `{{}}` for none)");
        return Err(jsonrpc::error(id.clone(), jsonrpc::INVALID_PARAMS, message));
    };
    Ok(Envelope {
        version: version.to_string(),
        capabilities: capabilities.clone(),
        client_name: meta
            .pointer(&format!("/{}/name", CLIENT_INFO_KEY.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string),
        log_level: meta.get(LOG_LEVEL_KEY).and_then(Value::as_str).map(str::to_string),
    })
}

/// Adds what a modern result carries to a handshake-era answer: `resultType`,
/// and the caching hints of the methods whose results may be cached (the
/// gateway's listings change with its config: fresh for no time, per client).
pub fn decorate(method: &str, response: &mut Value) {
    let Some(result) = response.get_mut("result").and_then(Value::as_object_mut) else { return };
    result.entry("resultType").or_insert_with(|| "complete".into());
    if matches!(
        method,
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" | "resources/read"
    ) {
        result.entry("ttlMs").or_insert_with(|| 0.into());
        result.entry("cacheScope").or_insert_with(|| "private".into());
    }
}

/// One open `subscriptions/listen`: what it asked for.
struct Listen {
    id: Value,
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: Vec<String>,
}

/// A call whose answer is still to come: its task and where the answer lands.
pub struct Call {
    pub reply: oneshot::Receiver<Value>,
    /// Held for its `Drop`: letting go of the call cancels it.
    pub _running: AbortOnDrop,
}

/// Aborts a task when its owner lets go of it (the client went away, or never
/// came back for a parked call), which cancels the backend request with it.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A call that is waiting for the client's answers.
pub struct Parked {
    pub call: Call,
    /// Input request key → the id the question was asked under.
    pub asked: Vec<(String, Value)>,
    parked: Instant,
}

/// The modern-era state of one session.
pub struct ModernFront {
    pub era: OnceLock<Era>,
    /// The envelope last adopted, so that unchanged ones cost nothing.
    adopted: Mutex<Option<Envelope>>,
    listens: Mutex<Vec<Listen>>,
    /// Requests for the client, each to become a round of `input_required`.
    asked_tx: mpsc::UnboundedSender<Value>,
    pub asked_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    parked: Mutex<HashMap<String, Parked>>,
}

impl Default for ModernFront {
    fn default() -> Self {
        let (asked_tx, asked_rx) = mpsc::unbounded_channel();
        ModernFront {
            era: OnceLock::new(),
            adopted: Mutex::new(None),
            listens: Mutex::default(),
            asked_tx,
            asked_rx: tokio::sync::Mutex::new(asked_rx),
            parked: Mutex::default(),
        }
    }
}

impl ModernFront {
    pub fn is_modern(&self) -> bool {
        self.era.get() == Some(&Era::Modern)
    }

    /// True when `envelope` differs from the one last adopted (and records it).
    pub fn adopt(&self, envelope: &Envelope) -> bool {
        let mut adopted = lock(&self.adopted);
        if adopted.as_ref() == Some(envelope) {
            return false;
        }
        *adopted = Some(envelope.clone());
        true
    }

    /// What goes out to a modern client in place of one message from the
    /// gateway: list changes and resource updates only on the listen streams
    /// that asked for them, stamped with their subscription id; requests for the
    /// client held for an `input_required` round; the rest unchanged.
    pub fn outgoing(&self, message: Value) -> Vec<Value> {
        let wants: fn(&Listen, &str) -> bool = match (jsonrpc::kind(&message), jsonrpc::method(&message)) {
            (Kind::Request, _) => {
                let _ = self.asked_tx.send(message);
                return Vec::new();
            }
            (Kind::Notification, "notifications/tools/list_changed") => |l, _| l.tools,
            (Kind::Notification, "notifications/prompts/list_changed") => |l, _| l.prompts,
            (Kind::Notification, "notifications/resources/list_changed") => |l, _| l.resources,
            (Kind::Notification, "notifications/resources/updated") => |l, uri| l.uris.iter().any(|u| u == uri),
            _ => return vec![message],
        };
        let uri = jsonrpc::params(&message).get("uri").and_then(Value::as_str).unwrap_or_default().to_string();
        lock(&self.listens)
            .iter()
            .filter(|listen| wants(listen, &uri))
            .map(|listen| {
                let mut stamped = message.clone();
                stamped["params"]["_meta"][SUBSCRIPTION_ID_KEY] = listen.id.clone();
                stamped
            })
            .collect()
    }

    /// Opens a listen stream; returns its acknowledgement.
    pub fn listen(&self, id: &Value, params: &Value, honored_uris: Vec<String>) -> Value {
        let wanted = params.get("notifications").cloned().unwrap_or(Value::Null);
        let flag = |name: &str| wanted.get(name).and_then(Value::as_bool).unwrap_or(false);
        let listen = Listen {
            id: id.clone(),
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            uris: honored_uris,
        };
        let mut honored = json!({});
        for (name, on) in [
            ("toolsListChanged", listen.tools),
            ("promptsListChanged", listen.prompts),
            ("resourcesListChanged", listen.resources),
        ] {
            if on {
                honored[name] = true.into();
            }
        }
        if wanted.get("resourceSubscriptions").is_some() {
            honored["resourceSubscriptions"] = json!(listen.uris);
        }
        lock(&self.listens).push(listen);
        jsonrpc::notification(
            "notifications/subscriptions/acknowledged",
            json!({ "notifications": honored, "_meta": { SUBSCRIPTION_ID_KEY: id } }),
        )
    }

    /// Closes a listen stream; returns the resources it had subscribed.
    pub fn unlisten(&self, id: &Value) -> Vec<String> {
        let mut listens = lock(&self.listens);
        let mut uris = Vec::new();
        listens.retain(|l| {
            if &l.id == id {
                uris.extend(l.uris.iter().cloned());
                false
            } else {
                true
            }
        });
        uris
    }

    /// Parks a call under `state` until the client comes back with answers.
    pub fn park(&self, state: String, call: Call, asked: Vec<(String, Value)>) {
        let mut parked = lock(&self.parked);
        parked.retain(|_, p| p.parked.elapsed() < PARK_TIMEOUT);
        parked.insert(state, Parked { call, asked, parked: Instant::now() });
    }

    pub fn unpark(&self, state: &str) -> Option<Parked> {
        lock(&self.parked).remove(state).filter(|p| p.parked.elapsed() < PARK_TIMEOUT)
    }
}

/// A listen stream's hold on its registration: dropped when the client cancels
/// the listen or goes away, and then its resource subscriptions are let go.
struct Unlisten {
    session: Arc<Session>,
    id: Value,
}

impl Drop for Unlisten {
    fn drop(&mut self) {
        let uris = self.session.modern.unlisten(&self.id);
        if uris.is_empty() {
            return;
        }
        let session = self.session.clone();
        tokio::spawn(
            async move {
                for uri in uris {
                    let _ = session.gateway.unsubscribe(&session.info, &uri).await;
                }
            }
            .in_current_span(),
        );
    }
}

impl Session {
    /// A request on a modern connection: its envelope checked and adopted,
    /// then served as the handshake era would, with modern results.
    pub(super) async fn on_modern_request(self: &Arc<Self>, id: Value, message: Value) -> Value {
        let method = jsonrpc::method(&message).to_string();
        let mut params = jsonrpc::params(&message).clone();
        if method == "initialize" {
            let requested = params.get("protocolVersion").cloned().unwrap_or(Value::Null);
            return jsonrpc::error_with_data(
                id,
                UNSUPPORTED_VERSION,
                "this connection speaks MCP 2026-07-28 (its first request carried an envelope); \
                 `initialize` belongs to the handshake era",
                json!({ "supported": MODERN_VERSIONS, "requested": requested }),
            );
        }
        let envelope = match envelope(&id, &params, &crate::era::all_versions()) {
            Ok(envelope) => envelope,
            Err(error) => return error,
        };
        self.adopt_envelope(&envelope);
        if crate::era::REMOVED_METHODS.contains(&method.as_str()) {
            let message = format!("Method not found: {method} (MCP {} removed it)", envelope.version);
            return jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, message);
        }
        let mut reply = match method.as_str() {
            "server/discover" => jsonrpc::result(id, self.discover()),
            "subscriptions/listen" => return self.listen(id, params).await,
            "tools/call" | "prompts/get" | "resources/read" => self.call_in_rounds(id, &method, params).await,
            _ => {
                strip_envelope(&mut params);
                self.on_handshake_request(id.clone(), jsonrpc::request(id, &method, params)).await.into_value()
            }
        };
        decorate(&method, &mut reply);
        reply
    }

    /// Takes a new envelope's capabilities, client info and log level as the
    /// session's own (what server requests and log routing go by).
    fn adopt_envelope(&self, envelope: &Envelope) {
        if !self.modern.adopt(envelope) {
            return;
        }
        self.gateway.set_client_info(
            self.info.id,
            envelope.client_name.clone(),
            &envelope.version,
            envelope.capabilities.clone(),
        );
        if let Some(level) = envelope.log_level.as_deref().and_then(|l| l.parse::<LogLevel>().ok()) {
            self.gateway.set_log_level(self.info.id, level);
        }
    }

    /// `server/discover`: what `initialize` would say, as the modern era says it.
    fn discover(&self) -> Value {
        let description = self.server_description();
        let mut result = json!({
            "resultType": "complete",
            "supportedVersions": crate::era::all_versions(),
            "capabilities": description["capabilities"],
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": { SERVER_INFO_KEY: description["serverInfo"] },
        });
        if let Some(instructions) = description.get("instructions") {
            result["instructions"] = instructions.clone();
        }
        result
    }

    /// `subscriptions/listen`: acknowledged at once, then open (its notifications
    /// go out through [`ModernFront::outgoing`]) until the client cancels it.
    async fn listen(self: &Arc<Self>, id: Value, params: Value) -> Value {
        let uris: Vec<String> = params
            .pointer("/notifications/resourceSubscriptions")
            .and_then(Value::as_array)
            .map(|uris| uris.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let mut honored = Vec::new();
        for uri in uris {
            match self.gateway.subscribe(&self.info, &uri).await {
                Ok(()) => honored.push(uri),
                Err(error) => debug!(uri, ?error, "a listen stream's resource subscription was not honored"),
            }
        }
        let acknowledged = self.modern.listen(&id, &params, honored);
        let _registration = Unlisten { session: self.clone(), id };
        self.send(acknowledged);
        std::future::pending().await
    }

    /// A call that may need the client's input: run on a task of its own, so
    /// that when the backend asks the client something the call can be parked
    /// and answered `input_required`; the retry carrying `requestState` hands
    /// over the answers and waits on.
    async fn call_in_rounds(self: &Arc<Self>, id: Value, method: &str, mut params: Value) -> Value {
        if let Some(state) = params
            .get("requestState")
            .and_then(Value::as_str)
            .filter(|s| s.starts_with(jsonrpc::ids::REQUEST_STATE_PREFIX))
        {
            let Some(parked) = self.modern.unpark(state) else {
                return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "Invalid or expired requestState");
            };
            let answers = params.get("inputResponses").cloned().unwrap_or(Value::Null);
            for (key, asked) in parked.asked {
                let answer = match answers.get(&key) {
                    Some(result) => jsonrpc::result(asked, result.clone()),
                    None => jsonrpc::error(
                        asked,
                        jsonrpc::INVALID_PARAMS,
                        format!("the client's retry carried no answer for `{key}`"),
                    ),
                };
                let _ = self.on_other(&answer);
            }
            return self.await_round(id, parked.call).await;
        }
        strip_envelope(&mut params);
        let (tx, reply) = oneshot::channel();
        let session = self.clone();
        let request = jsonrpc::request(id.clone(), method, params);
        let task = tokio::spawn(
            async move {
                let _ = tx.send(session.on_handshake_request(request["id"].clone(), request).await.into_value());
            }
            .in_current_span(),
        );
        self.await_round(id, Call { reply, _running: AbortOnDrop(task) }).await
    }

    /// Waits for a call's answer, or for what the backend asks the client in
    /// the meantime: then the call is parked and the client is asked.
    async fn await_round(self: &Arc<Self>, id: Value, mut call: Call) -> Value {
        let mut asked = self.modern.asked_rx.lock().await;
        let first = tokio::select! {
            biased;
            reply = &mut call.reply => {
                return match reply {
                    Ok(mut reply) => {
                        reply["id"] = id;
                        reply
                    }
                    Err(_) => jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, "the call ended without an answer"),
                };
            }
            request = asked.recv() => request,
        };
        let Some(first) = first else {
            return jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, "the session is closing");
        };
        let mut requests = vec![first];
        while let Ok(more) = asked.try_recv() {
            requests.push(more);
        }
        drop(asked);
        if let Some(refusal) = self.refuse_uncapable(&id, &requests) {
            return refusal; // dropping `call` cancels it at the backend
        }
        let mut input_requests = serde_json::Map::new();
        let mut pending = Vec::new();
        for (n, request) in requests.into_iter().enumerate() {
            let key = format!("input-{}", n + 1);
            let ask = json!({ "method": jsonrpc::method(&request), "params": jsonrpc::params(&request) });
            input_requests.insert(key.clone(), ask);
            pending.push((key, request.get("id").cloned().unwrap_or(Value::Null)));
        }
        let state =
            format!("{}{}", jsonrpc::ids::REQUEST_STATE_PREFIX, self.gateway.unguessable_id("request-state", 32));
        self.modern.park(state.clone(), call, pending);
        jsonrpc::result(
            id,
            json!({ "resultType": "input_required", "inputRequests": input_requests, "requestState": state }),
        )
    }
}

impl Session {
    /// When the client's latest envelope lacks a capability one of the
    /// backend's questions needs, the call cannot go on: the backend's
    /// questions are refused and the client gets -32021 naming what to
    /// declare, as a modern server would answer it.
    fn refuse_uncapable(&self, id: &Value, requests: &[Value]) -> Option<Value> {
        let capabilities = self.gateway.session(self.info.id).map(|s| s.capabilities).unwrap_or_default();
        let missing = requests
            .iter()
            .find_map(|r| crate::gateway::missing_capability(&capabilities, jsonrpc::method(r), jsonrpc::params(r)))?;
        for request in requests {
            let asked = request.get("id").cloned().unwrap_or(Value::Null);
            let refusal = jsonrpc::error(
                asked,
                jsonrpc::MISSING_CAPABILITY,
                format!("the client did not declare {missing} support"),
            );
            let _ = self.on_other(&refusal);
        }
        let mut error = jsonrpc::error(
            id.clone(),
            jsonrpc::MISSING_CAPABILITY,
            format!("this call needs the client capability {missing}, which the request's envelope does not declare"),
        );
        error["error"]["data"] = json!({ "requiredCapabilities": crate::gateway::required_capabilities(&missing) });
        Some(error)
    }
}

/// The methods whose answer may be `input_required`.
pub fn may_need_input(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// The retry of a call after one round of `input_required`: the answers as
/// `inputResponses`, and the round's `requestState` exactly as the server sent
/// it, or none at all when it sent none (SEP-2322: a client must not invent
/// one, and `null` is one; nor carry an earlier round's over).
fn answer_round(params: &mut Value, answers: serde_json::Map<String, Value>, result: &Value) {
    if !params.is_object() {
        *params = json!({});
    }
    let Some(params) = params.as_object_mut() else { return };
    params.insert("inputResponses".into(), Value::Object(answers));
    match result.get("requestState") {
        Some(state) if !state.is_null() => params.insert("requestState".into(), state.clone()),
        _ => params.remove("requestState"),
    };
}

/// The error code for a resource no server has, in a session of this era:
/// the handshake era's -32002, or -32602 in the modern era (SEP-2164).
pub(super) fn resource_not_found_code(modern: bool) -> i64 {
    if modern { jsonrpc::INVALID_PARAMS } else { jsonrpc::RESOURCE_NOT_FOUND }
}

/// Says a handshake-era server's error the modern way, for a modern client
/// (a resource not found is -32602, whoever answered).
pub(super) fn modernize_error(response: &mut Value) {
    if let Some(code) = response.pointer_mut("/error/code")
        && code.as_i64() == Some(jsonrpc::RESOURCE_NOT_FOUND)
    {
        *code = Value::from(jsonrpc::INVALID_PARAMS);
    }
}

/// What a client can be asked inside a round (SEP-2322).
const ROUND_METHODS: [&str; 3] = ["sampling/createMessage", "elicitation/create", "roots/list"];

/// The questions of an `input_required` result as (key, method, params), or
/// why it is no round a client can answer: a question that is not one of
/// [`ROUND_METHODS`], or a round with neither questions nor a request state
/// (retrying it could only get the same answer again).
fn questions_of(result: &Value) -> Result<Vec<(String, String, Value)>, String> {
    let questions = match result.get("inputRequests") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(questions)) => questions.clone(),
        Some(other) => return Err(format!("its inputRequests is not an object but {}", kind_of(other))),
    };
    let state = result.get("requestState").is_some_and(|s| !s.is_null());
    if questions.is_empty() && !state {
        return Err("it answered input_required with neither inputRequests nor a requestState".into());
    }
    questions
        .into_iter()
        .map(|(key, question)| {
            let method = question.get("method").and_then(Value::as_str).unwrap_or_default();
            if !ROUND_METHODS.contains(&method) {
                return Err(format!(
                    "its input request `{key}` asks `{method}`, which is not something a client is asked"
                ));
            }
            Ok((key, method.to_string(), jsonrpc::params(&question).clone()))
        })
        .collect()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rounds of questions a call may take before the gateway gives up on it.
const MAX_ROUNDS: usize = 16;

impl Session {
    /// A modern server answered a handshake-era client's call `input_required`:
    /// the gateway asks the client each question as a real request (roots it
    /// answers itself: the session's workspace), and retries with the answers,
    /// until the call completes.
    pub(super) async fn run_input_rounds(
        &self,
        server: &str,
        method: &str,
        mut params: Value,
        mut response: Value,
    ) -> Result<Value, crate::backend::BackendError> {
        for _ in 0..MAX_ROUNDS {
            let Some(result) = response.get("result").filter(|r| r["resultType"] == "input_required") else {
                return Ok(response);
            };
            let questions = match questions_of(result) {
                Ok(questions) => questions,
                Err(why) => {
                    warn!(server, "a malformed input_required result: {why}");
                    return Ok(jsonrpc::error(
                        Value::Null,
                        jsonrpc::INTERNAL_ERROR,
                        format!("server `{server}` sent a malformed input_required result: {why}"),
                    ));
                }
            };
            let mut answers = serde_json::Map::new();
            for (key, asked, question) in questions {
                let answer = match asked.as_str() {
                    "roots/list" => Some(json!({ "roots": [{
                        "uri": format!("file://{}", self.info.workspace.display()),
                        "name": self.info.workspace.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    }] })),
                    _ => self.ask_client(&asked, question).await,
                };
                let Some(answer) = answer else {
                    return Ok(jsonrpc::error(
                        Value::Null,
                        jsonrpc::INTERNAL_ERROR,
                        format!("server `{server}` needed the client to answer `{asked}`, and it did not"),
                    ));
                };
                answers.insert(key, answer);
            }
            answer_round(&mut params, answers, result);
            response = self.gateway.forward(server, method, params.clone(), &self.info).await?;
        }
        Ok(jsonrpc::error(
            Value::Null,
            jsonrpc::INTERNAL_ERROR,
            format!("server `{server}` kept asking for input after {MAX_ROUNDS} rounds; the call was given up"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enveloped(caps: Value) -> Value {
        json!({"_meta": {VERSION_KEY: "2026-07-28", CAPABILITIES_KEY: caps, CLIENT_INFO_KEY: {"name": "c", "version": "1"}}})
    }

    #[test]
    fn resource_not_found_is_said_in_the_clients_era() {
        let mut response = json!({"id": 1, "error": {"code": -32002, "message": "no", "data": {"uri": "x:/"}}});
        modernize_error(&mut response);
        assert_eq!(response["error"], json!({"code": -32602, "message": "no", "data": {"uri": "x:/"}}));
        let mut other = json!({"id": 1, "error": {"code": -32601, "message": "no"}});
        modernize_error(&mut other);
        assert_eq!(other["error"]["code"], -32601);
        assert_eq!(resource_not_found_code(false), -32002);
        assert_eq!(resource_not_found_code(true), -32602);
    }

    #[test]
    fn a_round_must_ask_something_a_client_answers() {
        let asked =
            questions_of(&json!({"inputRequests": {"a": {"method": "elicitation/create", "params": {"x": 1}}}}));
        assert_eq!(asked.unwrap(), vec![("a".to_string(), "elicitation/create".to_string(), json!({"x": 1}))]);
        assert!(questions_of(&json!({"requestState": "s"})).unwrap().is_empty(), "a state alone is a round");
        let empty = questions_of(&json!({"resultType": "input_required"})).unwrap_err();
        assert!(empty.contains("neither inputRequests nor a requestState"), "{empty}");
        let empty = questions_of(&json!({"inputRequests": {}, "requestState": null})).unwrap_err();
        assert!(empty.contains("neither"), "{empty}");
        let odd = questions_of(&json!({"inputRequests": {"q": {"method": "tools/list"}}})).unwrap_err();
        assert!(odd.contains("`q` asks `tools/list`"), "{odd}");
        let shape = questions_of(&json!({"inputRequests": ["x"]})).unwrap_err();
        assert!(shape.contains("not an object but an array"), "{shape}");
    }

    #[test]
    fn envelopes_are_read_and_checked() {
        let id = json!(1);
        let read = envelope(&id, &enveloped(json!({"sampling": {}})), MODERN_VERSIONS).unwrap();
        assert_eq!(read.client_name.as_deref(), Some("c"));
        assert_eq!(read.capabilities, json!({"sampling": {}}));
        let old = json!({"_meta": {VERSION_KEY: "2025-11-25", CAPABILITIES_KEY: {}}});
        let error = envelope(&id, &old, &["2026-07-28", "2025-11-25"]).unwrap_err();
        assert_eq!(error["error"]["code"], UNSUPPORTED_VERSION);
        assert_eq!(error["error"]["data"]["requested"], "2025-11-25");
        let no_caps = json!({"_meta": {VERSION_KEY: "2026-07-28"}});
        assert_eq!(envelope(&id, &no_caps, MODERN_VERSIONS).unwrap_err()["error"]["code"], jsonrpc::INVALID_PARAMS);
        let mut params = enveloped(json!({}));
        params["_meta"]["progressToken"] = json!(5);
        strip_envelope(&mut params);
        assert_eq!(params, json!({"_meta": {"progressToken": 5}}));
    }

    #[test]
    fn a_retry_echoes_the_request_state_as_sent_and_none_when_none_was_sent() {
        let state = r#"{"nonce":"a b","originalId":7}"#;
        let mut params = json!({"name": "t", "arguments": {}});
        let mut answers = serde_json::Map::new();
        answers.insert("confirm".into(), json!({"action": "accept", "content": {"confirmed": true}}));
        answer_round(&mut params, answers.clone(), &json!({"resultType": "input_required", "requestState": state}));
        assert_eq!(params["requestState"].as_str(), Some(state), "byte for byte");
        assert_eq!(params["inputResponses"]["confirm"]["action"], "accept");
        // The next round sends no state: the earlier one must not linger, nor become null.
        answer_round(&mut params, answers, &json!({"resultType": "input_required"}));
        assert!(params.get("requestState").is_none(), "{params}");
        assert_eq!(params["name"], "t");
    }

    #[test]
    fn list_changes_go_only_to_listeners_that_asked_stamped_with_their_id() {
        let front = ModernFront::default();
        let ack = front.listen(&json!("l1"), &json!({"notifications": {"toolsListChanged": true}}), Vec::new());
        assert_eq!(ack["params"]["notifications"], json!({"toolsListChanged": true}));
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID_KEY], "l1");
        front.listen(&json!(2), &json!({"notifications": {"promptsListChanged": true}}), Vec::new());
        let out = front.outgoing(jsonrpc::notification("notifications/tools/list_changed", Value::Null));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["params"]["_meta"][SUBSCRIPTION_ID_KEY], "l1");
        front.unlisten(&json!("l1"));
        assert!(front.outgoing(jsonrpc::notification("notifications/tools/list_changed", Value::Null)).is_empty());
        let progress = jsonrpc::notification("notifications/progress", json!({"progressToken": 1, "progress": 1}));
        assert_eq!(front.outgoing(progress.clone()), vec![progress]);
    }
}
