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
    pub(super) fn len(&self) -> usize {
        lock(&self.owners).len()
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
            lock(&self.tasks.owners).insert(task.to_string(), Owner { session, server: server.to_string() });
        }
    }

    /// The server of a task the session owns.
    pub fn task_server(&self, session: SessionId, task: &str) -> Option<String> {
        lock(&self.tasks.owners).get(task).filter(|o| o.session == session).map(|o| o.server.clone())
    }

    /// The task was fetched or cancelled: nothing more will be routed for it.
    pub fn forget_task(&self, task: &str) {
        lock(&self.tasks.owners).remove(task);
    }

    /// The tasks a session owns, grouped by server.
    pub fn tasks_of(&self, session: SessionId) -> HashMap<String, Vec<String>> {
        let mut by_server: HashMap<String, Vec<String>> = HashMap::new();
        for (task, owner) in lock(&self.tasks.owners).iter().filter(|(_, o)| o.session == session) {
            by_server.entry(owner.server.clone()).or_default().push(task.clone());
        }
        by_server
    }

    pub(super) fn task_owner(&self, task: &str) -> Option<SessionId> {
        lock(&self.tasks.owners).get(task).map(|o| o.session)
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
        lock(&self.tasks.owners).retain(|_, o| o.session != session);
    }
}
