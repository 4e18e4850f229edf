//! The JSON dialects' server entries (Claude Code, Cursor, VS Code, Claude
//! Desktop, Gemini CLI, Copilot CLI, opencode), turned into the gateway's terms.
//!
//! Clients disagree on details: VS Code and Cursor write `${env:X}`,
//! `${userHome}` and `${workspaceFolder}`, VS Code prompts for `${input:x}`,
//! Claude Code writes `${X}` and `${X:-default}` as the gateway does, Codex
//! has no variables but `env_vars` and `bearer_token_env_var`. Everything is
//! translated here, so the rest of the import compares like with like.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::entry::{Definition, Found, Parsed, runs_shim, var_name};
use super::locations::{Env, Format, SourceFile};
use super::{Client, ClientsError, Scope, jsonc};

/// The servers a JSON client file's text defines.
pub fn read(source: &SourceFile, text: &str, env: &Env) -> Result<Vec<Found>, ClientsError> {
    let file = jsonc::parse(&source.path, text)?;
    let project = (source.scope == Scope::Project).then(|| env.cwd.clone());
    let mut found = Vec::new();
    let inputs = vscode_inputs(&file.value);
    for (location, project) in server_maps(source.format, &file.value, env, project) {
        let Some(map) = get_path(&file.value, &location).and_then(Value::as_object) else { continue };
        let inputs = inputs.clone();
        let context = Context { client: source.client, project, inputs };
        for (name, entry) in map {
            found.push(Found {
                source: source.clone(),
                location: location.clone(),
                name: name.clone(),
                parsed: from_json(entry, &context),
            });
        }
    }
    Ok(found)
}

/// The maps of servers a JSON file holds, with the project directory each belongs to.
pub fn server_maps(
    format: Format,
    value: &Value,
    env: &Env,
    project: Option<PathBuf>,
) -> Vec<(Vec<String>, Option<PathBuf>)> {
    match format {
        Format::VscodeServers => vec![(vec!["servers".into()], project)],
        Format::McpServers => vec![(vec!["mcpServers".into()], project)],
        Format::ClaudeJson => {
            let mut maps = vec![(vec!["mcpServers".to_string()], None)];
            // Claude Code's "local" servers: per project directory, ours and our parents'.
            for dir in env.cwd.ancestors() {
                let key = dir.display().to_string();
                if value.get("projects").and_then(|p| p.get(&key)).is_some() {
                    maps.push((vec!["projects".into(), key, "mcpServers".into()], Some(dir.to_path_buf())));
                }
            }
            maps
        }
        Format::CodexToml => vec![(vec!["mcp_servers".into()], None)],
        Format::OpencodeMcp => vec![(vec!["mcp".into()], project)],
    }
}

/// The value at a path of object keys.
pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn vscode_inputs(value: &Value) -> Vec<String> {
    value
        .get("inputs")
        .and_then(Value::as_array)
        .map(|inputs| inputs.iter().filter_map(|i| i.get("id")?.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// What translating one entry needs to know.
struct Context {
    client: Client,
    /// The project directory, for `${workspaceFolder}` and relative paths.
    project: Option<PathBuf>,
    /// VS Code's declared `inputs` (ids).
    inputs: Vec<String>,
}

/// A JSON scalar as a string (numbers and booleans are written as text).
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_map(value: Option<&Value>) -> IndexMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), as_text(v)?))).collect())
        .unwrap_or_default()
}

