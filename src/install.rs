//! Adding and removing servers in a config file without disturbing it.
//!
//! The file keeps its comments and order: TOML through `toml_edit`, YAML by
//! editing the `servers:` block as text and checking that the result parses to
//! exactly the old config plus (or minus) the one entry. Writes are atomic
//! (write, then rename) and keep the previous version as `<file>.bak`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::config::{Config, ServerConfig, Transport};
use crate::workspace::WorkspaceFile;

/// Why a file could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("server `{0}` is already defined there")]
    Exists(String),
    #[error("server `{0}` is not defined there")]
    Missing(String),
    #[error("{path} changed since the change was prepared; ask again")]
    Stale { path: String },
}

/// Which file an install goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The global config (YAML or TOML).
    Config,
    /// A workspace's `.mcp-gateway.yaml`.
    Workspace,
}

/// A prepared change to one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: PathBuf,
    /// The file as it was when the change was prepared (`None`: it did not exist).
    pub before: Option<String>,
    pub after: String,
    /// The lines added or removed, for people to review.
    pub summary: String,
}

fn file_error(path: &Path, message: impl Into<String>) -> InstallError {
    InstallError::File { path: path.display().to_string(), message: message.into() }
}

/// The servers a file defines (parsed as the gateway would).
fn servers_of(path: &Path, text: &str, target: Target) -> Result<IndexMap<String, ServerConfig>, InstallError> {
    match target {
        Target::Config => Config::parse(path, text).map(|c| c.servers).map_err(|e| file_error(path, e.to_string())),
        Target::Workspace if text.trim().is_empty() => Ok(IndexMap::new()),
        Target::Workspace => serde_norway::from_str::<WorkspaceFile>(text)
            .map(|w| w.servers)
            .map_err(|e| file_error(path, e.to_string())),
    }
}

/// A server definition as a user would write it (only the fields that are set).
pub fn as_written(server: &ServerConfig) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    if server.transport == Transport::Docker {
        put("type", "docker".into());
    }
    for (key, value) in
        [("command", &server.command), ("url", &server.url), ("image", &server.image), ("cwd", &server.cwd)]
    {
        if let Some(value) = value {
            put(key, value.clone().into());
        }
    }
    if !server.args.is_empty() {
        put("args", server.args.clone().into());
    }
    if !server.env.is_empty() {
        put("env", serde_json::to_value(&server.env).unwrap_or_default());
    }
    if !server.headers.is_empty() {
        put("headers", serde_json::to_value(&server.headers).unwrap_or_default());
    }
    let share = serde_json::to_value(server.share).unwrap_or_default();
    if share != "global" {
        put("share", share);
    }
    if let Some(description) = &server.description {
        put("description", description.clone().into());
    }
    if !server.projects.is_empty() {
        put("projects", server.projects.clone().into());
    }
    Value::Object(out)
}

fn is_toml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

/// Prepares adding `name` to the file at `path`.
pub fn plan_install(path: &Path, target: Target, name: &str, server: &ServerConfig) -> Result<Change, InstallError> {
    plan_install_all(path, target, &[(name.to_string(), server.clone())])
}

/// Prepares adding several servers at once (one change, one backup), in order.
pub fn plan_install_all(
    path: &Path,
    target: Target,
    servers: &[(String, ServerConfig)],
) -> Result<Change, InstallError> {
    let before = read(path)?;
    let mut text = before.clone().unwrap_or_default();
    let mut expected = servers_of(path, &text, target)?;
    let mut summaries = Vec::new();
    for (name, server) in servers {
        if expected.contains_key(name) {
            return Err(InstallError::Exists(name.to_string()));
        }
        let entry = as_written(server);
        let (after, summary) = if is_toml(path) {
            toml_add(path, &text, name, &entry)?
        } else {
            yaml_add(&text, name, &entry).map_err(|m| file_error(path, m))?
        };
        text = after;
        summaries.push(summary);
        expected.insert(name.to_string(), server.clone());
    }
    check(path, &text, target, &expected)?;
    Ok(Change { path: path.to_path_buf(), before, after: text, summary: summaries.join("\n") })
}

