//! `mcp-gateway status`: the daemon, its backends and sessions as tables, and
//! the comparison with per-terminal spawning; `--json` for scripts.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::table::{self, BAD, BOLD, DIM, Table, WARN};
use crate::control;

pub fn run(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut status = control::request(socket, "status")?.unwrap_or(Value::Null);
    let others = control::other_daemons(socket, status["pid"].as_u64());
    if json {
        if !others.is_empty()
            && let Some(object) = status.as_object_mut()
        {
            object.insert("other_daemons".into(), serde_json::to_value(&others)?);
        }
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        anstream::print!("{}", render(&status, &table::home()));
        if !others.is_empty() {
            anstream::print!(
                "\n{WARN}{}{WARN:#}\n  → {}\n",
                super::doctor::describe_others(&others),
                control::other_daemons_fix(socket)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn kib(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_u64).map_or("-".to_string(), table::size_kib)
}

/// An exit report on one line: its first line, and the last stderr line it quotes.
fn one_line(exit: &str) -> String {
    let mut lines = exit.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().trim_end_matches("; last stderr lines:");
    match lines.next_back() {
        Some(last) => format!("{first} — {last}"),
        None => first.to_string(),
    }
}

/// A table of the remote servers a list in the status names (`key`), each
/// with its state and one more column (its header, its field); empty when
/// there are none.
fn credential_rows(status: &Value, key: &str, title: &str, (header, field): (&'static str, &str)) -> String {
    let listed = status.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    if listed.is_empty() {
        return String::new();
    }
    let mut rows = Table::new(&["SERVER", "STATE", header]);
    for l in &listed {
        rows.row(vec![text(l, "server"), text(l, "state").replace('_', " "), text(l, field)]);
    }
    format!("\n{BOLD}{title}{BOLD:#}\n{}", rows.render())
}

/// The status as a person reads it (styled; `anstream` strips styles when
/// stdout is not a terminal).
pub fn render(status: &Value, home: &str) -> String {
    let rel = |path: &str| table::under_home(path, home);
    let mut out = String::new();
    out.push_str(&format!(
        "{BOLD}mcp-gateway {}{BOLD:#}  pid {}  up {}  rss {}\n",
        text(status, "version"),
        text(status, "pid"),
        table::duration(number(status, "uptime_secs")),
        kib(status, "rss_kib"),
    ));
    let servers = status.get("servers").and_then(Value::as_array).map_or(0, Vec::len);
    out.push_str(&format!(
        "config  {} ({servers} server{})\n",
        rel(&text(status, "config_path")),
        if servers == 1 { "" } else { "s" }
    ));
    // How old the listings on disk are: what clients get before a server runs.
    let ages = status.get("catalog_age_secs").and_then(Value::as_object).cloned().unwrap_or_default();
    let listed: Vec<u64> = ages.values().filter_map(Value::as_u64).collect();
    if !ages.is_empty() {
        let oldest = listed.iter().max().map_or(String::new(), |&age| format!(", oldest {}", table::duration(age)));
        out.push_str(&format!("catalog {} of {} servers listed{oldest}\n", listed.len(), ages.len()));
    }
    let age = |server: &str| ages.get(server).and_then(Value::as_u64).map_or("-".into(), table::duration);
    let log = match status.get("log") {
        Some(Value::String(s)) if s == "journal" => "the journal (journalctl --user -u mcp-gateway)".to_string(),
        Some(Value::Object(o)) => o.get("file").and_then(Value::as_str).map_or("-".into(), rel),
        _ => "stderr of whoever started it".to_string(),
    };
    out.push_str(&format!("log     {log}\n"));
    if let Some(http) = status.get("http").and_then(Value::as_str) {
        out.push_str(&format!("http    {http}\n"));
    }
    if let Some(error) = status.get("config_error").and_then(Value::as_str) {
        out.push_str(&format!("{BAD}config error (the last good config stays in force):{BAD:#} {error}\n"));
    }

    let backends = status.get("backends").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut rows = Table::new(&[
        "SERVER",
        "KEY",
        "STATE",
        "PID",
        "PROCS",
        "RSS",
        "UPTIME",
        "RESTARTS",
        "SESSIONS",
        "IN FLIGHT",
        "LISTED",
    ]);
    let mut exits = Vec::new();
    for b in &backends {
        let running = b.get("pid").is_some_and(|p| !p.is_null());
        let mut state = text(b, "state");
        if let Some(retry) = b.get("next_retry_secs").and_then(Value::as_f64) {
            state = format!("{state} (retry in {retry:.0}s)");
        }
        rows.row(vec![
            text(b, "server"),
            match number(b, "lane") {
                0 => rel(&text(b, "key")),
                lane => format!("{} (+{lane})", rel(&text(b, "key"))),
            },
            state,
            text(b, "pid"),
            if running { text(b, "processes") } else { "-".into() },
            if running {
                b.get("tree_rss_kib").map_or(kib(b, "rss_kib"), |_| kib(b, "tree_rss_kib"))
            } else {
                "-".into()
            },
            if running { table::duration(number(b, "uptime_secs")) } else { "-".into() },
            text(b, "restarts"),
            text(b, "sessions"),
            text(b, "in_flight"),
            age(&text(b, "server")),
        ]);
        if let Some(exit) = b.get("last_exit").and_then(Value::as_str) {
            exits.push(format!("  {}: {}", text(b, "server"), one_line(exit)));
        }
    }
    out.push_str(&format!("\n{BOLD}Backends{BOLD:#}\n"));
    if rows.is_empty() {
        out.push_str(&format!("{DIM}(none running: each server starts on its first call){DIM:#}\n"));
    } else {
        out.push_str(&rows.render());
    }
    if !exits.is_empty() {
        out.push_str("last exit:\n");
        out.push_str(&exits.join("\n"));
        out.push('\n');
    }

    // Remote servers that wait for a person to log in: the command, never a token.
    out.push_str(&credential_rows(status, "logins", "Logins needed", ("TO LOG IN", "login")));
    // Client-credentials servers that get no token: why, never the secret.
    out.push_str(&credential_rows(status, "credentials", "Client credentials failing", ("WHY", "error")));

    let sessions = status.get("sessions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut rows = Table::new(&["ID", "CLIENT", "PROFILE", "WORKSPACE", "SERVERS", "CONNECTED"]);
    for s in &sessions {
        rows.row(vec![
            text(s, "id"),
            text(s, "client"),
            text(s, "profile"),
            rel(&text(s, "workspace")),
            text(s, "servers"),
            table::duration(number(s, "connected_secs")),
        ]);
    }
    out.push_str(&format!("\n{BOLD}Sessions{BOLD:#}\n"));
    if rows.is_empty() {
        out.push_str(&format!("{DIM}(none connected){DIM:#}\n"));
    } else {
        out.push_str(&rows.render());
    }

    let totals = status.get("totals").cloned().unwrap_or(Value::Null);
    let per_terminal = totals.get("per_terminal").cloned().unwrap_or(Value::Null);
    out.push_str(&format!(
        "\n{BOLD}Totals{BOLD:#}\nthrough the gateway:   {} process{} for {} session{}, {} (and the daemon, {})\n",
        number(&totals, "backend_processes"),
        if number(&totals, "backend_processes") == 1 { "" } else { "es" },
        number(&totals, "sessions"),
        if number(&totals, "sessions") == 1 { "" } else { "s" },
        table::size_kib(number(&totals, "backend_rss_kib")),
        kib(&totals, "daemon_rss_kib"),
    ));
    let unmeasured = number(&per_terminal, "unmeasured");
    out.push_str(&format!(
        "spawned per terminal: {} process{}, about {}{}\n",
        number(&per_terminal, "processes"),
        if number(&per_terminal, "processes") == 1 { "" } else { "es" },
        table::size_kib(number(&per_terminal, "rss_kib")),
        match unmeasured {
            0 => String::new(),
            n => format!(" plus {n} server start{} not yet measured", if n == 1 { "" } else { "s" }),
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden status: `tests/golden/status.json` rendered must equal
    /// `tests/golden/status.txt` (styles stripped). Regenerate with
    /// `MCP_GATEWAY_UPDATE_GOLDEN=1 cargo test golden_status` after a deliberate change.
    #[test]
    fn golden_status() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let status: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap()).unwrap();
        let got = anstream::adapter::strip_str(&render(&status, "/home/ada")).to_string();
        let golden = dir.join("status.txt");
        if std::env::var_os("MCP_GATEWAY_UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap();
        assert_eq!(got, want, "status output changed; if deliberately, regenerate (see this test's doc)");
    }
}
