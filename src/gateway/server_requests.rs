//! Requests a backend sends to a client (`sampling/createMessage`,
//! `elicitation/create`, `roots/list`), routed to the one session that caused
//! them, under an id of the gateway's own, and their answers routed back.
//!
//! On stdio there is no per-request channel, so the cause is inferred: the
//! session whose call holds the instance for asking (see `asking`), else the
//! only session with calls in flight on that backend. When that is ambiguous
//! (the first time a tool is seen to ask, with another session's call in
//! flight) the gateway does not guess: it answers `roots/list` itself, refuses
//! sampling and elicitation with an error that says why, and learns the tool.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::{Gateway, SessionInfo, lock};
use crate::backend::Backend;
use crate::catalog::Catalog;
use crate::jsonrpc;
use crate::sink::SessionId;

/// One backend request waiting for a client's answer.
struct Relayed {
    session: SessionId,
    backend: Weak<Backend>,
    backend_id: Value,
}

#[derive(Default)]
pub(super) struct ServerRequests {
    next: AtomicU64,
    /// Session-side id (as JSON text) → the request it stands for.
    pending: Mutex<HashMap<String, Relayed>>,
    /// URL-mode elicitation id → the session that was asked.
    elicitations: Mutex<HashMap<String, SessionId>>,
}

impl ServerRequests {
    /// Requests waiting for an answer, and URL elicitations not complete.
    pub(super) fn len(&self) -> usize {
        lock(&self.pending).len() + lock(&self.elicitations).len()
    }

    /// Relays a backend's request to `session`: returns the id the session sees
    /// (the gateway's own, so two backends' id 0 cannot meet in one session).
    fn open(&self, session: SessionId, backend: Weak<Backend>, backend_id: Value, elicitation: Option<&str>) -> Value {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let session_id = Value::String(format!("{}{n}", jsonrpc::ids::SERVER_REQUEST_PREFIX));
        if let Some(elicitation) = elicitation {
            lock(&self.elicitations).insert(elicitation.to_string(), session);
        }
        lock(&self.pending).insert(session_id.to_string(), Relayed { session, backend, backend_id });
        session_id
    }

    /// The request a client's answer closes, if `session` was the one asked.
    fn answered(&self, session: SessionId, id: &Value) -> Option<Relayed> {
        let key = id.to_string();
        let mut pending = lock(&self.pending);
        match pending.get(&key) {
            Some(p) if p.session == session => pending.remove(&key),
            _ => None,
        }
    }

    /// The backend withdrew its request `backend_id`: the session-side id and session it went to.
    fn withdrawn(&self, backend: &Weak<Backend>, backend_id: &Value) -> Option<(Value, SessionId)> {
        let mut pending = lock(&self.pending);
        let key = pending
            .iter()
            .find(|(_, p)| &p.backend_id == backend_id && Weak::ptr_eq(&p.backend, backend))
            .map(|(k, _)| k.clone())?;
        let p = pending.remove(&key)?;
        Some((serde_json::from_str(&key).unwrap_or(Value::Null), p.session))
    }

    /// The session asked in URL elicitation `id`, which is complete now.
    fn elicitation_complete(&self, id: &str) -> Option<SessionId> {
        lock(&self.elicitations).remove(id)
    }

    /// A session left: the requests it was asked, to be answered with an error.
    fn close_session(&self, session: SessionId) -> Vec<Relayed> {
        lock(&self.elicitations).retain(|_, s| *s != session);
        let mut pending = lock(&self.pending);
        let keys: Vec<String> = pending.iter().filter(|(_, p)| p.session == session).map(|(k, _)| k.clone()).collect();
        keys.iter().filter_map(|k| pending.remove(k)).collect()
    }

    /// A backend exited: its open requests (session-side id, session), to be cancelled.
    fn close_backend(&self, backend: &Weak<Backend>) -> Vec<(Value, SessionId)> {
        let mut pending = lock(&self.pending);
        let keys: Vec<String> =
            pending.iter().filter(|(_, p)| Weak::ptr_eq(&p.backend, backend)).map(|(k, _)| k.clone()).collect();
        keys.into_iter()
            .filter_map(|k| {
                let p = pending.remove(&k)?;
                Some((serde_json::from_str(&k).unwrap_or(Value::Null), p.session))
            })
            .collect()
    }

