//! `mcp-gateway doctor`: checks what usually goes wrong on a new machine and
//! says, for each problem, what to do. Exits non-zero when something is broken
//! (warnings alone do not fail it).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use super::table::{BAD, DIM, GOOD, WARN};
use crate::config::{Config, Transport};
use crate::control::{self, ControlError};
use crate::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Info,
    Warn,
    Error,
}

/// One finding: what was checked, what was found, and what to do about it.
#[derive(Debug, Serialize)]
struct Check {
    level: Level,
    topic: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, level: Level, topic: &'static str, message: impl Into<String>, fix: Option<String>) {
        self.checks.push(Check { level, topic, message: message.into(), fix });
    }
    fn ok(&mut self, topic: &'static str, message: impl Into<String>) {
        self.add(Level::Ok, topic, message, None);
    }
}

pub fn run(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    binaries(&mut report);
    let config = config(&mut report);
    daemon(&mut report, socket);
    service(&mut report);
    if let Some(config) = &config {
        token_store(&mut report, config);
        servers(&mut report, config);
    }
    tools(&mut report, config.as_ref());
    let failed = report.checks.iter().any(|c| c.level == Level::Error);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ok": !failed, "checks": report.checks }))?);
    } else {
        for check in &report.checks {
            let mark = match check.level {
                Level::Ok => format!("{GOOD}✓{GOOD:#}"),
                Level::Info => format!("{DIM}·{DIM:#}"),
                Level::Warn => format!("{WARN}!{WARN:#}"),
                Level::Error => format!("{BAD}✗{BAD:#}"),
            };
            anstream::println!("{mark} {:<8} {}", check.topic, check.message);
            if let Some(fix) = &check.fix {
                anstream::println!("  {:<8} {DIM}→{DIM:#} {fix}", "");
            }
        }
        let (errors, warnings) = (
            report.checks.iter().filter(|c| c.level == Level::Error).count(),
            report.checks.iter().filter(|c| c.level == Level::Warn).count(),
        );
        println!();
        match (errors, warnings) {
            (0, 0) => anstream::println!("{GOOD}all good{GOOD:#}"),
            (0, w) => anstream::println!("{WARN}{w} warning(s){WARN:#}, nothing broken"),
            (e, w) => anstream::println!("{BAD}{e} problem(s){BAD:#}, {w} warning(s)"),
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Finds an executable on PATH (or checks a path given with a slash).
pub fn which(program: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_exec(&path).then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| is_exec(p))
}

fn binaries(report: &mut Report) {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("mcp-gateway-connect")));
    match (which("mcp-gateway-connect"), beside.filter(|p| p.exists())) {
        (Some(path), _) => report.ok("shim", format!("mcp-gateway-connect is on PATH ({})", path.display())),
        (None, Some(path)) => report.add(
            Level::Warn,
            "shim",
            format!("mcp-gateway-connect is not on PATH (it is at {})", path.display()),
            Some(format!(
                "add {} to PATH, or give clients its absolute path",
                path.parent().unwrap_or(&path).display()
            )),
        ),
        (None, None) => report.add(
            Level::Error,
            "shim",
            "mcp-gateway-connect is not installed",
            Some("install both binaries (cargo install mcp-gateway, or the .deb/.rpm package)".into()),
        ),
    }
}

fn config(report: &mut Report) -> Option<Config> {
    let location = paths::config_location(None);
    let path = location.path;
    let config = match Config::load(&path) {
        Ok(Some(config)) => {
            report.ok("config", format!("{} parses: {} server(s)", path.display(), config.servers.len()));
            config
        }
        Ok(None) => {
            report.add(
                Level::Info,
                "config",
                format!("no config at {} (the daemon runs with no servers)", path.display()),
                Some(
                    "add a server: `mcp-gateway servers add memory`, or `mcp-gateway import` from your clients".into(),
                ),
            );
            return Some(Config::default());
        }
        Err(e) => {
            report.add(
                Level::Error,
                "config",
                e.to_string(),
                Some("fix that line; the daemon keeps the last good config until then".into()),
            );
            return None;
        }
    };
    // A config runs commands: nobody else may write it.
    if let Ok(meta) = std::fs::metadata(&path)
        && meta.permissions().mode() & 0o022 != 0
    {
        report.add(
            Level::Warn,
            "config",
            format!("{} is writable by other users, who could make the daemon run their commands", path.display()),
            Some(format!("chmod go-w {}", path.display())),
        );
    }
    let dotenv = paths::gateway_dotenv(&path);
    if let Ok(meta) = std::fs::metadata(&dotenv) {
        if meta.permissions().mode() & 0o077 != 0 {
            report.add(
                Level::Warn,
                "secrets",
                format!("{} is readable by other users", dotenv.display()),
                Some(format!("chmod 600 {}", dotenv.display())),
            );
        } else {
            report.ok("secrets", format!("{} is private", dotenv.display()));
        }
    }
    Some(config)
}

