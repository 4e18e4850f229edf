//! `mcp-gateway servers list|add|remove|enable|disable`: the config's servers,
//! edited the way the `mcpgw_install` meta-tool edits them (comments and order
//! kept, atomic, `.bak`), with the same two scopes. The person at the terminal
//! is the confirmation, so no code is asked for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::table::{self, BOLD, DIM, GOOD, Table, WARN};
use super::{Scope, ServersCommand};
use crate::config::{Config, ServerConfig, Transport};
use crate::install::{self, Change, Target};
use crate::{control, paths, workspace};

pub fn run(command: ServersCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServersCommand::List { json, config, socket } => {
            list(&config_path(config.config.as_deref()), &socket.path(), json)
        }
        ServersCommand::Add { name, command, url, env, headers, share, scope, test, no_prefetch, config, socket } => {
            let config = config_path(config.config.as_deref());
            let definition = Definition { command, url, env, headers, share };
            add(&config, &socket.path(), &name, definition, scope, Checks { test, prefetch: !no_prefetch })
        }
        ServersCommand::Remove { name, scope, config, socket } => {
            let config = config_path(config.config.as_deref());
            let (target, path) = target(&config, scope)?;
            let change = install::plan_remove(&path, target, &name)?;
            write(&change, &socket.path(), &format!("removed `{name}` from {}", path.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        ServersCommand::Enable { name, scope, config, socket } => {
            set_enabled(&config_path(config.config.as_deref()), &socket.path(), &name, scope, true)
        }
        ServersCommand::Disable { name, scope, config, socket } => {
            set_enabled(&config_path(config.config.as_deref()), &socket.path(), &name, scope, false)
        }
    }
}

fn config_path(explicit: Option<&Path>) -> PathBuf {
    paths::config_location(explicit).path
}

fn load(config: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(config)?.unwrap_or_default())
}

/// The file a scope edits, and how it is read.
fn target(config: &Path, scope: Scope) -> anyhow::Result<(Target, PathBuf)> {
    match scope {
        Scope::Global => Ok((Target::Config, config.to_path_buf())),
        Scope::Workspace => {
            let cwd = std::env::current_dir().context("finding the current directory")?;
            let root = workspace::root_of(&cwd, &load(config)?.workspace_markers);
            Ok((Target::Workspace, root.join(crate::config::WORKSPACE_FILE)))
        }
    }
}

/// Applies a change and says what happened (and whether the daemon took it up).
fn write(change: &Change, socket: &Path, done: &str) -> anyhow::Result<()> {
    let backup = install::apply(change)?;
    println!("{done}");
    for line in change.summary.lines() {
        anstream::println!("  {DIM}{line}{DIM:#}");
    }
    if let Some(backup) = backup {
        anstream::println!("{DIM}previous version kept as {}{DIM:#}", backup.display());
    }
    super::tell_daemon(change.path.as_path(), socket);
    Ok(())
}

fn set_enabled(config: &Path, socket: &Path, name: &str, scope: Scope, enabled: bool) -> anyhow::Result<ExitCode> {
    let (target, path) = target(config, scope)?;
    let word = if enabled { "enabled" } else { "disabled" };
    match install::plan_set_enabled(&path, target, name, enabled)? {
        Some(change) => write(&change, socket, &format!("{word} `{name}` in {}", path.display()))?,
        None => println!("`{name}` is already {word} in {}", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}

// ---- list ----

fn list(config_path: &Path, socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = load(config_path)?;
    // The daemon's view, when one runs: which servers have instances.
    let status = control::request(socket, "status").ok().flatten();
    let backends: Vec<Value> = status.as_ref().and_then(|s| s["backends"].as_array().cloned()).unwrap_or_default();
    let state_of = |name: &str| -> String {
        let mine: Vec<&Value> = backends.iter().filter(|b| b["server"] == name).collect();
        match (status.is_some(), mine.len()) {
            (false, _) => "-".into(),
            (true, 0) => "not started".into(),
            (true, 1) => mine[0]["state"].as_str().unwrap_or("?").to_string(),
            (true, n) => format!("{n} instances"),
        }
    };
    if json {
        let rows: Vec<Value> = config
            .servers
            .iter()
            .map(|(name, s)| {
                json!({
                    "name": name,
                    "type": transport_name(s),
                    "command": s.command, "args": s.args, "image": s.image,
                    "url": s.url.as_deref().map(crate::redact::redacted_url),
                    "share": s.share,
                    "enabled": s.enabled,
                    "state": status.as_ref().map(|_| state_of(name)),
                    "description": s.description,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "config": config_path, "servers": rows }))?);
        return Ok(ExitCode::SUCCESS);
    }
    anstream::println!("{DIM}{}{DIM:#}", config_path.display());
    if config.servers.is_empty() {
        println!("no servers configured; add one with `mcp-gateway servers add NAME -- COMMAND ARGS…`");
        println!("or from the catalog, e.g. `mcp-gateway servers add memory`");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Table::new(&["NAME", "TYPE", "SHARE", "ENABLED", "STATE", "RUNS"]);
    for (name, s) in &config.servers {
        rows.row(vec![
            name.clone(),
            transport_name(s).to_string(),
            serde_json::to_value(s.share).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            if s.enabled { "yes".into() } else { "no".into() },
            state_of(name),
            runs(s),
        ]);
    }
    anstream::print!("{}", rows.render());
    if status.is_none() {
        anstream::println!("{DIM}(no daemon running: STATE unknown){DIM:#}");
    }
    Ok(ExitCode::SUCCESS)
}

fn transport_name(s: &ServerConfig) -> &'static str {
    match s.transport {
        Transport::Stdio => "stdio",
        Transport::Http => "http",
        Transport::Docker => "docker",
    }
}

/// What a server runs, shortened for a table.
fn runs(s: &ServerConfig) -> String {
    let full = match s.transport {
        Transport::Http => s.url.as_deref().map(crate::redact::redacted_url).unwrap_or_default(),
        Transport::Docker => format!("docker {}", s.image.clone().unwrap_or_default()),
        Transport::Stdio => std::iter::once(s.command.clone().unwrap_or_default())
            .chain(s.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    if full.chars().count() > 60 { format!("{}…", full.chars().take(59).collect::<String>()) } else { full }
}

// ---- add ----

/// What `servers add` was given on its command line.
struct Definition {
    command: Vec<String>,
    url: Option<String>,
    env: Vec<String>,
    headers: Vec<String>,
    share: Option<String>,
}

/// `NAME=VALUE` pairs into a map, with a clear error for anything else.
fn pairs(flag: &str, items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            bail!("--{flag} {item:?}: expected NAME=VALUE");
        };
        if key.trim().is_empty() {
            bail!("--{flag} {item:?}: the name is empty");
        }
        out.insert(key.trim().to_string(), Value::String(value.to_string()));
    }
    Ok(out)
}

/// Variable names that usually hold a secret.
fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "KEY", "SECRET", "PASSWORD", "AUTH", "CREDENTIAL", "PAT"].iter().any(|w| upper.contains(w))
}

/// The server definition to add: from the flags, else from the catalog.
fn server_from(config: &Path, name: &str, d: Definition) -> anyhow::Result<(ServerConfig, Vec<String>)> {
    if d.command.is_empty() && d.url.is_none() {
        let registry = crate::registry::load(&config.with_file_name("catalog.yaml"));
        let Some(entry) = registry.get(name) else {
            let names: Vec<&String> = registry.keys().collect();
            bail!(
                "`{name}` is not in the catalog, so give its command after `--` (or --url); the catalog has: {}",
                names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
            );
        };
        return Ok((entry.server.clone(), entry.requires.clone()));
    }
    let mut raw = Map::new();
    if let Some(url) = d.url {
        raw.insert("url".into(), url.into());
    } else if let Some((command, args)) = d.command.split_first() {
        raw.insert("command".into(), command.clone().into());
        if !args.is_empty() {
            raw.insert("args".into(), args.to_vec().into());
        }
    }
    let env = pairs("env", &d.env)?;
    for (key, value) in &env {
        if looks_secret(key) && !value.as_str().is_some_and(|v| v.starts_with("${")) {
            anstream::eprintln!(
                "{WARN}note:{WARN:#} {key} looks like a secret and goes into the config as written; \
                 `--env {key}=${{{key}}}` with the value in the gateway's .env keeps it out of the config"
            );
        }
    }
    if !env.is_empty() {
        raw.insert("env".into(), Value::Object(env));
    }
    let headers = pairs("header", &d.headers)?;
    if !headers.is_empty() {
        raw.insert("headers".into(), Value::Object(headers));
    }
    if let Some(share) = d.share {
        raw.insert("share".into(), share.into());
    }
    let server: ServerConfig =
        serde_json::from_value(Value::Object(raw)).map_err(|e| anyhow::anyhow!("invalid server definition: {e}"))?;
    Ok((server, Vec::new()))
}

/// What `servers add` does around the edit: start the server first
/// (`--test`), list it after (unless `--no-prefetch`).
struct Checks {
    test: bool,
    prefetch: bool,
}

fn add(
    config: &Path,
    socket: &Path,
    name: &str,
    d: Definition,
    scope: Scope,
    checks: Checks,
) -> anyhow::Result<ExitCode> {
    let (server, requires) = server_from(config, name, d)?;
    let (target, path) = target(config, scope)?;
    let change = install::plan_install(&path, target, name, &server)?;
    if checks.test {
        let mut with = load(config)?;
        with.servers.insert(name.to_string(), server.clone());
        match probe(config, with, name) {
            Ok(tools) => {
                anstream::println!("{GOOD}✓{GOOD:#} `{name}` started and lists {} tool(s)", tools.len());
                if !tools.is_empty() {
                    anstream::println!("  {DIM}{}{DIM:#}", tools.join(", "));
                }
            }
            Err(e) => {
                anstream::eprintln!("{}✗{:#} `{name}` did not start: {e:#}", table::BAD, table::BAD);
                eprintln!("nothing was written");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    write(&change, socket, &format!("added `{name}` to {}", path.display()))?;
    let missing: Vec<&String> = requires.iter().filter(|v| std::env::var_os(v.as_str()).is_none()).collect();
    if !missing.is_empty() {
        anstream::println!(
            "{WARN}it needs{WARN:#} {}: put {} in {} (or a workspace's .env)",
            missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            paths::gateway_dotenv(config).display()
        );
    }
    if target == Target::Workspace {
        let cwd = std::env::current_dir()?;
        let loaded = load(config)?;
        let root = workspace::root_of(&cwd, &loaded.workspace_markers);
        if !workspace::mapping_for(&loaded, &root).is_some_and(|(_, m)| m.trust) {
            anstream::println!(
                "{WARN}this workspace is not trusted{WARN:#}, so its own servers are not used until the config \
                 ({}) trusts it: `workspaces: {{ {:?}: {{ trust: true }} }}`",
                config.display(),
                root.display().to_string()
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    if checks.prefetch {
        print_prefetched(&prefetch(config, socket, &[name.to_string()]));
    }
    anstream::println!("{BOLD}`{name}` starts on its first call.{BOLD:#}");
    Ok(ExitCode::SUCCESS)
}

/// How long an edit waits for the new servers' listings before it leaves
/// them to their first use.
const PREFETCH_WAIT: Duration = Duration::from_secs(30);

/// One server's prefetch: how many tools it lists, or why it could not be listed now.
pub(super) type Prefetched = (String, Result<u64, String>);

/// Lists newly added servers so the catalog is warm before the first client
/// attaches: through the daemon on `socket` when one runs (it keeps its
/// catalog in memory and writes it back, starting each server as on its
/// first use), else in this process into the catalog on disk the next
/// daemon reads. A server that cannot be listed now is listed on its first
/// use, as always.
pub(super) fn prefetch(config: &Path, socket: &Path, names: &[String]) -> Vec<Prefetched> {
    if names.is_empty() {
        return Vec::new();
    }
    let rows = match control::request_here(socket, "prefetch", json!({ "servers": names }), PREFETCH_WAIT) {
        Ok(answer) => Ok(answer.unwrap_or_default()),
        Err(control::ControlError::NotRunning { .. }) => prefetch_here(config, names),
        Err(e) => Err(anyhow::anyhow!("asking the daemon: {e}")),
    };
    match rows {
        Ok(rows) => names
            .iter()
            .map(|name| {
                let row = rows.as_array().into_iter().flatten().find(|r| r["server"] == name.as_str());
                let listed = match row {
                    Some(row) if row["tools"].is_u64() => Ok(row["tools"].as_u64().unwrap_or_default()),
                    Some(row) => Err(row["error"].as_str().unwrap_or("no reason given").to_string()),
                    None => Err("no answer for it".to_string()),
                };
                (name.clone(), listed)
            })
            .collect(),
        Err(e) => names.iter().map(|name| (name.clone(), Err(format!("{e:#}")))).collect(),
    }
}

/// One line per prefetched server.
pub(super) fn print_prefetched(rows: &[Prefetched]) {
    for (name, listed) in rows {
        match listed {
            Ok(tools) => anstream::println!("{DIM}listed `{name}` ({tools} tool(s)) for the catalog{DIM:#}"),
            Err(e) => anstream::println!("{DIM}could not list `{name}` yet ({e}); it is on its first use{DIM:#}"),
        }
    }
}

/// With no daemon running: lists the servers in this process, as the daemon
/// would (this terminal's directory and environment), into the catalog on
/// disk the next daemon reads, so the first client's `tools/list` needs no
/// start; then stops them.
fn prefetch_here(config_path: &Path, names: &[String]) -> anyhow::Result<Value> {
    let config = load(config_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let cache = crate::catalog::ListingCache::load(&paths::catalog_cache_path());
        let gateway = crate::gateway::Gateway::new(config, config_path, Some(config_path.to_path_buf()), cache);
        let cwd = std::env::current_dir().ok();
        let env = crate::preamble::ClientEnv(Arc::new(std::env::vars().collect()));
        let asker = crate::gateway::Asker { cwd: cwd.as_deref(), env };
        let listed = tokio::time::timeout(PREFETCH_WAIT, gateway.prefetch(names, &asker)).await;
        gateway.shutdown_backends().await;
        match listed {
            Ok(listed) => listed.map_err(anyhow::Error::msg),
            Err(_) => bail!("no listing within {PREFETCH_WAIT:?}"),
        }
    })
}

/// Starts the server once, in this process, the way the daemon would (same
/// credentials: this terminal's environment, the gateway and workspace
/// `.env`), lists its tools and stops it. A spinner shows while it starts.
fn probe(config_path: &Path, config: Config, name: &str) -> anyhow::Result<Vec<String>> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("starting `{name}`…"));
    spinner.enable_steady_tick(Duration::from_millis(80));
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cache_dir = tempfile_dir()?;
    let result = runtime.block_on(async {
        let cache = crate::catalog::ListingCache::load(&cache_dir.join("catalog.json"));
        let gateway = crate::gateway::Gateway::new(config, config_path, Some(config_path.to_path_buf()), cache);
        let result = list_tools(&gateway, name).await;
        gateway.shutdown_backends().await;
        result
    });
    let _ = std::fs::remove_dir_all(&cache_dir);
    spinner.finish_and_clear();
    let tools = result?;
    anstream::println!("{DIM}started in {:.1} s{DIM:#}", started.elapsed().as_secs_f64());
    Ok(tools)
}

async fn list_tools(gateway: &Arc<crate::gateway::Gateway>, name: &str) -> anyhow::Result<Vec<String>> {
    let cwd = std::env::current_dir().ok();
    let context = gateway.session_context(cwd.as_deref(), None).map_err(anyhow::Error::msg)?;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = crate::sink::SessionSink::new(gateway.next_session_id(), tx);
    let env = crate::preamble::ClientEnv(Arc::new(std::env::vars().collect()));
    let mut session = crate::gateway::SessionInfo::new(sink, context, None, env);
    session.client_name = Some("mcp-gateway servers add --test".into());
    let backend = gateway.backend(name, &session).await?;
    let answer = backend.request("tools/list", json!({}), None).await?;
    if let Some(error) = answer.get("error") {
        bail!("tools/list failed: {error}");
    }
    Ok(answer["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect())
}

/// A private scratch directory for the probe's listing cache.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("mcp-gateway-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
