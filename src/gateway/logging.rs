//! `logging/setLevel` per session over shared backends.
//!
//! Each session picks its own level. A backend is set to the most verbose level
//! any of its sessions asked for, and each of its log messages goes only to the
//! sessions whose level admits it; a session that never set a level gets none.

use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::debug;

use super::{Gateway, lock};
use crate::backend::Backend;
use crate::jsonrpc;
use crate::sink::SessionId;

/// RFC 5424 severities, as MCP names them, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

const NAMES: [(&str, LogLevel); 8] = [
    ("debug", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("notice", LogLevel::Notice),
    ("warning", LogLevel::Warning),
    ("error", LogLevel::Error),
    ("critical", LogLevel::Critical),
    ("alert", LogLevel::Alert),
    ("emergency", LogLevel::Emergency),
];

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        NAMES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, level)| *level)
            .ok_or_else(|| format!("unknown log level `{s}`; use one of {}", NAMES.map(|(n, _)| n).join(", ")))
    }
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        NAMES.iter().find(|(_, level)| *level == self).map(|(name, _)| *name).unwrap_or("info")
    }

    /// The level a shared backend is set to: the most verbose any of its
    /// sessions asked for; none when no session asked (the backend keeps its own).
    fn for_backend(wanted: impl IntoIterator<Item = Option<LogLevel>>) -> Option<LogLevel> {
        wanted.into_iter().flatten().min()
    }

    /// Whether a message at this level reaches a session that asked for
    /// `wanted`; a session that never asked gets no log messages.
    fn reaches(self, wanted: Option<LogLevel>) -> bool {
        wanted.is_some_and(|wanted| self >= wanted)
    }
}

impl Gateway {
    /// A session's `logging/setLevel`.
    pub fn set_log_level(&self, session: SessionId, level: LogLevel) {
        let info = {
            let mut sessions = lock(&self.sessions);
            let Some(info) = sessions.get_mut(&session) else { return };
            info.log_level = Some(level);
            info.clone()
        };
        // It now listens to every running backend that serves it.
        for backend in self.pool.running_all() {
            if self.resolves_to(&info, &backend) {
                backend.attach(session);
            }
        }
        self.sync_log_levels();
    }

    /// Brings every running backend to the most verbose level its sessions want.
    pub(super) fn sync_log_levels(&self) {
        for backend in self.pool.running_all() {
            self.sync_log_level(&backend);
        }
    }

    pub(super) fn sync_log_level(&self, backend: &Arc<Backend>) {
        // A modern server takes the level with each request (its envelope).
        if !backend.has_capability("logging") || backend.is_modern() {
            return;
        }
        // Most sessions never ask for log messages: then nothing is looked up
        // (this runs on every call).
        if !lock(&self.sessions).values().any(|s| s.log_level.is_some()) {
            return;
        }
        let Some(level) = LogLevel::for_backend(self.of_sessions_using(backend, |s| s.log_level)) else { return };
        if backend.set_log_level(level.as_str()) {
            debug!(server = %backend.server, level = level.as_str(), "setting the backend's log level");
            let backend = backend.clone();
            tokio::spawn(async move {
                let _ = backend.request("logging/setLevel", json!({ "level": level.as_str() }), None).await;
            });
        }
    }

    /// A backend's `notifications/message`: to the sessions whose level admits it.
    pub(super) fn route_log_message(&self, backend: &Arc<Backend>, message: Value) {
        let level =
            jsonrpc::params(&message).get("level").and_then(Value::as_str).and_then(|l| l.parse::<LogLevel>().ok());
        let Some(level) = level else {
            debug!(server = %backend.server, "dropped a log message without a valid level");
            return;
        };
        let reached = self.of_sessions_using(backend, |s| level.reaches(s.log_level).then(|| s.sink.clone()));
        for sink in reached.into_iter().flatten() {
            sink.send(message.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_runs_at_its_most_verbose_session_and_messages_reach_only_those_that_asked() {
        use LogLevel::*;
        assert_eq!(LogLevel::for_backend([Some(Error), None, Some(Info), Some(Warning)]), Some(Info));
        assert_eq!(LogLevel::for_backend([None, None]), None, "no session asked: the backend is left alone");
        assert!(Info.reaches(Some(Info)) && Error.reaches(Some(Info)));
        assert!(!Debug.reaches(Some(Info)), "below the session's level");
        assert!(!Emergency.reaches(None), "a session that never set a level gets none");
    }

    #[test]
    fn levels_order_and_parse() {
        assert!(LogLevel::Debug < LogLevel::Error);
        assert_eq!("warning".parse::<LogLevel>(), Ok(LogLevel::Warning));
        assert_eq!(LogLevel::Emergency.as_str(), "emergency");
        assert!("loud".parse::<LogLevel>().unwrap_err().contains("debug, info"));
    }
}
