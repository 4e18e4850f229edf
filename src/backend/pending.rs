//! The in-flight requests of one backend connection.
//!
//! Every request sent to a backend gets a fresh integer id from this table; the
//! session's own id never reaches the backend, so N sessions that all use id 1
//! cannot see each other's answers. The caller keeps its original id and restores
//! it itself, exactly as sent. A progress token is likewise replaced by a
//! gateway-unique one and routed back to its owner only.
//!
//! Entries are removed when the answer arrives, when the caller gives up (its
//! future is dropped), or when the backend dies: no entry outlives its request.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::oneshot;

use super::{Answer, BackendError};
use crate::jsonrpc;
use crate::sink::{SessionId, SessionSink};

/// The answer a caller waits for: the backend's whole response.
pub type Reply = Result<Answer, BackendError>;

struct PendingCall {
    session: Option<SessionId>,
    reply: oneshot::Sender<Reply>,
    progress_token: Option<String>,
    /// The tool a `tools/call` calls: what the gateway learns from when the
    /// backend asks a client something during the call (`gateway::asking`).
    tool: Option<Box<str>>,
}

struct ProgressRoute {
    sink: SessionSink,
    original: Value,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    calls: HashMap<u64, PendingCall>,
    progress: HashMap<String, ProgressRoute>,
}

/// The id map of one backend connection.
#[derive(Default)]
pub struct PendingTable {
    inner: Mutex<Inner>,
}

