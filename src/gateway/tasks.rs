//! Tasks (MCP 2025-11-25, experimental): a `tools/call` with a `task` parameter
//! answers at once with a task id, and the client polls `tasks/get` and fetches
//! `tasks/result` later. Backends know nothing of sessions, so the gateway keeps
//! who owns which task: only the owner can see, fetch or cancel it, its status
//! notifications reach only the owner, and a server request that names a related
//! task goes to that task's owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::debug;

use super::{Gateway, lock};
use crate::backend::Backend;
use crate::jsonrpc;
use crate::sink::SessionId;

/// The `_meta` key that ties a message to a task.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

struct Owner {
    session: SessionId,
    server: String,
}

#[derive(Default)]
pub(super) struct Tasks {
    owners: Mutex<HashMap<String, Owner>>,
}

impl Tasks {
    /// Tasks with a known owner.
    pub(super) fn len(&self) -> usize {
        lock(&self.owners).len()
    }

    fn record(&self, task: &str, session: SessionId, server: &str) {
        lock(&self.owners).insert(task.to_string(), Owner { session, server: server.to_string() });
    }

    /// The task's server, to `session` only: another session's task is unknown to it.
    fn server_for(&self, session: SessionId, task: &str) -> Option<String> {
        lock(&self.owners).get(task).filter(|o| o.session == session).map(|o| o.server.clone())
    }

    fn forget(&self, task: &str) {
        lock(&self.owners).remove(task);
    }

    fn of_session(&self, session: SessionId) -> HashMap<String, Vec<String>> {
        let mut by_server: HashMap<String, Vec<String>> = HashMap::new();
        for (task, owner) in lock(&self.owners).iter().filter(|(_, o)| o.session == session) {
            by_server.entry(owner.server.clone()).or_default().push(task.clone());
        }
        by_server
    }

    fn owner(&self, task: &str) -> Option<SessionId> {
        lock(&self.owners).get(task).map(|o| o.session)
    }

    fn forget_session(&self, session: SessionId) {
        lock(&self.owners).retain(|_, o| o.session != session);
    }
}

/// The task a message is related to, from `params._meta`.
pub(super) fn related_task(params: &Value) -> Option<&str> {
    params.get("_meta")?.get(RELATED_TASK)?.get("taskId")?.as_str()
}

impl Gateway {
    /// Notes the task a `tools/call` answer created, if any.
    pub fn record_task(&self, session: SessionId, server: &str, response: &Value) {
        // Not `pointer`: it allocates per segment, and this runs on every call.
        let task = response.get("result").and_then(|r| r.get("task")).and_then(|t| t.get("taskId"));
        if let Some(task) = task.and_then(Value::as_str) {
            debug!(session, server, task, "task created");
            self.tasks.record(task, session, server);
        }
    }

    /// The server of a task the session owns.
    pub fn task_server(&self, session: SessionId, task: &str) -> Option<String> {
        self.tasks.server_for(session, task)
    }

    /// The task was fetched or cancelled: nothing more will be routed for it.
    pub fn forget_task(&self, task: &str) {
        self.tasks.forget(task);
    }

    /// The tasks a session owns, grouped by server.
    pub fn tasks_of(&self, session: SessionId) -> HashMap<String, Vec<String>> {
        self.tasks.of_session(session)
    }

    pub(super) fn task_owner(&self, task: &str) -> Option<SessionId> {
        self.tasks.owner(task)
    }

    /// `notifications/tasks/status`: to the task's owner only.
    pub(super) fn route_task_status(&self, backend: &Arc<Backend>, message: Value) {
        let params = jsonrpc::params(&message);
        let task = params.get("taskId").and_then(Value::as_str).or_else(|| related_task(params));
        match task.and_then(|t| self.task_owner(t)).and_then(|s| self.session(s)) {
            Some(session) => {
                session.sink.send(message);
            }
            None => debug!(server = %backend.server, "dropped a status for a task no session owns"),
        }
    }

    pub(super) fn drop_tasks_of_session(&self, session: SessionId) {
        self.tasks.forget_session(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_its_owners_alone() {
        let tasks = Tasks::default();
        tasks.record("t1", 1, "s");
        tasks.record("t2", 2, "s");
        assert_eq!(tasks.server_for(1, "t1").as_deref(), Some("s"));
        assert_eq!(tasks.server_for(2, "t1"), None, "another session's task is unknown to it");
        assert_eq!(tasks.owner("t2"), Some(2));
        assert_eq!(tasks.of_session(1), HashMap::from([("s".to_string(), vec!["t1".to_string()])]));
        tasks.forget("t1");
        assert_eq!(tasks.owner("t1"), None);
        tasks.forget_session(2);
        assert_eq!(tasks.len(), 0, "no entry outlives its session");
    }

    #[test]
    fn the_related_task_is_read_from_meta() {
        let params = serde_json::json!({"_meta": {RELATED_TASK: {"taskId": "t9"}}});
        assert_eq!(related_task(&params), Some("t9"));
        assert_eq!(related_task(&serde_json::json!({})), None);
    }
}
