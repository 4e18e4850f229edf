//! What `mcp-gateway status` shows: the daemon, each backend instance, each
//! session, and what the same terminals would cost if each spawned its own
//! servers (the number the gateway exists to shrink).
//!
//! The JSON is read by scripts: `schema_version` changes only when a field is
//! removed or changes meaning; new fields may appear at any time.

use serde_json::{Value, json};

use super::{Gateway, LogLevel, SessionInfo, lock};
use crate::backend::BackendStatus;
use crate::config::Config;

/// Bumped when a field of the status JSON is removed or changes meaning.
pub const STATUS_SCHEMA_VERSION: u32 = 1;

impl Gateway {
    pub fn status(&self) -> Value {
        let config = self.config();
        let sessions: Vec<SessionInfo> = {
            let sessions = lock(&self.sessions);
            let mut rows: Vec<SessionInfo> = sessions.values().cloned().collect();
            rows.sort_by_key(|s| s.id);
            rows
        };
        let backends = self.pool.status();
        let daemon_rss_kib = crate::procinfo::rss_kib(std::process::id());
        json!({
            "schema_version": STATUS_SCHEMA_VERSION,
            "version": crate::VERSION,
            "pid": std::process::id(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "rss_kib": daemon_rss_kib,
            "log": crate::logging::destination(),
            "config_path": self.config_path(),
            "servers": config.servers.keys().collect::<Vec<_>>(),
            "idle_timeout_secs": config.idle_timeout.as_secs(),
            "config_error": self.config_error(),
            "http": self.http_addr.get().map(|a| format!("http://{a}/mcp")),
            "backends": backends,
            "sessions": sessions.iter().map(|s| session_row(&config, s)).collect::<Vec<_>>(),
            "totals": totals(&config, &backends, &sessions, daemon_rss_kib),
            "pending": {
                "server_requests": self.server_requests.len(),
                "subscriptions": self.subscriptions.len(),
                "tasks": self.tasks.len(),
            },
        })
    }
}

fn session_row(config: &Config, s: &SessionInfo) -> Value {
    json!({
        "id": s.id,
        "client": s.client_name,
        "client_pid": s.client_pid,
        "protocol_version": s.protocol_version,
        "log_level": s.log_level.map(LogLevel::as_str),
        "cwd": s.cwd,
        "workspace": s.workspace,
        "profile": s.profile,
        "servers": visible_servers(config, s).len(),
        "connected_secs": s.connected.elapsed().as_secs(),
    })
}

/// The configured servers a session may use: what a client configured with
/// the same servers would spawn for itself. (A trusted workspace's own servers
/// are left out: reading workspace files is not worth it for an estimate.)
fn visible_servers<'a>(config: &'a Config, session: &SessionInfo) -> Vec<&'a str> {
    let allowed = session.profile.as_ref().and_then(|p| config.profiles.get(p)).and_then(|p| p.servers.as_ref());
    config
        .servers
        .iter()
        .filter(|(name, s)| s.enabled && s.url.is_none() && allowed.is_none_or(|a| a.contains(name)))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The gateway's processes and memory against per-terminal spawning. A server
/// that has run is counted with what its instances measure (processes and
/// resident memory of the whole process group, averaged over instances); one
/// that has not run counts as one process of unknown size, and is reported in
/// `unmeasured` so the estimate says how much it leaves out.
fn totals(config: &Config, backends: &[BackendStatus], sessions: &[SessionInfo], daemon_rss_kib: Option<u64>) -> Value {
    let running: Vec<&BackendStatus> = backends.iter().filter(|b| b.pid.is_some()).collect();
    let backend_processes: usize = running.iter().map(|b| b.processes.max(1)).sum();
    let backend_rss_kib: u64 = running.iter().filter_map(|b| b.tree_rss_kib.or(b.rss_kib)).sum();
    let (mut processes, mut rss_kib, mut unmeasured) = (0usize, 0u64, 0usize);
    for session in sessions {
        for server in visible_servers(config, session) {
            let measured: Vec<&&BackendStatus> = running.iter().filter(|b| b.server == server).collect();
            if measured.is_empty() {
                processes += 1;
                unmeasured += 1;
                continue;
            }
            let n = measured.len() as u64;
            processes += measured.iter().map(|b| b.processes.max(1)).sum::<usize>().div_ceil(measured.len());
            rss_kib += measured.iter().filter_map(|b| b.tree_rss_kib.or(b.rss_kib)).sum::<u64>() / n;
        }
    }
    json!({
        "sessions": sessions.len(),
        "backends_running": running.len(),
        "backend_processes": backend_processes,
        "backend_rss_kib": backend_rss_kib,
        "daemon_rss_kib": daemon_rss_kib,
        "per_terminal": {
            "processes": processes,
            "rss_kib": rss_kib,
            "unmeasured": unmeasured,
        },
    })
}
