//! Lazy discovery: a handful of meta-tools in place of every backend tool.
//!
//! A client with fifteen servers would otherwise carry hundreds of tool schemas
//! in every message. With `tools: lazy` it sees these few instead (under 800
//! tokens together, whatever is configured: a test measures it) and finds,
//! reads and calls the real tools through them. Calls go through the same
//! catalog, so allow/deny lists hold here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catalog::{Catalog, ServerListing, search};
use crate::gateway::{Gateway, SessionInfo};
use crate::install::{self, Change, Target};

/// The meta-tools, as `tools/list` shows them.
pub fn definitions() -> Vec<Value> {
    let none = json!({"type": "object", "properties": {}});
    let scoped = json!({"type": "object", "properties": {
        "server": {"type": "string"},
        "scope": {"enum": ["workspace", "global"]},
        "confirm": {"type": "string", "description": "code from the first call (global)"}
    }, "required": ["server", "scope"]});
    vec![
        json!({"name": "mcpgw_servers", "description": "List the MCP servers behind this gateway: state, tool count, purpose.", "inputSchema": none}),
        json!({"name": "mcpgw_search", "description": "Find tools across all servers by what they do; best matches first.",
               "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "description": "default 8"}}, "required": ["query"]}}),
        json!({"name": "mcpgw_describe", "description": "A tool's full description and input schema.",
               "inputSchema": {"type": "object", "properties": {"tool": {"type": "string"}}, "required": ["tool"]}}),
        json!({"name": "mcpgw_call", "description": "Call a tool with its arguments; returns the tool's own result.",
               "inputSchema": {"type": "object", "properties": {"tool": {"type": "string"}, "arguments": {"type": "object"}}, "required": ["tool"]}}),
        json!({"name": "mcpgw_catalog", "description": "Servers that can be installed, and the variables they need.", "inputSchema": none}),
        json!({"name": "mcpgw_install", "description": "Add a catalog server. workspace: this project only. global: every project; needs confirmation (first call gives a code to pass as confirm).", "inputSchema": scoped}),
        json!({"name": "mcpgw_remove", "description": "Remove a server (scopes and confirmation as mcpgw_install).", "inputSchema": scoped}),
        json!({"name": "mcpgw_help", "description": "How to use these tools.", "inputSchema": none}),
    ]
}

/// The meta-tools' names (a test checks they match [`definitions`]). Checked on
/// every `tools/call`, so no schemas are built for it.
const NAMES: [&str; 8] = [
    "mcpgw_servers",
    "mcpgw_search",
    "mcpgw_describe",
    "mcpgw_call",
    "mcpgw_catalog",
    "mcpgw_install",
    "mcpgw_remove",
    "mcpgw_help",
];

pub fn is_meta(name: &str) -> bool {
    NAMES.contains(&name)
}

const HELP: &str = "This gateway hides its servers' tools behind a few meta-tools to save context.\n\
1. mcpgw_search {query}: find tools by what they do (or mcpgw_servers for an overview).\n\
2. mcpgw_describe {tool}: read a tool's input schema before the first call.\n\
3. mcpgw_call {tool, arguments}: call it; the result is the tool's own.\n\
Tool names look like <server>__<tool>. mcpgw_catalog lists servers that can be added with \
mcpgw_install (scope workspace for this project, global for all, which asks for confirmation).";

/// A global change waiting for its confirmation code.
struct Unconfirmed {
    action: String,
    change: Change,
    expires: Instant,
}

/// Global changes a session prepared and has not confirmed yet, by code. Each
/// session holds its own: a code is only good in the session it was shown to,
/// and it goes with that session.
#[derive(Default)]
pub struct Confirmations {
    pending: Mutex<HashMap<String, Unconfirmed>>,
}

impl Confirmations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Unconfirmed>> {
        crate::lock(&self.pending)
    }
}

const CONFIRMATION_TTL: Duration = Duration::from_secs(600);

fn text(text: impl Into<String>) -> Value {
    json!({"result": {"content": [{"type": "text", "text": text.into()}]}})
}

fn tool_error(text: impl Into<String>) -> Value {
    json!({"result": {"content": [{"type": "text", "text": text.into()}], "isError": true}})
}

fn first_sentence(description: &str, max: usize) -> String {
    let line = description.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
    let sentence = line.split(". ").next().unwrap_or(line);
    if sentence.chars().count() <= max {
        sentence.to_string()
    } else {
        format!("{}…", sentence.chars().take(max).collect::<String>())
    }
}

/// Something that can ask the session's client a question (elicitation).
pub trait Ask: Send + Sync {
    /// Whether the client declared form elicitation.
    fn can_elicit(&self) -> bool;
    /// Sends `elicitation/create` and returns the client's result (None: no answer).
    fn elicit(&self, params: Value) -> futures_util::future::BoxFuture<'_, Option<Value>>;
}

/// Runs a meta-tool; returns a response body (`result` or `error`) without an id.
pub async fn call(
    gateway: &Arc<Gateway>,
    session: &SessionInfo,
    ask: &dyn Ask,
    confirmations: &Confirmations,
    name: &str,
    params: &Value,
) -> Value {
    let args = params.get("arguments").cloned().unwrap_or(Value::Null);
    let arg = |key: &str| args.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    match name {
        "mcpgw_servers" => servers(gateway, session).await,
        "mcpgw_search" => {
            let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(8).clamp(1, 50) as usize;
            search_tools(gateway, session, &arg("query"), limit).await
        }
        "mcpgw_describe" => describe(gateway, session, &arg("tool")).await,
        "mcpgw_call" => {
            let mut forwarded =
                json!({"name": arg("tool"), "arguments": args.get("arguments").cloned().unwrap_or(json!({}))});
            if let Some(meta) = params.get("_meta") {
                forwarded["_meta"] = meta.clone(); // progress tokens reach the real call
            }
            call_tool(gateway, session, forwarded).await
        }
        "mcpgw_catalog" => catalog(gateway, session),
        "mcpgw_install" | "mcpgw_remove" => {
            change(gateway, session, ask, confirmations, name == "mcpgw_remove", &args).await
        }
        "mcpgw_help" => text(HELP),
        other => tool_error(format!("Unknown meta-tool `{other}`")),
    }
}

async fn servers(gateway: &Arc<Gateway>, session: &SessionInfo) -> Value {
    let catalog = gateway.catalog(session).await;
    let running = gateway.running_servers();
    let registry = gateway.registry();
    let known: HashMap<String, Arc<ServerListing>> = gateway.known_listings(session).into_iter().collect();
    let mut lines = Vec::new();
    for (name, config) in gateway.servers_for(session) {
        let prefix = format!("{name}__");
        let tools = catalog.tools.iter().filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with(&prefix))).count();
        let state = match catalog.unavailable.iter().find(|(s, _)| *s == name) {
            Some((_, why)) => format!("unavailable: {why}"),
            None if running.contains(&name) => "running".into(),
            None => "not started".into(),
        };
        let purpose = config
            .description
            .clone()
            .or_else(|| known.get(&name).and_then(|l| l.instructions().map(|i| first_sentence(i, 100))))
            .or_else(|| registry.get(&name).map(|e| e.description.clone()))
            .unwrap_or_default();
        lines.push(format!("- {name} [{state}, {tools} tools] {purpose}"));
    }
    if lines.is_empty() {
        return text("No servers are configured. See mcpgw_catalog and mcpgw_install.");
    }
    text(lines.join("\n"))
}