fn from_json(entry: &Value, context: &Context) -> Parsed {
    let Some(object) = entry.as_object() else { return Parsed::Skip("not a JSON object".into()) };
    if object.get("disabled") == Some(&Value::Bool(true)) || object.get("enabled") == Some(&Value::Bool(false)) {
        return Parsed::Skip(format!("disabled in {}", context.client));
    }
    let text = |key: &str| object.get(key).and_then(as_text);
    let mut command = text("command");
    let mut args: Vec<String> = object
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(as_text).collect())
        .unwrap_or_default();
    // opencode: `"command": [program, args…]`.
    if let Some(words) = object.get("command").and_then(Value::as_array) {
        let mut words = words.iter().filter_map(as_text);
        command = words.next();
        args = words.chain(args).collect();
    }
    if runs_shim(command.as_deref(), &args) {
        return Parsed::Shim;
    }
    let kind = text("type").map(|t| t.to_ascii_lowercase());
    // `httpUrl`: Gemini CLI's key for a Streamable HTTP server (its `url` is SSE).
    let url = text("url").or_else(|| text("serverUrl")).or_else(|| text("httpUrl"));
    let remote = match kind.as_deref() {
        // `local`: Copilot CLI's and opencode's word for stdio.
        Some("stdio" | "local") => false,
        // `remote`: opencode's (Streamable HTTP, falling back to SSE).
        Some("http" | "streamable-http" | "streamablehttp" | "sse" | "remote") => true,
        Some(other) => return Parsed::Skip(format!("transport type `{other}` is not supported by the gateway")),
        None if command.is_some() => false,
        None if url.is_some() => true,
        None => return Parsed::Skip("has neither `command` nor `url`".into()),
    };
    let mut definition = Definition::default();
    if remote {
        let Some(url) = url else { return Parsed::Skip("a remote server without `url`".into()) };
        definition.url = Some(url);
        definition.headers = string_map(object.get("headers"));
    } else {
        let Some(command) = command else { return Parsed::Skip("a stdio server without `command`".into()) };
        definition.command = Some(command);
        definition.args = args;
        definition.env = string_map(object.get("env"));
        // opencode's name for it.
        for (key, value) in string_map(object.get("environment")) {
            definition.env.entry(key).or_insert(value);
        }
        definition.cwd = text("cwd");
        if let Some(env_file) = text("envFile") {
            match read_env_file(&env_file, context) {
                Ok(vars) => {
                    for (key, value) in vars {
                        definition.env.entry(key).or_insert(value);
                    }
                }
                Err(reason) => return Parsed::Skip(reason),
            }
        }
    }
    translate(definition, context)
}

