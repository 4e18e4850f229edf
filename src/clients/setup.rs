//! `mcp-gateway setup CLIENT`: one `mcp-gateway-connect` entry in the
//! client's config in place of the servers the gateway now runs.
//!
//! Only entries the gateway serves (same command, arguments and environment,
//! see [`super::import::served_by`]) are removed; anything else stays, with
//! the reason, so nothing a person relies on silently disappears.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::entry::{self, Parsed};
use super::import::{load_gateway, served_by};
use super::locations::{self, Env, Format, SourceFile};
use super::{Client, ClientsError, Scope, codex, jsonc};
use crate::paths;

/// The name of the entry `setup` adds (`mcp-gateway` when a server already
/// has it, and then the entry says so to the shim: see [`with_entry`]).
pub const ENTRY_NAME: &str = crate::catalog::budget::DEFAULT_ENTRY;

/// The shim's arguments for an entry named `name`: `--entry NAME` when that
/// is not [`ENTRY_NAME`]. Clients put the entry's name in front of every
/// tool name (`mcp__<entry>__`), so the gateway has to know it to keep the
/// whole name within 64 characters; a shim that does not say runs under
/// `gateway`.
pub fn with_entry(args: &[String], name: &str) -> Vec<String> {
    let mut args = args.to_vec();
    if name != ENTRY_NAME {
        args.extend(["--entry".to_string(), name.to_string()]);
    }
    args
}

/// An entry `setup` takes out: the gateway runs it now.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub name: String,
    /// Where in the file (`mcpServers`, `projects./src/app.mcpServers`).
    pub location: String,
    pub gateway_name: String,
}

/// An entry `setup` leaves in place, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub name: String,
    pub location: String,
    pub reason: String,
}

/// Everything `setup` would do to one file.
#[derive(Debug, Serialize)]
pub struct SetupPlan {
    pub client: Client,
    pub scope: Scope,
    pub file: PathBuf,
    /// The entry added for the shim, when there was none.
    pub added: Option<String>,
    /// An entry that already runs the shim.
    pub existing: Option<String>,
    pub command: String,
    /// The shim's arguments (`--socket PATH` for a socket a client's shim would not find by itself).
    pub args: Vec<String>,
    pub removed: Vec<Removed>,
    pub kept: Vec<Kept>,
    /// Entries the gateway serves in the client's file of the other scope (not touched).
    pub other_scope: Vec<String>,
    pub changed: bool,
    pub backup: Option<PathBuf>,
    #[serde(skip)]
    before: Option<String>,
    #[serde(skip)]
    after: String,
}

/// The file `setup` edits for a client and scope.
pub fn target(client: Client, scope: Scope, env: &Env) -> Result<SourceFile, ClientsError> {
    locations::file_for(client, scope, env).ok_or_else(|| {
        let only = locations::file_for(client, Scope::User, env).map(|f| env.show(&f.path)).unwrap_or_default();
        ClientsError::Usage(format!("{client} has no project scope: it reads only {only}; use --scope user"))
    })
}

/// The shim's command: the `mcp-gateway-connect` beside this binary when it
/// exists (clients often start servers without the user's PATH), else the bare name.
pub fn connect_command() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| std::fs::canonicalize(exe).ok())
        .map(|exe| exe.with_file_name(entry::SHIM))
        .filter(|shim| shim.is_file())
        .map_or_else(|| entry::SHIM.to_string(), |shim| shim.display().to_string())
}

/// The shim's arguments: `--socket PATH` when the socket this command finds
/// (through `MCP_GATEWAY_SOCKET` or `XDG_RUNTIME_DIR`) is not the one a shim
/// with none of those variables finds ([`paths::default_socket_path`]).
/// Clients choose what their servers' environment holds (Codex passes a short
/// whitelist, the TypeScript SDK less), so the entry itself has to say where
/// the daemon is, or the shim would start a second daemon elsewhere.
pub fn connect_args() -> Vec<String> {
    let socket = paths::socket_path(None);
    if socket == paths::default_socket_path() {
        Vec::new()
    } else {
        vec!["--socket".into(), socket.display().to_string()]
    }
}