/// With `oauth_store: keyring`, whether the OS keyring takes and gives back
/// an entry now (a build without it never gets here: the config is refused).
fn token_store(report: &mut Report, config: &Config) {
    if config.oauth_store != crate::config::OAuthStore::Keyring {
        return;
    }
    match crate::oauth::keyring_probe() {
        Ok(name) => report.ok(
            "tokens",
            format!(
                "`oauth_store: keyring`: {name} keeps OAuth tokens{}",
                if cfg!(target_os = "linux") { " (until reboot, or a few days unused: then log in again)" } else { "" }
            ),
        ),
        Err(e) => report.add(
            Level::Error,
            "tokens",
            format!("`oauth_store: keyring` in {}, but {e}", paths::config_location(None).path.display()),
            Some(
                "logins fail until the keyring works (nothing is written elsewhere): fix it, or remove \
                 `oauth_store: keyring` to keep tokens in files under the gateway home"
                    .into(),
            ),
        ),
    }
}

fn daemon(report: &mut Report, socket: &Path) {
    // The rule the shim and the daemon apply (paths::verify_socket_dir), so
    // doctor flags exactly what they would refuse.
    if let Err(reason) = crate::paths::verify_socket_dir(socket) {
        report.add(Level::Error, "socket", reason.to_string(), None);
        return;
    }
    let mut own_pid = None;
    match control::request(socket, "status") {
        Ok(status) => {
            let status = status.unwrap_or(Value::Null);
            own_pid = status["pid"].as_u64();
            let version = status["version"].as_str().unwrap_or("?");
            if version == crate::VERSION {
                report.ok("daemon", format!("running (pid {}) on {}", status["pid"], socket.display()));
            } else {
                report.add(
                    Level::Warn,
                    "daemon",
                    format!("the running daemon is version {version}, this command line is {}", crate::VERSION),
                    Some("`mcp-gateway stop`; the next client connect starts the installed version".into()),
                );
            }
            if let Some(error) = status["config_error"].as_str() {
                report.add(
                    Level::Error,
                    "daemon",
                    format!("the daemon did not apply the config on disk: {error}"),
                    Some("fix the config; `mcp-gateway config check` shows the line".into()),
                );
            }
            for login in status["logins"].as_array().into_iter().flatten() {
                report.add(
                    Level::Warn,
                    "login",
                    format!(
                        "`{}` needs a login ({})",
                        login["server"].as_str().unwrap_or("?"),
                        login["state"].as_str().unwrap_or("?").replace('_', " ")
                    ),
                    Some(format!("run `{}`", login["login"].as_str().unwrap_or("mcp-gateway auth login SERVER"))),
                );
            }
            for problem in status["credentials"].as_array().into_iter().flatten() {
                report.add(
                    Level::Error,
                    "credentials",
                    format!(
                        "`{}` gets no token with its client credentials: {}",
                        problem["server"].as_str().unwrap_or("?"),
                        problem["error"].as_str().unwrap_or("no reason given")
                    ),
                    Some(
                        "fix the server's `oauth:` block (or the .env its `${VAR}`s come from); \
                          `mcp-gateway auth login SERVER` tries again at once"
                            .into(),
                    ),
                );
            }
            for b in status["backends"].as_array().into_iter().flatten() {
                if b["state"] == "open" || b["state"] == "backing off" {
                    report.add(
                        Level::Warn,
                        "backend",
                        format!(
                            "`{}` keeps failing ({}): {}",
                            b["server"].as_str().unwrap_or("?"),
                            b["state"].as_str().unwrap_or("?"),
                            b["last_exit"].as_str().unwrap_or("no exit recorded")
                        ),
                        Some(format!(
                            "`mcp-gateway logs {0}` shows its stderr; `mcp-gateway restart {0}` tries again now",
                            b["server"].as_str().unwrap_or("SERVER")
                        )),
                    );
                }
            }
        }
        Err(ControlError::NotRunning { .. }) => report.add(
            Level::Info,
            "daemon",
            format!("not running on {} (the first client connect starts it)", socket.display()),
            None,
        ),
        Err(e @ ControlError::Untrusted(_)) => report.add(Level::Error, "daemon", e.to_string(), None),
        Err(e) => report.add(
            Level::Error,
            "daemon",
            format!("something answers on {} but not as this version expects: {e}", socket.display()),
            Some("`mcp-gateway stop`, or remove the socket if nothing should listen there".into()),
        ),
    }
    let others = control::other_daemons(socket, own_pid);
    if !others.is_empty() {
        report.add(Level::Warn, "daemon", describe_others(&others), Some(control::other_daemons_fix(socket)));
    }
}