/// Prepares removing `name` from the file at `path`.
pub fn plan_remove(path: &Path, target: Target, name: &str) -> Result<Change, InstallError> {
    let before = read(path)?;
    let text = before.clone().unwrap_or_default();
    let mut expected = servers_of(path, &text, target)?;
    if expected.shift_remove(name).is_none() {
        return Err(InstallError::Missing(name.to_string()));
    }
    let (after, summary) = if is_toml(path) {
        toml_remove(path, &text, name)?
    } else {
        yaml_remove(&text, name).ok_or_else(|| file_error(path, format!("cannot find the block of `{name}`")))?
    };
    check(path, &after, target, &expected)?;
    Ok(Change { path: path.to_path_buf(), before, after, summary })
}

/// Prepares turning `name` on or off (`enabled:`) in the file at `path`,
/// leaving the rest of its definition as written. `None`: it already is.
pub fn plan_set_enabled(
    path: &Path,
    target: Target,
    name: &str,
    enabled: bool,
) -> Result<Option<Change>, InstallError> {
    let before = read(path)?;
    let text = before.clone().unwrap_or_default();
    let mut expected = servers_of(path, &text, target)?;
    let server = expected.get_mut(name).ok_or_else(|| InstallError::Missing(name.to_string()))?;
    if server.enabled == enabled {
        return Ok(None);
    }
    *server = server.with_enabled(enabled);
    let (after, summary) = if is_toml(path) {
        toml_set_enabled(path, &text, name, enabled)?
    } else {
        yaml_set_enabled(&text, name, enabled).map_err(|m| file_error(path, m))?
    };
    check(path, &after, target, &expected)?;
    Ok(Some(Change { path: path.to_path_buf(), before, after, summary }))
}

/// The edited text must parse to exactly the expected servers (and, for the
/// config, leave every other setting as it was).
fn check(
    path: &Path,
    after: &str,
    target: Target,
    expected: &IndexMap<String, ServerConfig>,
) -> Result<(), InstallError> {
    let got = servers_of(path, after, target)?;
    let same = got.len() == expected.len() && expected.iter().all(|(k, v)| got.get(k) == Some(v));
    if same {
        Ok(())
    } else {
        Err(file_error(path, "the edit would not give the expected servers; the file was left unchanged"))
    }
}

fn read(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(path, e.to_string())),
    }
}

/// Writes a prepared change: refuses if the file changed since it was prepared,
/// keeps the previous version as `<file>.bak`, writes atomically.
pub fn apply(change: &Change) -> Result<Option<PathBuf>, InstallError> {
    let path = &change.path;
    if read(path)? != change.before {
        return Err(InstallError::Stale { path: path.display().to_string() });
    }
    let io = |e: std::io::Error| file_error(path, e.to_string());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let backup = match &change.before {
        Some(before) => {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".bak");
            let backup = path.with_file_name(name);
            std::fs::write(&backup, before).map_err(io)?;
            Some(backup)
        }
        None => None,
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, &change.after).map_err(io)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(backup)
}

// ---- YAML, as text ----

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The entry as YAML lines, indented for the servers block.
fn yaml_entry(name: &str, entry: &Value, indent: usize) -> Result<Vec<String>, String> {
    let mut map = Map::new();
    map.insert(name.to_string(), entry.clone());
    let text = serde_norway::to_string(&Value::Object(map)).map_err(|e| e.to_string())?;
    Ok(text.lines().map(|l| format!("{}{l}", " ".repeat(indent))).collect())
}

/// The line index of a top-level `servers:` key, if it opens a block.
fn servers_line(lines: &[&str]) -> Option<usize> {
    lines.iter().position(|l| {
        let t = l.split('#').next().unwrap_or_default().trim_end();
        indent_of(l) == 0 && t == "servers:"
    })
}

/// The end (exclusive) of the block that starts after line `start`, whose
/// lines are indented more than `indent`; trailing blank lines are not part of it.
fn block_end(lines: &[&str], start: usize, indent: usize) -> usize {
    let mut end = start + 1;
    let mut last_content = start;
    while end < lines.len() {
        let line = lines[end];
        if !is_blank_or_comment(line) {
            if indent_of(line) <= indent {
                break;
            }
            last_content = end;
        }
        end += 1;
    }
    last_content + 1
}