/// The shim's command for a project's file, which others share (it is usually
/// committed): the bare `mcp-gateway-connect` when `PATH` finds this very
/// shim, so the file works on every machine where the gateway is installed;
/// else the absolute path, as in the user's own file.
pub fn shared_connect_command() -> String {
    let own = connect_command();
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(entry::SHIM)).find(|c| c.is_file()))
        .and_then(|shim| std::fs::canonicalize(shim).ok());
    match found {
        Some(found) if own == entry::SHIM || Path::new(&own) == found => entry::SHIM.to_string(),
        _ => own,
    }
}

/// The client's entry for the shim.
fn shim_entry(client: Client, command: &str, args: &[String]) -> Value {
    match client {
        Client::ClaudeCode | Client::Vscode => json!({"type": "stdio", "command": command, "args": args}),
        Client::Cursor | Client::ClaudeDesktop | Client::Codex | Client::GeminiCli => {
            json!({"command": command, "args": args})
        }
        // Copilot CLI offers the model only the tools `tools` lists (`*`: all).
        Client::CopilotCli => json!({"type": "local", "command": command, "args": args, "tools": ["*"]}),
        Client::Opencode => {
            let words: Vec<&str> = std::iter::once(command).chain(args.iter().map(String::as_str)).collect();
            json!({"type": "local", "command": words, "enabled": true})
        }
    }
}

/// What the user still has to do after `setup` before the client uses the
/// gateway (each client has its own rule for servers it was just given).
pub fn next_steps(client: Client, scope: Scope) -> &'static str {
    match (client, scope) {
        (Client::ClaudeCode, Scope::Project) => {
            "Claude Code asks before it uses a project's .mcp.json servers: start `claude` in this directory and \
             approve `gateway` (until then `claude mcp list` shows it as pending approval)."
        }
        (Client::GeminiCli, _) => {
            "Gemini CLI starts MCP servers only in folders you trust: run `gemini` in your project and trust it \
             (or list it in ~/.gemini/trustedFolders.json); `gemini mcp list` shows `gateway` as Connected once it does."
        }
        (Client::Codex, _) => {
            "Codex starts servers with only a few of your variables (HOME, PATH, …): put the credentials the \
             gateway's servers need in the gateway .env (`mcp-gateway import` does), not in your shell."
        }
        _ => "",
    }
}

/// The key of the top-level servers map in a JSON format.
fn servers_key(format: Format) -> &'static str {
    match format {
        Format::VscodeServers => "servers",
        Format::CodexToml => "mcp_servers",
        Format::McpServers | Format::ClaudeJson => "mcpServers",
        Format::OpencodeMcp => "mcp",
    }
}

/// What to paste into the client's config by hand (`--print`).
pub fn snippet(
    client: Client,
    scope: Scope,
    env: &Env,
    command: &str,
    args: &[String],
) -> Result<String, ClientsError> {
    let file = target(client, scope, env)?;
    let body = if file.format == Format::CodexToml {
        codex::snippet(ENTRY_NAME, command, args)
    } else {
        let mut servers = serde_json::Map::new();
        servers.insert(ENTRY_NAME.into(), shim_entry(client, command, args));
        let mut top = serde_json::Map::new();
        top.insert(servers_key(file.format).into(), Value::Object(servers));
        jsonc::render(&Value::Object(top), "  ")
    };
    Ok(format!("# {} ({} scope): {}\n{body}", client, scope, env.show(&file.path)))
}