/// The variables of an entry's `envFile`: they become its `env` (secrets
/// among them then move to the gateway `.env` like any other).
fn read_env_file(path: &str, context: &Context) -> Result<Vec<(String, String)>, String> {
    let mut ignored = (Vec::new(), Vec::new());
    let path = translate_text(path, context, &mut ignored.0, &mut ignored.1)?;
    let path = match &context.project {
        Some(project) if Path::new(&path).is_relative() => project.join(&path),
        _ => PathBuf::from(&path),
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read its envFile {}: {e}", path.display()))?;
    let vars = crate::credentials::parse_env(&path, &text).map_err(|e| format!("its envFile: {e}"))?;
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    vars.sort();
    Ok(vars)
}

/// Translates every string of a definition into the gateway's variable syntax.
fn translate(definition: Definition, context: &Context) -> Parsed {
    let mut notes = Vec::new();
    let mut needs = Vec::new();
    let mut t = |s: &str| translate_text(s, context, &mut notes, &mut needs);
    let result = (|| -> Result<Definition, String> {
        let map = |m: &IndexMap<String, String>, t: &mut dyn FnMut(&str) -> Result<String, String>| {
            m.iter().map(|(k, v)| Ok((k.clone(), t(v)?))).collect::<Result<IndexMap<_, _>, String>>()
        };
        Ok(Definition {
            command: definition.command.as_deref().map(&mut t).transpose()?,
            args: definition.args.iter().map(|a| t(a)).collect::<Result<_, _>>()?,
            env: map(&definition.env, &mut t)?,
            cwd: definition.cwd.as_deref().map(&mut t).transpose()?,
            url: definition.url.as_deref().map(&mut t).transpose()?,
            headers: map(&definition.headers, &mut t)?,
        })
    })();
    let mut definition = match result {
        Ok(d) => d,
        Err(reason) => return Parsed::Skip(reason),
    };
    // A project's server started with a relative path ran in the project directory.
    if definition.cwd.is_none()
        && let Some(project) = &context.project
        && definition.command.iter().chain(&definition.args).any(|a| a.starts_with("./") || a.starts_with("../"))
    {
        definition.cwd = Some(project.display().to_string());
        notes.push(format!("runs in {} (it uses relative paths)", project.display()));
    }
    notes.dedup();
    needs.dedup();
    Parsed::Server { definition: Box::new(definition), notes, needs }
}

fn translate_text(
    s: &str,
    context: &Context,
    notes: &mut Vec<String>,
    needs: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let Some(end) = tail.find('}') else {
            out.push_str(&rest[at..]);
            return Ok(out);
        };
        let body = &tail[..end];
        rest = &tail[end + 1..];
        let plain = |name: &str| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some(name) = body.strip_prefix("env:") {
            out.push_str(&format!("${{{name}}}"));
        } else if body == "userHome" {
            out.push_str("${HOME}");
        } else if body == "pathSeparator" {
            out.push('/');
        } else if body == "workspaceFolder" || body == "workspaceRoot" {
            let Some(project) = &context.project else {
                return Err(format!("uses ${{{body}}}, which only means something inside a project"));
            };
            out.push_str(&project.display().to_string());
        } else if let Some(id) = body.strip_prefix("input:") {
            let var = var_name(id);
            let declared = if context.inputs.iter().any(|i| i == id) { "" } else { " (not declared in `inputs`)" };
            notes.push(format!(
                "`${{input:{id}}}`{declared} is a VS Code prompt, not a value, so it cannot be imported: \
                 the gateway uses ${{{var}}} instead"
            ));
            needs.push(var.clone());
            out.push_str(&format!("${{{var}}}"));
        } else if plain(body.split(":-").next().unwrap_or_default()) {
            out.push_str(&format!("${{{body}}}"));
        } else {
            return Err(format!("uses `${{{body}}}`, which the gateway cannot expand"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(project: Option<&str>) -> Context {
        Context { client: Client::Vscode, project: project.map(PathBuf::from), inputs: vec!["token".into()] }
    }

    #[test]
    fn vscode_variables_are_translated() {
        let entry = json!({"type": "stdio", "command": "node", "args": ["${workspaceFolder}/srv.js"],
                           "env": {"A": "${env:A}", "T": "${input:token}", "H": "${userHome}/x"}});
        let Parsed::Server { definition, needs, notes } = from_json(&entry, &context(Some("/p"))) else { panic!() };
        assert_eq!(definition.args, ["/p/srv.js"]);
        assert_eq!(definition.env["A"], "${A}");
        assert_eq!(definition.env["T"], "${TOKEN}");
        assert_eq!(definition.env["H"], "${HOME}/x");
        assert_eq!(needs, ["TOKEN"]);
        assert!(notes[0].contains("input:token"));
        assert!(matches!(from_json(&entry, &context(None)), Parsed::Skip(_)));
    }

    #[test]
    fn kinds() {
        let c = context(None);
        assert_eq!(from_json(&json!({"command": "/usr/bin/mcp-gateway-connect"}), &c), Parsed::Shim);
        assert!(matches!(from_json(&json!({"type": "ws", "url": "x"}), &c), Parsed::Skip(_)));
        assert!(matches!(from_json(&json!({"command": "x", "disabled": true}), &c), Parsed::Skip(_)));
        let Parsed::Server { definition, .. } =
            from_json(&json!({"type": "sse", "url": "https://h/sse", "headers": {"A": "b"}}), &c)
        else {
            panic!()
        };
        assert_eq!(definition.url.as_deref(), Some("https://h/sse"));
        assert_eq!(definition.headers["A"], "b");
    }
}