/// The line `servers: {}` (an empty flow mapping, as `config check` accepts
/// and people write for "none yet"), if the file has one.
fn empty_flow_servers_line(lines: &[&str]) -> Option<usize> {
    lines.iter().position(|l| {
        let code: String = l.split('#').next().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        indent_of(l) == 0 && code == "servers:{}"
    })
}

fn yaml_add(text: &str, name: &str, entry: &Value) -> Result<(String, String), String> {
    let lines: Vec<&str> = text.lines().collect();
    if let Some(at) = empty_flow_servers_line(&lines) {
        // `servers: {}` becomes a block with the one entry; a comment on the line stays.
        let comment = lines[at].find('#').map(|i| format!("  {}", &lines[at][i..])).unwrap_or_default();
        let added = yaml_entry(name, entry, 2)?;
        let mut out: Vec<String> = lines[..at].iter().map(|l| l.to_string()).collect();
        out.push(format!("servers:{comment}"));
        out.extend(added.iter().cloned());
        out.extend(lines[at + 1..].iter().map(|l| l.to_string()));
        if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(String::new());
        }
        return Ok((out.join("\n"), added.iter().map(|l| format!("+ {l}")).collect::<Vec<_>>().join("\n")));
    }
    let (mut out, added): (Vec<String>, Vec<String>) = match servers_line(&lines) {
        Some(at) => {
            let end = block_end(&lines, at, 0);
            let child_indent = lines[at + 1..end].iter().find(|l| !is_blank_or_comment(l)).map_or(2, |l| indent_of(l));
            let added = yaml_entry(name, entry, child_indent)?;
            let mut out: Vec<String> = lines[..end].iter().map(|l| l.to_string()).collect();
            out.extend(added.iter().cloned());
            out.extend(lines[end..].iter().map(|l| l.to_string()));
            (out, added)
        }
        None if lines.iter().any(|l| l.starts_with("servers:")) => {
            return Err("`servers:` is written in flow style ({ … }); add the server by hand".into());
        }
        None => {
            let added = yaml_entry(name, entry, 2)?;
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out.push("servers:".into());
            out.extend(added.iter().cloned());
            (out, added)
        }
    };
    if out.last().is_some_and(|l| !l.is_empty()) {
        out.push(String::new());
    }
    Ok((out.join("\n"), added.iter().map(|l| format!("+ {l}")).collect::<Vec<_>>().join("\n")))
}

/// The key a `key: value` line starts with (unquoted).
fn yaml_key(line: &str) -> &str {
    line.trim_start().split(':').next().unwrap_or_default().trim().trim_matches(|c| c == '"' || c == '\'')
}

/// The lines `[start, end)` of server `name`'s entry in the `servers:` block.
fn yaml_entry_lines(lines: &[&str], name: &str) -> Option<(usize, usize)> {
    let at = servers_line(lines)?;
    let end = block_end(lines, at, 0);
    let start = (at + 1..end).find(|&i| {
        let line = lines[i];
        !is_blank_or_comment(line) && yaml_key(line) == name && line.trim_start().contains(':')
    })?;
    Some((start, block_end(lines, start, indent_of(lines[start]))))
}

fn yaml_set_enabled(text: &str, name: &str, enabled: bool) -> Result<(String, String), String> {
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = yaml_entry_lines(&lines, name).ok_or_else(|| format!("cannot find the block of `{name}`"))?;
    let after_key = lines[start].split_once(':').map_or("", |(_, rest)| rest).split('#').next().unwrap_or("").trim();
    if !after_key.is_empty() {
        return Err(format!("`{name}` is written in flow style ({{ … }}); set `enabled:` by hand"));
    }
    let child_indent = lines[start + 1..end]
        .iter()
        .find(|l| !is_blank_or_comment(l))
        .map_or(indent_of(lines[start]) + 2, |l| indent_of(l));
    let new_line = format!("{}enabled: {enabled}", " ".repeat(child_indent));
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let existing = (start + 1..end).find(|&i| indent_of(lines[i]) == child_indent && yaml_key(lines[i]) == "enabled");
    let summary = match existing {
        Some(i) => {
            let summary = format!("- {}\n+ {new_line}", lines[i]);
            out[i] = new_line;
            summary
        }
        None => {
            out.insert(start + 1, new_line.clone());
            format!("+ {new_line}")
        }
    };
    let mut text = out.join("\n");
    text.push('\n');
    Ok((text, summary))
}