/// "another mcp-gateway daemon (pid 12) listens on /x.sock", for one or more.
pub fn describe_others(others: &[control::OtherDaemon]) -> String {
    let each: Vec<String> = others
        .iter()
        .map(|o| match o.pid {
            Some(pid) => format!("pid {pid} on {}", o.socket.display()),
            None => format!("one on {}", o.socket.display()),
        })
        .collect();
    format!("another mcp-gateway daemon of yours runs besides this one: {}", each.join("; "))
}

fn service(report: &mut Report) {
    let inspected = super::service::inspect();
    if inspected.installed() {
        let states: Vec<String> = inspected.manager.iter().map(|(unit, state)| format!("{unit}: {state}")).collect();
        report.ok("service", format!("installed ({})", states.join("; ")));
    } else if let Some(unit) = &inspected.packaged {
        let states: Vec<String> = inspected.manager.iter().map(|(unit, state)| format!("{unit}: {state}")).collect();
        if inspected.packaged_and_enabled() {
            report.ok("service", format!("the package's units, {} ({})", unit.display(), states.join("; ")));
        } else {
            report.add(
                Level::Info,
                "service",
                format!("the package's units are installed ({}) but not enabled", unit.display()),
                Some("for start-on-connect by the OS: `systemctl --user enable --now mcp-gateway.socket`".into()),
            );
        }
    } else {
        report.add(
            Level::Info,
            "service",
            "no per-user service installed: the shim starts the daemon itself when needed",
            Some(
                "for start-on-connect by the OS (and a restarted daemon after a crash): `mcp-gateway service install`"
                    .into(),
            ),
        );
    }
}

fn servers(report: &mut Report, config: &Config) {
    for (name, server) in config.servers.iter().filter(|(_, s)| s.enabled) {
        match server.transport {
            Transport::Stdio => {
                let command = server.command.clone().unwrap_or_default();
                if command.contains("${") {
                    report.add(Level::Info, "server", format!("`{name}` runs {command} (resolved per session)"), None);
                } else if let Some(path) = which(&command) {
                    report.ok("server", format!("`{name}`: {command} → {}", path.display()));
                } else {
                    report.add(
                        Level::Error,
                        "server",
                        format!("`{name}`: `{command}` is not on PATH"),
                        Some(format!("install it, or give its absolute path in the config (servers.{name}.command)")),
                    );
                }
            }
            Transport::Docker if which("docker").is_none() => report.add(
                Level::Error,
                "server",
                format!("`{name}` runs in Docker, and `docker` is not on PATH"),
                Some("install Docker (or Podman with its docker wrapper)".into()),
            ),
            Transport::Docker => {
                report.ok("server", format!("`{name}`: docker image {}", server.image.clone().unwrap_or_default()))
            }
            Transport::Http => report.ok(
                "server",
                format!("`{name}`: {}", server.url.as_deref().map(crate::redact::redacted_url).unwrap_or_default()),
            ),
        }
    }
}

/// The runtimes MCP servers are usually launched with.
fn tools(report: &mut Report, config: Option<&Config>) {
    let used = |program: &str| {
        config.is_some_and(|c| c.servers.values().any(|s| s.enabled && s.command.as_deref() == Some(program)))
    };
    for (program, version_flag, purpose) in [
        ("node", "--version", "runs npm servers"),
        ("npx", "--version", "starts npm servers: npx -y PACKAGE"),
        ("uvx", "--version", "starts Python servers: uvx PACKAGE"),
        ("docker", "--version", "runs servers of type: docker"),
    ] {
        match which(program) {
            Some(path) => {
                let version = std::process::Command::new(&path)
                    .arg(version_flag)
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_string())
                    .unwrap_or_default();
                report.ok("runtime", format!("{program} {version} ({purpose})"));
            }
            None if used(program) => report.add(
                Level::Error,
                "runtime",
                format!("{program} is not on PATH, and the config uses it ({purpose})"),
                Some(format!("install {program}")),
            ),
            None => report.add(
                Level::Info,
                "runtime",
                format!("{program} not found ({purpose}; the config uses none)"),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_store_is_checked_only_when_chosen() {
        let mut report = Report::default();
        token_store(&mut report, &Config::default());
        assert!(report.checks.is_empty(), "files: nothing to check");
        let keyring = Config { oauth_store: crate::config::OAuthStore::Keyring, ..Config::default() };
        token_store(&mut report, &keyring);
        let check = &report.checks[0];
        if cfg!(feature = "os-keyring") {
            // The kernel keyring answers here.
            assert_eq!(check.level, Level::Ok, "{}", check.message);
            assert!(check.message.contains("keyutils) keeps OAuth tokens"), "{}", check.message);
        } else {
            assert_eq!(check.level, Level::Error);
            assert!(check.message.contains("`os-keyring` cargo feature"), "{}", check.message);
        }
    }
}