    fn waiting_on(&self, backend: &Backend) -> bool {
        lock(&self.pending).values().any(|p| std::ptr::eq(p.backend.as_ptr(), backend))
    }
}

/// Who caused a server request, by the rules of the module doc, before the
/// session is looked up.
#[derive(Debug, PartialEq, Eq)]
enum Cause<'a> {
    /// The session of the request whose stream carried it (HTTP): exact.
    Origin(SessionId),
    /// The owner of the task it names.
    Task(&'a str),
    /// The one session with calls in flight on the backend.
    SoleCaller(SessionId),
}

fn attribute<'a>(
    origin: Option<SessionId>,
    params: &'a Value,
    in_flight: &HashSet<SessionId>,
    server: &str,
) -> Result<Cause<'a>, String> {
    if let Some(origin) = origin {
        return Ok(Cause::Origin(origin));
    }
    if let Some(task) = super::tasks::related_task(params) {
        return Ok(Cause::Task(task));
    }
    let mut sessions = in_flight.iter();
    match (sessions.next(), sessions.next()) {
        (Some(id), None) => Ok(Cause::SoleCaller(*id)),
        (None, _) => Err(format!("no client has a call in flight on server `{server}`, so there is no one to ask")),
        (Some(_), Some(_)) => Err(format!(
            "{} clients have calls in flight on server `{server}`, so mcp-gateway cannot tell which one this request \
             belongs to; it has now learnt which tool asks, and runs calls of it from different clients on separate \
             instances: call it again (`serialize: true` on this server makes every call wait its turn instead)",
            in_flight.len(),
        )),
    }
}

/// The client capabilities (as declared in `initialize` or an envelope) that
/// a missing capability named by [`missing_capability`] stands for.
pub(crate) fn required_capabilities(missing: &str) -> Value {
    match missing {
        "sampling with tools" => json!({ "sampling": { "tools": {} } }),
        "elicitation" | "form-mode elicitation" => json!({ "elicitation": { "form": {} } }),
        "URL-mode elicitation" => json!({ "elicitation": { "url": {} } }),
        _ => json!({ "sampling": {} }),
    }
}

/// What a server→client request asks the client for, as recorded with the
/// tool that asked it (see [`ServerListing::asks_for`](crate::catalog::ServerListing)).
fn ask_kind(method: &str, params: &Value) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" if params.get("mode").and_then(Value::as_str) == Some("url") => Some("url-elicitation"),
        "elicitation/create" => Some("elicitation"),
        _ => None,
    }
}

/// Why a session cannot answer what a tool was seen to ask for (a kind
/// [`ask_kind`] names), if it cannot.
pub(crate) fn missing_for_kind(capabilities: &Value, kind: &str) -> Option<String> {
    let (method, params) = match kind {
        "sampling" => ("sampling/createMessage", json!({})),
        "url-elicitation" => ("elicitation/create", json!({"mode": "url"})),
        "elicitation" => ("elicitation/create", json!({})),
        _ => return None,
    };
    missing_capability(capabilities, method, &params)
}

/// Why a session cannot take a server→client request, if it cannot.
pub(crate) fn missing_capability(capabilities: &Value, method: &str, params: &Value) -> Option<String> {
    let declared = |path: &str| capabilities.pointer(path).is_some();
    match method {
        "sampling/createMessage" if !declared("/sampling") => Some("sampling".into()),
        "sampling/createMessage" if params.get("tools").is_some() && !declared("/sampling/tools") => {
            Some("sampling with tools".into())
        }
        "elicitation/create" => match capabilities.get("elicitation") {
            None => Some("elicitation".into()),
            Some(elicitation) => {
                let url_mode = params.get("mode").and_then(Value::as_str) == Some("url");
                // `elicitation: {}` is form mode only (2025-11-25).
                let form = elicitation.as_object().is_some_and(|o| o.is_empty() || o.contains_key("form"));
                let url = elicitation.get("url").is_some();
                match (url_mode, form, url) {
                    (true, _, false) => Some("URL-mode elicitation".into()),
                    (false, false, _) => Some("form-mode elicitation".into()),
                    _ => None,
                }
            }
        },
        _ => None,
    }
}