async fn search_tools(gateway: &Arc<Gateway>, session: &SessionInfo, query: &str, limit: usize) -> Value {
    let catalog = gateway.catalog(session).await;
    // What this client cannot answer the questions of is not offered.
    let name = |i: &usize| catalog.tools[*i]["name"].as_str().unwrap_or_default();
    let found: Vec<usize> = search::rank(&catalog.tools, query, catalog.tools.len())
        .into_iter()
        .filter(|i| gateway.unanswerable(session.id, &catalog, name(i)).is_none())
        .take(limit)
        .collect();
    if found.is_empty() {
        return text(format!("No tool matches `{query}`; try other words, or mcpgw_servers."));
    }
    let lines: Vec<String> = found
        .into_iter()
        .map(|i| {
            let tool = &catalog.tools[i];
            let description = tool["description"].as_str().unwrap_or_default();
            format!("{} — {}", tool["name"].as_str().unwrap_or_default(), first_sentence(description, 110))
        })
        .collect();
    text(lines.join("\n"))
}

/// An unknown tool name: suggestions so a model can correct itself.
fn unknown(catalog: &Catalog, name: &str) -> Value {
    let mut suggestions: Vec<String> = catalog.similar_tools(name, 3).into_iter().map(str::to_string).collect();
    for i in search::rank(&catalog.tools, name, 3) {
        let candidate = catalog.tools[i]["name"].as_str().unwrap_or_default().to_string();
        if !suggestions.contains(&candidate) {
            suggestions.push(candidate);
        }
    }
    suggestions.truncate(4);
    let hint = if suggestions.is_empty() {
        " Use mcpgw_search to find tools.".to_string()
    } else {
        format!(" Did you mean {}?", suggestions.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
    };
    if let Some((server, why)) = catalog.unavailable_for(name) {
        return tool_error(format!("Server `{server}` is unavailable: {why}"));
    }
    tool_error(format!("Unknown tool `{name}`.{hint}"))
}

async fn describe(gateway: &Arc<Gateway>, session: &SessionInfo, name: &str) -> Value {
    let catalog = gateway.catalog_for_name(session, name).await;
    match catalog.tools.iter().find(|t| t["name"] == name) {
        Some(tool) => text(serde_json::to_string_pretty(tool).unwrap_or_default()),
        None => unknown(&catalog, name),
    }
}

async fn call_tool(gateway: &Arc<Gateway>, session: &SessionInfo, mut params: Value) -> Value {
    let name = params["name"].as_str().unwrap_or_default().to_string();
    // A call waits for its own server only, not for every server to be listed.
    let catalog = gateway.catalog_for_name(session, &name).await;
    let Some(target) = catalog.tool(&name).cloned() else { return unknown(&catalog, &name) };
    if let Some(missing) = gateway.unanswerable(session.id, &catalog, &name) {
        return tool_error(crate::gateway::unanswerable_message(&name, &missing));
    }
    params["name"] = Value::String(target.name);
    match gateway.forward(&target.server, "tools/call", params, session).await {
        // The server wants a login (or more scopes): the meta-tool's caller
        // hears why and the command, as a tool error.
        Ok(response) => match super::LoginRefusal::of(&response) {
            Some(refusal) => tool_error(refusal.why),
            None => response,
        },
        Err(e) => tool_error(e.to_string()),
    }
}

fn catalog(gateway: &Arc<Gateway>, session: &SessionInfo) -> Value {
    let installed: Vec<String> = gateway.servers_for(session).into_iter().map(|(n, _)| n).collect();
    let lines: Vec<String> = gateway
        .registry()
        .iter()
        .map(|(name, entry)| {
            let needs = if entry.requires.is_empty() {
                String::new()
            } else {
                format!(" (needs {})", entry.requires.join(", "))
            };
            let mark = if installed.contains(name) { " [installed]" } else { "" };
            format!("- {name}{mark}: {}{needs}", entry.description)
        })
        .collect();
    text(lines.join("\n"))
}

async fn change(
    gateway: &Arc<Gateway>,
    session: &SessionInfo,
    ask: &dyn Ask,
    confirmations: &Confirmations,
    remove: bool,
    args: &Value,
) -> Value {
    let server = args["server"].as_str().unwrap_or_default();
    let scope = args["scope"].as_str().unwrap_or_default();
    let verb = if remove { "remove" } else { "install" };
    let action = format!("{verb} {server} {scope}");
    // A confirmed global change: apply exactly what was shown.
    if let Some(code) = args["confirm"].as_str() {
        let pending = {
            let mut pending = confirmations.lock();
            pending.retain(|_, p| p.expires > Instant::now());
            match pending.get(code) {
                Some(p) if p.action == action => pending.remove(code),
                _ => None,
            }
        };
        return match pending {
            Some(p) => finish(gateway, session, server, remove, Target::Config, &p.change),
            None => tool_error(
                "That confirmation code is unknown, expired, or for another change; call again without confirm.",
            ),
        };
    }
    let (target, path) = match scope {
        "workspace" => (Target::Workspace, session.workspace.join(crate::config::WORKSPACE_FILE)),
        "global" => (Target::Config, gateway.config_path()),
        _ => return tool_error("scope must be `workspace` or `global`"),
    };
    let planned = if remove {
        install::plan_remove(&path, target, server)
    } else {
        let registry = gateway.registry();
        let Some(entry) = registry.get(server) else {
            let names: Vec<&String> = registry.keys().collect();
            return tool_error(format!("`{server}` is not in the catalog; it has: {names:?}"));
        };
        install::plan_install(&path, target, server, &entry.server)
    };
    let change = match planned {
        Ok(change) => change,
        Err(e) => return tool_error(e.to_string()),
    };
    if target == Target::Workspace {
        return finish(gateway, session, server, remove, target, &change);
    }
    let question = format!(
        "{} `{server}` {} the global config {}:\n{}",
        if remove { "Remove" } else { "Add" },
        if remove { "from" } else { "to" },
        path.display(),
        change.summary
    );
    if ask.can_elicit() {
        let answer = ask
            .elicit(json!({
                "message": question,
                "requestedSchema": {"type": "object", "properties": {"apply": {"type": "boolean", "title": "Apply this change"}}, "required": ["apply"]},
            }))
            .await;
        let accepted = answer.as_ref().is_some_and(|a| a["action"] == "accept" && a["content"]["apply"] == true);
        return if accepted {
            finish(gateway, session, server, remove, target, &change)
        } else {
            text("Not changed: the user did not confirm.")
        };
    }
    let code = gateway.confirmation_code();
    confirmations
        .lock()
        .insert(code.clone(), Unconfirmed { action, change, expires: Instant::now() + CONFIRMATION_TTL });
    text(format!(
        "{question}\n\nNothing was changed. To apply it, call {} again with the same server and scope and confirm: \"{code}\" (valid 10 minutes, this session only).",
        if remove { "mcpgw_remove" } else { "mcpgw_install" }
    ))
}

fn finish(
    gateway: &Arc<Gateway>,
    session: &SessionInfo,
    server: &str,
    remove: bool,
    target: Target,
    change: &Change,
) -> Value {
    let backup = match install::apply(change) {
        Ok(backup) => backup,
        Err(e) => return tool_error(e.to_string()),
    };
    match target {
        Target::Config => gateway.reload(),
        Target::Workspace => gateway.workspace_changed(),
    }
    let mut message = format!(
        "{} `{server}` {} {}{}.",
        if remove { "Removed" } else { "Installed" },
        if remove { "from" } else { "in" },
        change.path.display(),
        backup.map(|b| format!(" (previous version kept as {})", b.display())).unwrap_or_default()
    );
    if !remove {
        let missing: Vec<String> = gateway
            .registry()
            .get(server)
            .map(|e| e.requires.iter().filter(|v| !gateway.variable_is_set(session, v)).cloned().collect())
            .unwrap_or_default();
        if !missing.is_empty() {
            message.push_str(&format!(
                " It needs {} which {} not set: put {} in {} or the gateway's .env.",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                if missing.len() == 1 { "it" } else { "them" },
                session.workspace.join(".env").display()
            ));
        }
        if target == Target::Workspace && !gateway.workspace_trusted(session) {
            message.push_str(&format!(
                " This workspace is not trusted, so its own servers are not used until the config says `workspaces: {{ {:?}: {{ trust: true }} }}`.",
                session.workspace.display().to_string()
            ));
        } else {
            message.push_str(" It starts on its first call.");
        }
    }
    text(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_tools_stay_small() {
        let bytes = serde_json::to_string(&json!({"tools": definitions()})).unwrap().len();
        assert!(bytes / 4 < 800, "{bytes} bytes is about {} tokens", bytes / 4);
        assert!(definitions().iter().all(|d| d["name"].as_str().unwrap().starts_with("mcpgw_")));
        assert!(is_meta("mcpgw_call") && !is_meta("mcpgw_nope") && !is_meta("call"));
        let definitions = definitions();
        let names: Vec<&str> = definitions.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, NAMES, "the name list and the definitions agree");
    }

    #[test]
    fn first_sentences_are_short() {
        assert_eq!(first_sentence("Read a file. Then more.", 50), "Read a file");
        assert_eq!(first_sentence("\n  abc", 50), "abc");
        assert_eq!(first_sentence("abcdef", 3), "abc…");
    }
}