/// Works out the rewrite of the client's file for `scope`.
pub fn plan(
    client: Client,
    scope: Scope,
    config: &Path,
    env: &Env,
    command: &str,
    args: &[String],
) -> Result<SetupPlan, ClientsError> {
    let file = target(client, scope, env)?;
    let (mut servers, dotenv) = load_gateway(config)?;
    // A disabled server is not served: its client entry stays.
    servers.retain(|_, server| server.enabled);
    let before = super::read_optional(&file.path)?;
    let found = super::read_servers(&file, env)?;
    let mut plan = SetupPlan {
        client,
        scope,
        file: file.path.clone(),
        added: None,
        existing: None,
        command: command.to_string(),
        args: args.to_vec(),
        removed: Vec::new(),
        kept: Vec::new(),
        other_scope: Vec::new(),
        changed: false,
        backup: None,
        before: before.clone(),
        after: String::new(),
    };
    let mut remove: Vec<(Vec<String>, String)> = Vec::new();
    for f in &found {
        let location = f.location.join(".");
        match &f.parsed {
            Parsed::Shim => plan.existing = Some(f.name.clone()),
            Parsed::Server { definition, .. } => match served_by(definition, &servers, &dotenv) {
                Some(gateway_name) => {
                    remove.push((f.location.clone(), f.name.clone()));
                    plan.removed.push(Removed { name: f.name.clone(), location, gateway_name });
                }
                None => plan.kept.push(Kept {
                    name: f.name.clone(),
                    location,
                    reason: format!("not in the gateway yet; run `mcp-gateway import --from {client}` first"),
                }),
            },
            Parsed::Skip(reason) => plan.kept.push(Kept { name: f.name.clone(), location, reason: reason.clone() }),
        }
    }
    let other = match scope {
        Scope::User => Scope::Project,
        Scope::Project => Scope::User,
    };
    if let Some(other_file) = locations::file_for(client, other, env).filter(|o| o.path != file.path) {
        for f in super::read_servers(&other_file, env).unwrap_or_default() {
            if let Parsed::Server { definition, .. } = &f.parsed
                && served_by(definition, &servers, &dotenv).is_some()
            {
                plan.other_scope.push(format!("{} ({})", f.name, env.show(&other_file.path)));
            }
        }
    }
    let name = if plan.kept.iter().any(|k| k.name == ENTRY_NAME) { "mcp-gateway" } else { ENTRY_NAME };
    let add = plan.existing.is_none().then_some(name);
    plan.added = add.map(str::to_string);
    plan.args = with_entry(args, name);
    let args = plan.args.as_slice();
    let text = before.clone().unwrap_or_default();
    plan.after = if file.format == Format::CodexToml {
        let names: Vec<String> = remove.iter().map(|(_, n)| n.clone()).collect();
        codex::rewrite(&file, &text, &names, add.map(|n| (n, command, args)))?
    } else {
        let parsed = jsonc::parse(&file.path, &text)?;
        let entry = add.map(|name| (servers_key(file.format), name, shim_entry(client, command, args)));
        if parsed.has_comments {
            // Edited in place: the comments (and trailing commas) stay.
            let add = entry.as_ref().map(|(key, name, value)| (*key, *name, value));
            jsonc::edit(&file.path, &text, &remove, add)?
        } else {
            let mut value = parsed.value;
            for (location, name) in &remove {
                if let Some(map) = get_path_mut(&mut value, location).and_then(Value::as_object_mut) {
                    map.shift_remove(name);
                }
            }
            if let Some((key, name, entry)) = entry {
                let object =
                    value.as_object_mut().ok_or_else(|| ClientsError::file(&file.path, "not a JSON object"))?;
                let servers = object.entry(key).or_insert_with(|| json!({}));
                let servers = servers
                    .as_object_mut()
                    .ok_or_else(|| ClientsError::file(&file.path, format!("`{key}` is not an object")))?;
                servers.insert(name.to_string(), entry);
            }
            jsonc::render(&value, &parsed.indent)
        }
    };
    plan.changed = before.as_deref() != Some(plan.after.as_str());
    Ok(plan)
}

fn get_path_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, key| v.get_mut(key))
}

/// Writes the rewrite, keeping a backup of the previous file.
pub fn apply(plan: &mut SetupPlan) -> Result<(), ClientsError> {
    if !plan.changed {
        return Ok(());
    }
    plan.backup = super::write::replace(&plan.file, plan.before.as_deref(), &plan.after)?;
    Ok(())
}