/// What a model is told when it calls a tool its client cannot answer the
/// questions of (see [`Gateway::unanswerable`]).
pub(crate) fn unanswerable_message(name: &str, missing: &str) -> String {
    format!(
        "`{name}` asks the client for {missing} while it runs, and this client did not declare {missing} support \
         in `initialize`, so it cannot run here; use a client that supports {missing}"
    )
}

impl Gateway {
    /// What `session` cannot answer of what the tool exposed as `name` in
    /// `catalog` was seen to ask for: such a tool is neither listed to it nor
    /// run for it. `None` too for a modern session, which is asked inside the
    /// call's answer and declares what it supports on each request.
    pub fn unanswerable(&self, session: SessionId, catalog: &Catalog, name: &str) -> Option<String> {
        let kinds = catalog.asks_for(name)?;
        let me = self.session(session)?;
        let modern = me.protocol_version.as_deref().is_some_and(|v| crate::era::MODERN_VERSIONS.contains(&v));
        if modern {
            return None;
        }
        kinds.iter().find_map(|kind| missing_for_kind(&me.capabilities, kind))
    }

    /// Routes a request from a backend to the session that caused it.
    pub(super) fn route_server_request(&self, backend: &Arc<Backend>, message: Value, origin: Option<SessionId>) {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = jsonrpc::method(&message).to_string();
        let params = jsonrpc::params(&message).clone();
        let refuse = |code: i64, reason: String| {
            info!(server = %backend.server, method, "refused a server request: {reason}");
            backend.send(&jsonrpc::error(id.clone(), code, reason));
        };
        match method.as_str() {
            "sampling/createMessage" | "elicitation/create" => {}
            "roots/list" => {
                // A per-workspace instance gets its workspace. Other shared backends
                // are never offered roots (one terminal's roots would replace the
                // server's own directories); if one asks anyway, it has none.
                let roots = match backend.key.workspace_root() {
                    Some(root) => vec![json!({
                        "uri": format!("file://{}", root.display()),
                        "name": root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    })],
                    None => Vec::new(),
                };
                backend.send(&jsonrpc::result(id, json!({ "roots": roots })));
                return;
            }
            other => {
                return refuse(jsonrpc::METHOD_NOT_FOUND, format!("mcp-gateway does not relay `{other}` to clients"));
            }
        }
        let session = match self.cause_of(backend, &params, origin) {
            Ok(session) => session,
            Err(reason) => {
                // Whichever of them it was, its tool asks: from now on such
                // calls get an instance of their own, and this cannot recur.
                // A session that could not take the request is no suspect.
                let in_flight = backend.sessions_in_flight();
                let able = |id: &SessionId| {
                    self.session(*id).is_some_and(|s| missing_capability(&s.capabilities, &method, &params).is_none())
                };
                let mut suspects: Vec<SessionId> = in_flight.iter().copied().filter(able).collect();
                if suspects.is_empty() {
                    suspects.extend(in_flight);
                }
                self.learn_asking(backend, suspects);
                return refuse(jsonrpc::INVALID_REQUEST, reason);
            }
        };
        if origin.is_none() {
            self.learn_asking(backend, [session.id]);
        }
        // The one call this session has here asked it: what it asks for is
        // known for certain (a task's question is the task's, not a call's).
        let for_task = super::tasks::related_task(&params).is_some();
        if let (Some(kind), false) = (ask_kind(&method, &params), for_task)
            && let Some(tool) = backend.sole_tool_of(session.id)
        {
            self.remember_ask_kind(&backend.server, &backend.config, &tool, kind);
        }
        // A modern client is told with -32021 on its own call (see
        // `ModernSession::await_round`); a handshake client's backend is refused here.
        let modern = session.protocol_version.as_deref().is_some_and(|v| crate::era::MODERN_VERSIONS.contains(&v));
        if let Some(missing) = missing_capability(&session.capabilities, &method, &params).filter(|_| !modern) {
            return refuse(
                jsonrpc::INVALID_REQUEST,
                format!("the client that made this call (session {}) did not declare {missing} support", session.id),
            );
        }
        let elicitation =
            params.get("elicitationId").and_then(Value::as_str).filter(|_| method == "elicitation/create");
        let session_id = self.server_requests.open(session.id, Arc::downgrade(backend), id, elicitation);
        let mut forwarded = message;
        forwarded["id"] = session_id;
        debug!(server = %backend.server, session = session.id, method, "relayed a server request");
        session.sink.send(forwarded);
    }