fn yaml_remove(text: &str, name: &str) -> Option<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let (start, entry_end) = yaml_entry_lines(&lines, name)?;
    let removed: Vec<String> = lines[start..entry_end].iter().map(|l| format!("- {l}")).collect();
    let mut out: Vec<&str> = lines[..start].to_vec();
    out.extend(&lines[entry_end..]);
    let mut text = out.join("\n");
    text.push('\n');
    Some((text, removed.join("\n")))
}

// ---- TOML, through toml_edit ----

fn toml_add(path: &Path, text: &str, name: &str, entry: &Value) -> Result<(String, String), InstallError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| file_error(path, e.to_string()))?;
    let entry_toml = toml::to_string(&serde_json::json!({ "servers": { name: entry } }))
        .map_err(|e| file_error(path, e.to_string()))?;
    let parsed: toml_edit::DocumentMut =
        entry_toml.parse().map_err(|e: toml_edit::TomlError| file_error(path, e.to_string()))?;
    let table = parsed["servers"][name].clone();
    if doc.get("servers").is_none() {
        let mut servers = toml_edit::Table::new();
        servers.set_implicit(true);
        doc.insert("servers", toml_edit::Item::Table(servers));
    }
    doc["servers"][name] = table;
    let summary = entry_toml.lines().map(|l| format!("+ {l}")).collect::<Vec<_>>().join("\n");
    Ok((doc.to_string(), summary))
}

fn toml_remove(path: &Path, text: &str, name: &str) -> Result<(String, String), InstallError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| file_error(path, e.to_string()))?;
    let removed = doc
        .get_mut("servers")
        .and_then(|s| s.as_table_like_mut())
        .and_then(|s| s.remove(name))
        .ok_or_else(|| InstallError::Missing(name.to_string()))?;
    Ok((doc.to_string(), format!("- [servers.{name}] {}", removed.to_string().trim())))
}