impl PendingTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps inconsistent in a
        // way that matters more than losing the daemon, so recover the guard.
        crate::lock(&self.inner)
    }

    /// Registers a request: assigns the backend-side id and rewrites
    /// `params._meta.progressToken` (when the caller is a session) to a
    /// gateway-unique token routed back to `sink`. `tool` is the tool of a
    /// session's `tools/call`.
    pub fn register(
        &self,
        sink: Option<&SessionSink>,
        params: &mut Value,
        tool: Option<Box<str>>,
    ) -> (u64, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let mut progress_token = None;
        if let Some(sink) = sink
            && jsonrpc::progress_token(params).is_some()
        {
            let token = format!("{}{id}", jsonrpc::ids::PROGRESS_TOKEN_PREFIX);
            if let Some(original) = jsonrpc::replace_progress_token(params, Value::String(token.clone())) {
                inner.progress.insert(token.clone(), ProgressRoute { sink: sink.clone(), original });
                progress_token = Some(token);
            }
        }
        let call = PendingCall { session: sink.map(|s| s.id), reply: tx, progress_token, tool };
        inner.calls.insert(id, call);
        (id, rx)
    }

    fn remove(inner: &mut Inner, id: u64) -> Option<PendingCall> {
        let call = inner.calls.remove(&id)?;
        if let Some(token) = &call.progress_token {
            inner.progress.remove(token);
        }
        Some(call)
    }

    /// Delivers a backend response; false when no request has that id.
    pub fn complete(&self, response: Value) -> bool {
        let Some(id) = response.get("id").and_then(Value::as_u64) else { return false };
        self.complete_id(id, Answer::Value(response))
    }

    /// Delivers a response to the request `id`; false when none has that id.
    pub fn complete_id(&self, id: u64, answer: Answer) -> bool {
        let Some(call) = Self::remove(&mut self.lock(), id) else { return false };
        // The caller may have given up in the meantime; then the answer is dropped.
        let _ = call.reply.send(Ok(answer));
        true
    }

    /// Forgets a request whose caller gave up; true when it was still in flight.
    pub fn forget(&self, id: u64) -> bool {
        Self::remove(&mut self.lock(), id).is_some()
    }

    /// Restores the original progress token in a `notifications/progress` params
    /// and returns the session it belongs to.
    pub fn route_progress(&self, params: &mut Value) -> Option<SessionSink> {
        let token = params.get("progressToken")?.as_str()?.to_string();
        let inner = self.lock();
        let route = inner.progress.get(&token)?;
        params["progressToken"] = route.original.clone();
        Some(route.sink.clone())
    }

    /// Fails every request in flight (the backend is gone).
    pub fn fail_all(&self, error: &BackendError) {
        let calls: Vec<PendingCall> = {
            let mut inner = self.lock();
            inner.progress.clear();
            inner.calls.drain().map(|(_, call)| call).collect()
        };
        for call in calls {
            let _ = call.reply.send(Err(error.clone()));
        }
    }

    /// The session of one request in flight.
    pub fn session_of(&self, id: u64) -> Option<SessionId> {
        self.lock().calls.get(&id).and_then(|c| c.session)
    }

    /// Whether a request is still waiting for its answer.
    pub fn is_in_flight(&self, id: u64) -> bool {
        self.lock().calls.contains_key(&id)
    }

    /// The sessions that have requests in flight.
    pub fn sessions_in_flight(&self) -> HashSet<SessionId> {
        self.lock().calls.values().filter_map(|c| c.session).collect()
    }

    /// The tool `session` is calling here, when that call is the only request
    /// it has in flight here: then whatever the server asks that session now
    /// is that call's doing.
    pub fn sole_tool_of(&self, session: SessionId) -> Option<String> {
        let inner = self.lock();
        let mut calls = inner.calls.values().filter(|c| c.session == Some(session));
        match (calls.next(), calls.next()) {
            (Some(call), None) => call.tool.as_deref().map(str::to_string),
            _ => None,
        }
    }

    /// The tools `session` is calling here now.
    pub fn tools_in_flight(&self, session: SessionId) -> Vec<String> {
        let inner = self.lock();
        let calls = inner.calls.values().filter(|c| c.session == Some(session));
        calls.filter_map(|c| c.tool.as_deref().map(str::to_string)).collect()
    }

    /// How many requests are in flight (and how many progress routes exist).
    pub fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.calls.len(), inner.progress.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len().0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Outbound;
    use serde_json::json;
    use tokio::sync::mpsc;

    fn sink(id: SessionId) -> (SessionSink, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SessionSink::new(id, tx), rx)
    }

    #[tokio::test]
    async fn ids_are_unique_and_answers_reach_their_caller() {
        let table = PendingTable::default();
        let (a, _) = sink(1);
        let (b, _) = sink(2);
        let (id_a, rx_a) = table.register(Some(&a), &mut json!({}), None);
        let (id_b, rx_b) = table.register(Some(&b), &mut json!({}), Some("t".into()));
        assert_ne!(id_a, id_b);
        assert_eq!(table.sessions_in_flight(), HashSet::from([1, 2]));
        assert_eq!(table.tools_in_flight(2), vec!["t".to_string()]);
        assert!(table.tools_in_flight(1).is_empty());
        assert!(table.complete(json!({"id": id_b, "result": "b"})));
        assert!(table.complete(json!({"id": id_a, "result": "a"})));
        assert_eq!(rx_a.await.unwrap().unwrap().into_value()["result"], "a");
        assert_eq!(rx_b.await.unwrap().unwrap().into_value()["result"], "b");
        assert!(!table.complete(json!({"id": id_a, "result": "late"})), "answered twice");
        assert!(!table.complete(json!({"id": 999, "result": "unknown"})));
        assert!(table.is_empty());
    }

    #[tokio::test]
    async fn progress_tokens_are_rewritten_and_routed_to_the_owner_only() {
        let table = PendingTable::default();
        let (a, _) = sink(1);
        let (b, _) = sink(2);
        let mut pa = json!({"_meta": {"progressToken": 1}});
        let mut pb = json!({"_meta": {"progressToken": 1}});
        let (id_a, _rx_a) = table.register(Some(&a), &mut pa, None);
        let (_id_b, _rx_b) = table.register(Some(&b), &mut pb, None);
        let ta = pa["_meta"]["progressToken"].clone();
        let tb = pb["_meta"]["progressToken"].clone();
        assert_ne!(ta, tb);
        let mut note = json!({"progressToken": tb, "progress": 1});
        assert_eq!(table.route_progress(&mut note).unwrap().id, 2);
        assert_eq!(note["progressToken"], 1);
        assert!(table.forget(id_a));
        assert!(table.route_progress(&mut json!({"progressToken": ta})).is_none(), "forgotten with its request");
        assert_eq!(table.len(), (1, 1));
    }

    #[tokio::test]
    async fn fail_all_answers_everyone() {
        let table = PendingTable::default();
        let (_, rx) = table.register(None, &mut json!({}), None);
        table.fail_all(&BackendError::Closed { server: "x".into() });
        assert!(rx.await.unwrap().is_err());
        assert!(table.is_empty());
    }
}