    /// The session a server request belongs to: the session of the request whose
    /// stream carried it (HTTP), else the owner of the task it names, else the one
    /// session whose calls are in flight on `backend`.
    fn cause_of(&self, backend: &Backend, params: &Value, origin: Option<SessionId>) -> Result<SessionInfo, String> {
        let disconnected = || "the client that made this call has disconnected".to_string();
        // A call holding the instance for asking is the one possible cause (see `asking`).
        let origin = origin.or_else(|| backend.sole_asker());
        match attribute(origin, params, &backend.sessions_in_flight(), &backend.server)? {
            Cause::Origin(id) | Cause::SoleCaller(id) => self.session(id).ok_or_else(disconnected),
            Cause::Task(task) => self
                .task_owner(task)
                .and_then(|owner| self.session(owner))
                .ok_or_else(|| format!("the client that owns task `{task}` is not connected")),
        }
    }

    /// Whether a request of this backend is waiting for a client's answer.
    pub(super) fn has_server_requests(&self, backend: &Backend) -> bool {
        self.server_requests.waiting_on(backend)
    }

    /// A client's answer to a request the gateway relayed: back to the backend
    /// under the backend's own id.
    pub fn on_client_response(&self, session: SessionId, message: Value) {
        let pending = self.server_requests.answered(session, message.get("id").unwrap_or(&Value::Null));
        let Some(pending) = pending else {
            debug!(session, "dropped a client response to no pending request");
            return;
        };
        let Some(backend) = pending.backend.upgrade().filter(|b| b.is_alive()) else { return };
        let mut answer = message;
        answer["id"] = pending.backend_id;
        backend.send(&answer);
    }

    /// The backend cancelled a request it had sent to a client: tell that client.
    pub(super) fn on_backend_cancelled(&self, backend: &Arc<Backend>, params: &Value) {
        let Some(backend_id) = params.get("requestId") else { return };
        let found = self.server_requests.withdrawn(&Arc::downgrade(backend), backend_id);
        let Some((session_id, session)) = found else { return };
        if let Some(session) = self.session(session) {
            let mut params = params.clone();
            params["requestId"] = session_id;
            session.sink.send(jsonrpc::notification("notifications/cancelled", params));
        }
    }

    /// `notifications/elicitation/complete` goes to the session that got that elicitation.
    pub(super) fn route_elicitation_complete(&self, backend: &Arc<Backend>, message: Value) {
        let id = jsonrpc::params(&message).get("elicitationId").and_then(Value::as_str).unwrap_or_default();
        let session = self.server_requests.elicitation_complete(id);
        match session.and_then(|s| self.session(s)) {
            Some(session) => {
                session.sink.send(message);
            }
            None => debug!(server = %backend.server, "dropped an elicitation/complete for no known session"),
        }
    }

    /// A session left: the backends that asked it something get an error answer.
    pub(super) fn drop_server_requests_of_session(&self, session: SessionId) {
        let dropped = self.server_requests.close_session(session);
        for p in dropped {
            if let Some(backend) = p.backend.upgrade() {
                warn!(server = %backend.server, session, "the client disconnected before answering a server request");
                backend.send(&jsonrpc::error(
                    p.backend_id,
                    jsonrpc::INTERNAL_ERROR,
                    "the client this request was relayed to disconnected before answering",
                ));
            }
        }
    }

    /// A backend exited: its open requests to clients are withdrawn.
    pub(super) fn drop_server_requests_of_backend(&self, backend: &Arc<Backend>) {
        let dropped = self.server_requests.close_backend(&Arc::downgrade(backend));
        for (session_id, session) in dropped {
            if let Some(session) = self.session(session) {
                let params = json!({
                    "requestId": session_id,
                    "reason": format!("server `{}` exited", backend.server),
                });
                session.sink.send(jsonrpc::notification("notifications/cancelled", params));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a tool asked for, as recorded, is held against a session's
    /// capabilities the way the request itself would be.
    #[test]
    fn kinds_of_questions_name_the_capability_they_need() {
        assert_eq!(ask_kind("sampling/createMessage", &json!({})), Some("sampling"));
        assert_eq!(ask_kind("elicitation/create", &json!({"mode": "url"})), Some("url-elicitation"));
        assert_eq!(ask_kind("elicitation/create", &json!({})), Some("elicitation"));
        assert_eq!(ask_kind("roots/list", &json!({})), None);
        let none = json!({});
        let form = json!({"elicitation": {}});
        let both = json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}});
        assert_eq!(missing_for_kind(&none, "sampling").as_deref(), Some("sampling"));
        assert_eq!(missing_for_kind(&form, "elicitation"), None);
        assert_eq!(missing_for_kind(&form, "url-elicitation").as_deref(), Some("URL-mode elicitation"));
        for kind in ["sampling", "elicitation", "url-elicitation"] {
            assert_eq!(missing_for_kind(&both, kind), None, "{kind}");
        }
        assert_eq!(missing_for_kind(&none, "something-new"), None, "an unknown kind hides nothing");
    }