fn toml_set_enabled(path: &Path, text: &str, name: &str, enabled: bool) -> Result<(String, String), InstallError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| file_error(path, e.to_string()))?;
    let entry = doc
        .get_mut("servers")
        .and_then(|s| s.as_table_like_mut())
        .and_then(|s| s.get_mut(name))
        .and_then(|e| e.as_table_like_mut())
        .ok_or_else(|| InstallError::Missing(name.to_string()))?;
    entry.insert("enabled", toml_edit::value(enabled));
    Ok((doc.to_string(), format!("+ [servers.{name}] enabled = {enabled}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(command: &str) -> ServerConfig {
        serde_norway::from_str(&format!("command: {command}\nargs: [\"-y\", \"pkg\"]\nshare: workspace\n")).unwrap()
    }

    const YAML: &str = "# my gateway\ntools: full\nservers:\n  # docs first\n  docs:\n    command: docs-mcp   # the docs\n\n  other:\n    command: other-mcp\n\nprofiles: {}\n";

    #[test]
    fn yaml_install_keeps_comments_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, YAML).unwrap();
        let change = plan_install(&path, Target::Config, "memory", &server("npx")).unwrap();
        assert!(change.after.starts_with("# my gateway\ntools: full\nservers:\n  # docs first\n"), "{}", change.after);
        assert!(change.after.contains("command: docs-mcp   # the docs"));
        let memory = change.after.find("  memory:").unwrap();
        assert!(change.after.find("other-mcp").unwrap() < memory && memory < change.after.find("profiles").unwrap());
        assert!(change.summary.contains("+   memory:"), "{}", change.summary);
        let backup = apply(&change).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), YAML);
        let config = Config::load(&path).unwrap().unwrap();
        assert_eq!(config.servers.keys().collect::<Vec<_>>(), ["docs", "other", "memory"]);
        assert!(matches!(plan_install(&path, Target::Config, "memory", &server("npx")), Err(InstallError::Exists(_))));
    }

    #[test]
    fn yaml_remove_takes_out_exactly_one_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, YAML).unwrap();
        let change = plan_remove(&path, Target::Config, "docs").unwrap();
        assert!(!change.after.contains("docs-mcp"));
        assert!(
            change.after.contains("# my gateway")
                && change.after.contains("other-mcp")
                && change.after.contains("profiles: {}")
        );
        assert!(matches!(plan_remove(&path, Target::Config, "nope"), Err(InstallError::Missing(_))));
    }

    #[test]
    fn files_without_servers_and_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mcp-gateway.yaml");
        let change = plan_install(&path, Target::Workspace, "db", &server("db-mcp")).unwrap();
        assert_eq!(change.before, None);
        apply(&change).unwrap();
        let again = plan_install(&path, Target::Workspace, "cache", &server("cache-mcp")).unwrap();
        apply(&again).unwrap();
        let file: WorkspaceFile = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(file.servers.keys().collect::<Vec<_>>(), ["db", "cache"]);
    }

    #[test]
    fn toml_install_and_remove_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = "# top comment\ntools = \"full\"\n\n[servers.docs] # docs\ncommand = \"docs-mcp\"\n";
        std::fs::write(&path, text).unwrap();
        let change = plan_install(&path, Target::Config, "memory", &server("npx")).unwrap();
        assert!(
            change.after.starts_with("# top comment\ntools = \"full\"\n\n[servers.docs] # docs\n"),
            "{}",
            change.after
        );
        apply(&change).unwrap();
        let change = plan_remove(&path, Target::Config, "docs").unwrap();
        apply(&change).unwrap();
        let config = Config::load(&path).unwrap().unwrap();
        assert_eq!(config.servers.keys().collect::<Vec<_>>(), ["memory"]);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("# top comment"));
    }

    /// `servers: {}` passes `config check`, so adding to it must work too.
    #[test]
    fn adding_to_an_empty_flow_servers_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "# mine\nservers: {}   # none yet\nidle_timeout: 5m\n").unwrap();
        let entry = serde_json::json!({"command": "memory-mcp"});
        let (after, _) = yaml_add(&std::fs::read_to_string(&path).unwrap(), "memory", &entry).unwrap();
        assert!(after.starts_with("# mine\nservers:  # none yet\n  memory:\n"), "{after}");
        assert!(after.contains("idle_timeout: 5m"), "{after}");
        std::fs::write(&path, &after).unwrap();
        let config = Config::load(&path).unwrap().unwrap();
        assert_eq!(config.servers.keys().collect::<Vec<_>>(), ["memory"]);
    }

    #[test]
    fn enabling_and_disabling_touches_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, YAML).unwrap();
        let change = plan_set_enabled(&path, Target::Config, "docs", false).unwrap().unwrap();
        assert_eq!(change.after.lines().count(), YAML.lines().count() + 1, "{}", change.after);
        assert!(change.after.contains("  docs:\n    enabled: false\n    command: docs-mcp   # the docs"));
        apply(&change).unwrap();
        assert!(!Config::load(&path).unwrap().unwrap().servers["docs"].enabled);
        assert_eq!(plan_set_enabled(&path, Target::Config, "docs", false).unwrap(), None, "already off");
        let change = plan_set_enabled(&path, Target::Config, "docs", true).unwrap().unwrap();
        assert!(change.after.contains("    enabled: true\n"));
        assert!(matches!(plan_set_enabled(&path, Target::Config, "nope", true), Err(InstallError::Missing(_))));

        let toml = dir.path().join("config.toml");
        std::fs::write(&toml, "# keep\n[servers.docs]\ncommand = \"docs-mcp\"\n").unwrap();
        let change = plan_set_enabled(&toml, Target::Config, "docs", false).unwrap().unwrap();
        assert!(
            change.after.starts_with("# keep\n[servers.docs]\ncommand = \"docs-mcp\"\nenabled = false"),
            "{}",
            change.after
        );
        let flow = dir.path().join("flow.yaml");
        std::fs::write(&flow, "servers:\n  docs: { command: docs-mcp }\n").unwrap();
        let err = plan_set_enabled(&flow, Target::Config, "docs", false).unwrap_err().to_string();
        assert!(err.contains("flow style"), "{err}");
    }

    #[test]
    fn a_file_changed_after_planning_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, YAML).unwrap();
        let change = plan_install(&path, Target::Config, "memory", &server("npx")).unwrap();
        std::fs::write(&path, format!("{YAML}\n# edited meanwhile\n")).unwrap();
        assert!(matches!(apply(&change), Err(InstallError::Stale { .. })));
    }
}