/// The preview people read before saying yes.
pub fn render(plan: &SetupPlan, env: &Env) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let file = env.show(&plan.file);
    if !plan.changed {
        let _ = writeln!(
            out,
            "{file} already uses the gateway (`{}`); nothing to change.",
            plan.existing.as_deref().unwrap_or("?")
        );
    } else {
        let _ = writeln!(out, "Will rewrite {file} ({} {} scope):", plan.client, plan.scope);
        if let Some(name) = &plan.added {
            let _ = writeln!(
                out,
                "  + {name}: {}",
                std::iter::once(&plan.command).chain(&plan.args).cloned().collect::<Vec<_>>().join(" ")
            );
        }
        if let Some(name) = &plan.existing {
            let _ = writeln!(out, "  = {name}: already runs mcp-gateway-connect");
        }
        for r in &plan.removed {
            let _ = writeln!(out, "  - {} [{}]: the gateway runs it as `{}`", r.name, r.location, r.gateway_name);
        }
        let backup = match &plan.before {
            Some(before) => {
                format!("the current file is kept as {}", env.show(&super::write::backup_path(&plan.file, before)))
            }
            None => "the file is new".to_string(),
        };
        let _ = writeln!(out, "Everything else in the file stays as it is; {backup}.");
    }
    if !plan.kept.is_empty() {
        let _ = writeln!(out, "\nLeft in place:");
        for k in &plan.kept {
            let _ = writeln!(out, "  = {} [{}]: {}", k.name, k.location, k.reason);
        }
    }
    if !plan.other_scope.is_empty() {
        let other = if plan.scope == Scope::User { "project" } else { "user" };
        let _ = writeln!(
            out,
            "\nAlso served by the gateway but left alone in the {other} scope: {} (run `mcp-gateway setup {} --scope {other}` for those).",
            plan.other_scope.join(", "),
            plan.client
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A home and project with the gateway running `memory`, and `files`
    /// (relative path, text) written under the home.
    fn world(files: &[(&str, &str)]) -> (tempfile::TempDir, Env, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cwd = dir.path().join("project");
        std::fs::create_dir_all(&cwd).unwrap();
        let config = home.join(".mcp-gateway/config.yaml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(
            &config,
            "servers:\n  memory:\n    command: npx\n    args: [-y, '@modelcontextprotocol/server-memory']\n",
        )
        .unwrap();
        for (path, text) in files {
            let path = home.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        (dir, Env { home, cwd }, config)
    }

    #[test]
    fn copilot_cli_gets_a_local_entry_offering_every_tool() {
        let (_dir, env, config) = world(&[(
            ".copilot/mcp-config.json",
            r#"{"mcpServers": {
                "memory": {"type": "local", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"], "tools": ["*"]},
                "other": {"type": "local", "command": "other-server", "tools": ["*"]}}}"#,
        )]);
        let mut plan = plan(Client::CopilotCli, Scope::User, &config, &env, "/bin/mcp-gateway-connect", &[]).unwrap();
        assert_eq!(plan.file, env.home.join(".copilot/mcp-config.json"));
        assert_eq!(plan.removed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["memory"]);
        assert_eq!(plan.kept.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["other"]);
        apply(&mut plan).unwrap();
        let after: Value = serde_json::from_str(&std::fs::read_to_string(&plan.file).unwrap()).unwrap();
        assert_eq!(
            after["mcpServers"]["gateway"],
            json!({"type": "local", "command": "/bin/mcp-gateway-connect", "args": [], "tools": ["*"]})
        );
        assert!(after["mcpServers"].get("memory").is_none() && after["mcpServers"].get("other").is_some());
        assert!(plan.backup.as_ref().is_some_and(|b| b.exists()), "the old file is kept");
        // Set up once, the file reads as the gateway's: nothing more to do.
        let again = super::plan(Client::CopilotCli, Scope::User, &config, &env, "/bin/mcp-gateway-connect", &[]);
        assert!(!again.unwrap().changed);
        assert!(target(Client::CopilotCli, Scope::Project, &env).is_err(), "its project file is Claude Code's");
    }

    /// When `gateway` is another server's name, the entry is `mcp-gateway`
    /// and tells the shim so: Claude Code puts `mcp__mcp-gateway__` in front
    /// of every tool, four characters more than the gateway otherwise counts on.
    #[test]
    fn an_entry_under_another_name_tells_the_shim() {
        let (_dir, env, config) =
            world(&[(".claude.json", r#"{"mcpServers": {"gateway": {"command": "someone-elses-gateway"}}}"#)]);
        let mut plan = plan(Client::ClaudeCode, Scope::User, &config, &env, "/bin/mcp-gateway-connect", &[]).unwrap();
        assert_eq!(plan.added.as_deref(), Some("mcp-gateway"));
        apply(&mut plan).unwrap();
        let after: Value = serde_json::from_str(&std::fs::read_to_string(&plan.file).unwrap()).unwrap();
        assert_eq!(after["mcpServers"]["mcp-gateway"]["args"], json!(["--entry", "mcp-gateway"]));
        assert_eq!(after["mcpServers"]["gateway"]["command"], "someone-elses-gateway");
        assert_eq!(with_entry(&["--socket".into(), "/s".into()], ENTRY_NAME), ["--socket", "/s"]);
    }

    #[test]
    fn opencode_gets_its_command_array_and_keeps_comments() {
        let (_dir, env, config) = world(&[(
            ".config/opencode/opencode.jsonc",
            "{\n  // my models\n  \"model\": \"x/y\",\n  \"mcp\": {\n    \"memory\": {\"type\": \"local\", \"command\": \
             [\"npx\", \"-y\", \"@modelcontextprotocol/server-memory\"], \"enabled\": true},\n    \"off\": \
             {\"type\": \"local\", \"command\": [\"npx\", \"y\"], \"enabled\": false},\n  },\n}\n",
        )]);
        let args = vec!["--socket".to_string(), "/s.sock".to_string()];
        let mut plan = plan(Client::Opencode, Scope::User, &config, &env, "mcp-gateway-connect", &args).unwrap();
        assert_eq!(plan.file, env.home.join(".config/opencode/opencode.jsonc"), "the .jsonc that exists");
        assert_eq!(plan.removed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["memory"]);
        assert!(plan.kept.iter().any(|k| k.name == "off" && k.reason.contains("disabled")));
        apply(&mut plan).unwrap();
        let text = std::fs::read_to_string(&plan.file).unwrap();
        assert!(text.contains("// my models"), "{text}");
        let after = jsonc::parse(&plan.file, &text).unwrap().value;
        assert_eq!(
            after["mcp"]["gateway"],
            json!({"type": "local", "command": ["mcp-gateway-connect", "--socket", "/s.sock"], "enabled": true})
        );
        assert_eq!(after["model"], "x/y");
        // The gateway's own entry reads back as the shim.
        let found = super::super::read_servers(&target(Client::Opencode, Scope::User, &env).unwrap(), &env).unwrap();
        assert!(found.iter().any(|f| f.name == "gateway" && f.parsed == Parsed::Shim));
        let print = snippet(Client::Opencode, Scope::Project, &env, "mcp-gateway-connect", &[]).unwrap();
        assert!(print.contains("\"mcp\"") && print.contains("./opencode.json"), "{print}");
    }

    #[test]
    fn opencode_servers_import_with_their_environment() {
        let (_dir, env, config) = world(&[]);
        std::fs::write(
            env.cwd.join("opencode.json"),
            r#"{"mcp": {
                "search": {"type": "local", "command": ["search-mcp", "--fast"], "environment": {"SEARCH_API_KEY": "sk-abcdefgh12345678"}},
                "docs": {"type": "remote", "url": "https://docs.example/mcp", "headers": {"X-Team": "a"}}}}"#,
        )
        .unwrap();
        let plan = super::super::import::plan(Some(Client::Opencode), &config, &env).unwrap();
        let search = plan.add.iter().find(|p| p.name == "search").expect("search imported");
        assert_eq!(search.definition["command"], "search-mcp");
        assert_eq!(search.definition["args"], json!(["--fast"]));
        assert!(!search.definition.to_string().contains("sk-abcdefgh"), "the secret moves to the .env");
        assert!(search.moved_to_env.iter().any(|m| m.field.contains("SEARCH_API_KEY")), "{:?}", search.moved_to_env);
        let docs = plan.add.iter().find(|p| p.name == "docs").expect("docs imported");
        assert_eq!(docs.definition["url"], "https://docs.example/mcp");
    }
}
