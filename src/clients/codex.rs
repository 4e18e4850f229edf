//! Codex CLI's `~/.codex/config.toml`: `[mcp_servers.NAME]` tables.
//!
//! Read with `toml` (plain data), rewritten with `toml_edit` so that the rest
//! of the file (model settings, profiles, comments) stays exactly as it was.

use indexmap::IndexMap;
use serde_json::Value;

use super::ClientsError;
use super::entry::{Definition, Found, Parsed, runs_shim};
use super::locations::SourceFile;

/// The servers of a Codex config.
pub fn read(source: &SourceFile, text: &str) -> Result<Vec<Found>, ClientsError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ClientsError::file(&source.path, e.message()))?;
    let Some(servers) = table.get("mcp_servers").and_then(toml::Value::as_table) else { return Ok(Vec::new()) };
    Ok(servers
        .iter()
        .map(|(name, entry)| Found {
            source: source.clone(),
            location: vec!["mcp_servers".into()],
            name: name.clone(),
            parsed: from_toml(&serde_json::to_value(entry).unwrap_or_default()),
        })
        .collect())
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn string_map(value: Option<&Value>) -> IndexMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// One `[mcp_servers.NAME]` table (as JSON) in the gateway's terms.
fn from_toml(entry: &Value) -> Parsed {
    if entry.get("enabled") == Some(&Value::Bool(false)) {
        return Parsed::Skip("disabled in codex (`enabled = false`)".into());
    }
    let command = entry.get("command").and_then(Value::as_str).map(str::to_string);
    let args = strings(entry.get("args"));
    if runs_shim(command.as_deref(), &args) {
        return Parsed::Shim;
    }
    let mut definition = Definition::default();
    let mut notes = Vec::new();
    if let Some(url) = entry.get("url").and_then(Value::as_str) {
        definition.url = Some(url.to_string());
        definition.headers = string_map(entry.get("http_headers"));
        for (header, var) in string_map(entry.get("env_http_headers")) {
            definition.headers.insert(header, format!("${{{var}}}"));
        }
        if let Some(var) = entry.get("bearer_token_env_var").and_then(Value::as_str) {
            definition.headers.insert("Authorization".into(), format!("Bearer ${{{var}}}"));
        }
    } else if let Some(command) = command {
        definition.command = Some(command);
        definition.args = args;
        definition.env = string_map(entry.get("env"));
        definition.cwd = entry.get("cwd").and_then(Value::as_str).map(str::to_string);
        // Passed through from Codex's environment when set: the shim forwards the
        // client's environment, and an empty default keeps an unset one harmless.
        for var in strings(entry.get("env_vars")) {
            definition.env.entry(var.clone()).or_insert_with(|| format!("${{{var}:-}}"));
        }
    } else {
        return Parsed::Skip("has neither `command` nor `url`".into());
    }
    if entry.get("enabled_tools").is_some() || entry.get("disabled_tools").is_some() {
        notes.push("its enabled_tools/disabled_tools were not imported (use `tools: {allow, deny}`)".into());
    }
    Parsed::Server { definition: Box::new(definition), notes, needs: Vec::new() }
}

/// Removes `names` from `[mcp_servers]` and adds the shim as `gateway_name`
/// (unless `None`), keeping everything else, comments included.
pub fn rewrite(
    source: &SourceFile,
    text: &str,
    remove: &[String],
    add: Option<(&str, &str, &[String])>,
) -> Result<String, ClientsError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| ClientsError::file(&source.path, e.message()))?;
    if doc.get("mcp_servers").is_none() {
        let mut servers = toml_edit::Table::new();
        servers.set_implicit(true);
        doc.insert("mcp_servers", toml_edit::Item::Table(servers));
    }
    let servers = doc["mcp_servers"]
        .as_table_like_mut()
        .ok_or_else(|| ClientsError::file(&source.path, "`mcp_servers` is not a table"))?;
    for name in remove {
        servers.remove(name);
    }
    if let Some((name, command, args)) = add {
        servers.insert(name, toml_edit::Item::Table(shim_table(command, args)));
    }
    Ok(doc.to_string())
}

/// `[mcp_servers.NAME]` for the shim.
fn shim_table(command: &str, args: &[String]) -> toml_edit::Table {
    let mut table = toml_edit::Table::new();
    table.insert("command", toml_edit::value(command));
    table.insert("args", toml_edit::value(args.iter().collect::<toml_edit::Array>()));
    table
}

/// The snippet for `--print`.
pub fn snippet(name: &str, command: &str, args: &[String]) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    let mut servers = toml_edit::Table::new();
    servers.set_implicit(true);
    servers.insert(name, toml_edit::Item::Table(shim_table(command, args)));
    doc.insert("mcp_servers", toml_edit::Item::Table(servers));
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::locations::Format;
    use crate::clients::{Client, Scope};

    fn source() -> SourceFile {
        SourceFile {
            client: Client::Codex,
            scope: Scope::User,
            path: "/h/.codex/config.toml".into(),
            format: Format::CodexToml,
        }
    }

    const TEXT: &str = "# my codex\nmodel = \"o3\"\n\n[mcp_servers.docs] # the docs\ncommand = \"docs-mcp\"\n\n[mcp_servers.remote]\nurl = \"https://h/mcp\"\nbearer_token_env_var = \"REMOTE_TOKEN\"\n\n[profiles.fast]\nmodel = \"o4-mini\"\n";

    #[test]
    fn reads_stdio_and_remote_servers() {
        let found = read(&source(), TEXT).unwrap();
        assert_eq!(found.len(), 2);
        let Parsed::Server { definition, .. } = &found[1].parsed else { panic!() };
        assert_eq!(definition.headers["Authorization"], "Bearer ${REMOTE_TOKEN}");
    }

    #[test]
    fn rewrite_keeps_the_rest() {
        let out =
            rewrite(&source(), TEXT, &["docs".into()], Some(("gateway", "/bin/mcp-gateway-connect", &[]))).unwrap();
        assert!(out.starts_with("# my codex\nmodel = \"o3\"\n"), "{out}");
        assert!(!out.contains("docs-mcp"));
        assert!(out.contains("[mcp_servers.remote]") && out.contains("[profiles.fast]"));
        assert!(out.contains("[mcp_servers.gateway]\ncommand = \"/bin/mcp-gateway-connect\"\nargs = []"), "{out}");
    }
}
