//! What `mcp-gateway status` shows: the daemon, each backend instance, each
//! session, and what the same terminals would cost if each spawned its own
//! servers (the number the gateway exists to shrink).
//!
//! The JSON is read by scripts: `schema_version` changes only when a field is
//! removed or changes meaning; new fields may appear at any time.

use serde_json::{Value, json};

use super::{Gateway, LogLevel, SessionInfo, lock};
use crate::backend::BackendStatus;

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
        // What a client configured with the same servers would spawn for
        // itself: the servers each session sees, but remote ones.
        let spawned: Vec<Vec<String>> = sessions
            .iter()
            .map(|s| {
                let own = self.workspace_files.load(&s.workspace);
                super::resolve::visible_servers(&config, &own, s, &self.workspace_files)
                    .into_iter()
                    .filter(|(_, server)| server.url.is_none())
                    .map(|(name, _)| name.to_string())
                    .collect()
            })
            .collect();
        let backends = self.pool.status();
        let daemon_rss_kib = crate::procinfo::rss_kib(std::process::id());
        json!({
            "schema_version": STATUS_SCHEMA_VERSION,
            "version": crate::VERSION,
            "pid": std::process::id(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "rss_kib": daemon_rss_kib,
            // The threads sessions and backends run on (`serve --worker-threads`).
            "worker_threads": tokio::runtime::Handle::try_current().ok().map(|h| h.metrics().num_workers()),
            "log": crate::logging::destination(),
            "config_path": self.config_path(),
            "servers": config.servers.keys().collect::<Vec<_>>(),
            // Per server: how old its listing on disk is (what `tools/list`
            // answers before the server runs), null if never listed.
            "catalog_age_secs": self.catalog_ages(),
            "idle_timeout_secs": config.idle_timeout.as_secs(),
            "config_error": self.config_error(),
            "http": self.http_addr.get().map(|a| format!("http://{a}/mcp")),
            "backends": backends,
            "sessions": sessions.iter().zip(&spawned).map(|(s, names)| session_row(s, names.len())).collect::<Vec<_>>(),
            "totals": totals(&backends, &spawned, daemon_rss_kib),
            "logins": self.logins_needed(),
            // Client-credentials servers whose token fetch failed (no login helps).
            "credentials": self.credential_problems(),
            "pending": {
                "server_requests": self.server_requests.len(),
                "subscriptions": self.subscriptions.len(),
                "tasks": self.tasks.len(),
            },
        })
    }
}

fn session_row(s: &SessionInfo, servers: usize) -> Value {
    json!({
        "id": s.id,
        "client": s.client_name,
        "client_pid": s.client_pid,
        "protocol_version": s.protocol_version,
        "log_level": s.log_level.map(LogLevel::as_str),
        "cwd": s.cwd,
        "workspace": s.workspace,
        "profile": s.profile,
        "servers": servers,
        "connected_secs": s.connected.elapsed().as_secs(),
    })
}

/// The gateway's processes and memory against per-terminal spawning. A server
/// that has run is counted with what its instances measure (processes and
/// resident memory of the whole process group, averaged over instances); one
/// that has not run counts as one process of unknown size, and is reported in
/// `unmeasured` so the estimate says how much it leaves out.
fn totals(backends: &[BackendStatus], spawned: &[Vec<String>], daemon_rss_kib: Option<u64>) -> Value {
    let running: Vec<&BackendStatus> = backends.iter().filter(|b| b.pid.is_some()).collect();
    let backend_processes: usize = running.iter().map(|b| b.processes.max(1)).sum();
    let backend_rss_kib: u64 = running.iter().filter_map(|b| b.tree_rss_kib.or(b.rss_kib)).sum();
    let (mut processes, mut rss_kib, mut unmeasured) = (0usize, 0u64, 0usize);
    for names in spawned {
        for server in names {
            let measured: Vec<&&BackendStatus> = running.iter().filter(|b| b.server == *server).collect();
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
        "sessions": spawned.len(),
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