    #[test]
    fn a_server_request_is_attributed_to_one_session_or_refused() {
        let none = json!({});
        let one = HashSet::from([7]);
        let two = HashSet::from([7, 8]);
        assert_eq!(attribute(None, &none, &one, "s"), Ok(Cause::SoleCaller(7)));
        let ambiguous = attribute(None, &none, &two, "s").unwrap_err();
        assert!(ambiguous.contains("2 clients") && ambiguous.contains("serialize: true"), "{ambiguous}");
        assert!(attribute(None, &none, &HashSet::new(), "s").unwrap_err().contains("no client"));
        // The stream it came on (HTTP) is exact, whoever else is calling.
        assert_eq!(attribute(Some(8), &none, &two, "s"), Ok(Cause::Origin(8)));
        // A related task names its owner, however many sessions are calling.
        let related = json!({"_meta": {super::super::tasks::RELATED_TASK: {"taskId": "t1"}}});
        assert_eq!(attribute(None, &related, &two, "s"), Ok(Cause::Task("t1")));
    }

    #[test]
    fn only_the_asked_session_answers_and_nothing_outlives_it() {
        let requests = ServerRequests::default();
        let backend = Weak::new();
        let first = requests.open(1, backend.clone(), json!(0), None);
        let second = requests.open(2, backend.clone(), json!(0), Some("e1"));
        assert_ne!(first, second, "the sessions see the gateway's ids, not the backend's");
        assert!(requests.answered(2, &first).is_none(), "session 2 was not asked this");
        assert_eq!(requests.answered(1, &first).map(|p| p.backend_id), Some(json!(0)));
        assert!(requests.answered(1, &first).is_none(), "one answer per request");
        assert_eq!(requests.close_session(2).len(), 1);
        assert_eq!(requests.elicitation_complete("e1"), None, "the session's elicitations went with it");
        assert_eq!(requests.len(), 0);
        let third = requests.open(3, backend.clone(), json!("b"), None);
        assert_eq!(requests.withdrawn(&backend, &json!("b")), Some((third, 3)));
        requests.open(4, backend.clone(), json!(1), None);
        assert_eq!(requests.close_backend(&backend).len(), 1);
        assert_eq!(requests.len(), 0);
    }

    #[test]
    fn capability_checks() {
        let none = json!({});
        let all = json!({"sampling": {"tools": {}}, "elicitation": {"form": {}, "url": {}}});
        let legacy_elicitation = json!({"elicitation": {}});
        let url_only = json!({"elicitation": {"url": {}}});
        let sampling = "sampling/createMessage";
        let elicit = "elicitation/create";
        assert_eq!(missing_capability(&none, sampling, &json!({})).as_deref(), Some("sampling"));
        assert_eq!(missing_capability(&all, sampling, &json!({"tools": []})), None);
        assert_eq!(
            missing_capability(&json!({"sampling": {}}), sampling, &json!({"tools": []})).as_deref(),
            Some("sampling with tools")
        );
        assert_eq!(missing_capability(&none, elicit, &json!({})).as_deref(), Some("elicitation"));
        assert_eq!(missing_capability(&legacy_elicitation, elicit, &json!({})), None);
        assert_eq!(
            missing_capability(&legacy_elicitation, elicit, &json!({"mode": "url"})).as_deref(),
            Some("URL-mode elicitation")
        );
        assert_eq!(missing_capability(&url_only, elicit, &json!({"mode": "url"})), None);
        assert_eq!(missing_capability(&url_only, elicit, &json!({})).as_deref(), Some("form-mode elicitation"));
        assert_eq!(missing_capability(&all, elicit, &json!({"mode": "url"})), None);
    }
}
