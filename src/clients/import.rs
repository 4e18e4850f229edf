//! `mcp-gateway import`: the plan (what would be added, from where, what moves
//! to `.env`, what is skipped and why) and applying it.
//!
//! Whether a client's server is "already in the gateway" is decided by what it
//! runs, not by its name: a gateway server matches when its definition, with
//! the gateway `.env`'s variables filled in, is the client's entry. That makes
//! a second import a no-op even for servers that were renamed or whose tokens
//! moved to `.env`, and lets `setup` tell which entries the gateway now serves.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use super::dotenv::GatewayEnv;
use super::entry::{Definition, Found, Parsed, var_name};
use super::locations::{self, Env};
use super::{Client, ClientsError, Scope, secrets};
use crate::config::{Config, ServerConfig};
use crate::install::{self, Change, Target};

/// Where one server was found.
#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    pub client: Client,
    pub scope: Scope,
    pub file: PathBuf,
    /// Its name in that file.
    pub name: String,
    /// `file (location)`, for people.
    #[serde(skip)]
    pub label: String,
}

/// A value that went to the gateway `.env` instead of the config.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    /// `env.GITHUB_TOKEN`, `headers.Authorization`, `args[3]`, `url?key`.
    pub field: String,
    pub variable: String,
}

/// A server the import adds.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub name: String,
    pub from: Vec<Origin>,
    /// The definition as it will be written (secrets as `${VAR}`).
    pub definition: Value,
    pub moved_to_env: Vec<Moved>,
    /// Variables the server needs that nothing sets yet (VS Code prompts).
    pub needs: Vec<String>,
    pub notes: Vec<String>,
    #[serde(skip)]
    raw: Definition,
    /// The projects it was found only in (Claude Code's project-only
    /// servers, a project file's entries), written as its `projects:`; empty
    /// when found anywhere for every project too.
    #[serde(skip)]
    only_in: Vec<String>,
    #[serde(skip)]
    server: Option<ServerConfig>,
}

/// A client's server the gateway already has.
#[derive(Debug, Clone, Serialize)]
pub struct Already {
    pub from: Origin,
    /// Its name in the gateway.
    pub gateway_name: String,
}

/// A client's server that is not imported.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub from: Origin,
    pub reason: String,
}

/// A client file that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub file: PathBuf,
    pub reason: String,
}

/// Everything `import` would do.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub config: PathBuf,
    pub dotenv: PathBuf,
    /// The client files that exist and were read.
    pub files_read: Vec<PathBuf>,
    pub add: Vec<Planned>,
    pub already_imported: Vec<Already>,
    pub skipped: Vec<Skipped>,
    pub unreadable: Vec<Unreadable>,
    /// Variables added to the gateway `.env` (names only).
    pub dotenv_added: Vec<String>,
    pub applied: bool,
    #[serde(skip)]
    env: GatewayEnv,
    #[serde(skip)]
    change: Option<Change>,
}

impl Plan {
    /// The `setup` commands worth running next: each client and scope that
    /// had servers the gateway now runs.
    pub fn setups(&self) -> Vec<String> {
        let origins = self.add.iter().flat_map(|p| p.from.iter()).chain(self.already_imported.iter().map(|a| &a.from));
        let mut commands = Vec::new();
        for o in origins {
            let scope = if o.scope == Scope::Project { " --scope project" } else { "" };
            let command = format!("mcp-gateway setup {}{scope}", o.client);
            if !commands.contains(&command) {
                commands.push(command);
            }
        }
        commands
    }
}

/// The gateway's view of one of its servers, for comparison with client entries.
pub fn definition_of(server: &ServerConfig) -> Definition {
    Definition {
        command: server.command.clone(),
        args: server.args.clone(),
        env: server.env.clone(),
        cwd: server.cwd.clone(),
        url: server.url.clone(),
        headers: server.headers.clone(),
    }
}

/// `${VAR}` replaced by its value where `lookup` knows it, else left as written.
fn fill(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match tail.find('}').map(|end| (&tail[2..end], end)) {
            Some((name, end)) if lookup(name).is_some() => {
                out.push_str(&lookup(name).unwrap_or_default());
                rest = &tail[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn filled(definition: &Definition, lookup: &dyn Fn(&str) -> Option<String>) -> Definition {
    let map = |m: &IndexMap<String, String>| m.iter().map(|(k, v)| (k.clone(), fill(v, lookup))).collect();
    Definition {
        command: definition.command.as_deref().map(|c| fill(c, lookup)),
        args: definition.args.iter().map(|a| fill(a, lookup)).collect(),
        env: map(&definition.env),
        cwd: definition.cwd.as_deref().map(|c| fill(c, lookup)),
        url: definition.url.as_deref().map(|u| fill(u, lookup)),
        headers: map(&definition.headers),
    }
}

/// The gateway server that runs exactly this client entry, if any.
pub fn served_by(candidate: &Definition, servers: &IndexMap<String, ServerConfig>, env: &GatewayEnv) -> Option<String> {
    let lookup = env.lookup();
    let wanted = filled(candidate, &lookup);
    servers.iter().find(|(_, server)| filled(&definition_of(server), &lookup) == wanted).map(|(name, _)| name.clone())
}

/// A server name the gateway accepts (`[A-Za-z0-9_-]`), made from a client's.
pub fn server_name(raw: &str) -> String {
    let name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() { "server".into() } else { name }
}

/// The gateway config and its `.env`, as they are now.
pub fn load_gateway(config: &Path) -> Result<(IndexMap<String, ServerConfig>, GatewayEnv), ClientsError> {
    let servers = Config::load(config)?.map(|c| c.servers).unwrap_or_default();
    let env = GatewayEnv::load(&crate::paths::gateway_dotenv(config))?;
    Ok((servers, env))
}

fn origin(found: &Found, env: &Env) -> Origin {
    Origin {
        client: found.source.client,
        scope: found.source.scope,
        file: found.source.path.clone(),
        name: found.name.clone(),
        label: found.origin(env),
    }
}

/// Works out what importing from `from` (or every client) into `config` would do.
pub fn plan(from: Option<Client>, config: &Path, env: &Env) -> Result<Plan, ClientsError> {
    let (servers, dotenv) = load_gateway(config)?;
    let mut plan = Plan {
        config: config.to_path_buf(),
        dotenv: dotenv.path.clone(),
        files_read: Vec::new(),
        add: Vec::new(),
        already_imported: Vec::new(),
        skipped: Vec::new(),
        unreadable: Vec::new(),
        dotenv_added: Vec::new(),
        applied: false,
        env: dotenv,
        change: None,
    };
    for source in locations::all_files(from, env) {
        if !source.path.exists() {
            continue;
        }
        match super::read_servers(&source, env) {
            Ok(found) => {
                plan.files_read.push(source.path.clone());
                for f in found {
                    consider(&mut plan, &servers, f, env);
                }
            }
            Err(e) => plan.unreadable.push(Unreadable { file: source.path.clone(), reason: e.to_string() }),
        }
    }
    let mut ready = Vec::new();
    for planned in &mut plan.add {
        match finish(planned, &mut plan.env) {
            Ok(server) => {
                planned.definition = install::as_written(&server);
                planned.server = Some(server.clone());
                ready.push((planned.name.clone(), server));
            }
            Err(reason) => planned.notes.push(format!("cannot be imported: {reason}")),
        }
    }
    let (ok, failed): (Vec<Planned>, Vec<Planned>) = plan.add.drain(..).partition(|p| p.server.is_some());
    plan.add = ok;
    for p in failed {
        let reason = p.notes.last().cloned().unwrap_or_default();
        plan.skipped.extend(p.from.into_iter().map(|from| Skipped { from, reason: reason.clone() }));
    }
    plan.dotenv_added = plan.env.added_names();
    if !ready.is_empty() {
        plan.change = Some(install::plan_install_all(config, Target::Config, &ready)?);
    }
    Ok(plan)
}

/// Sorts one found entry into the plan.
fn consider(plan: &mut Plan, servers: &IndexMap<String, ServerConfig>, found: Found, env: &Env) {
    let from = origin(&found, env);
    let (definition, notes, needs) = match found.parsed {
        Parsed::Shim => {
            plan.skipped.push(Skipped { from, reason: "already runs mcp-gateway-connect".into() });
            return;
        }
        Parsed::Skip(reason) => {
            plan.skipped.push(Skipped { from, reason });
            return;
        }
        Parsed::Server { definition, notes, needs } => (*definition, notes, needs),
    };
    if let Some(gateway_name) = served_by(&definition, servers, &plan.env) {
        plan.already_imported.push(Already { from, gateway_name });
        return;
    }
    let base = server_name(&found.name);
    if servers.contains_key(&base) {
        plan.skipped.push(Skipped {
            from,
            reason: format!(
                "the gateway already has a different server named `{base}`; rename one of them and import again"
            ),
        });
        return;
    }
    // A server only one project's sessions had: Claude Code's
    // `projects.<dir>.mcpServers`, or any entry of a project's own file
    // (`.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`, …), whose project
    // is the directory the import runs in.
    let project_only = match found.location.as_slice() {
        [projects, dir, _] if projects == "projects" => Some(dir.clone()),
        _ if found.source.scope == Scope::Project => Some(env.cwd.display().to_string()),
        _ => None,
    };
    if let Some(same) =
        plan.add.iter_mut().find(|p| p.raw == definition && (p.name == base || p.from[0].name == found.name))
    {
        let before = same.only_in.len();
        match project_only {
            Some(dir) if before > 0 => same.only_in.push(dir),
            // Also one for every project: it stays one.
            _ => same.only_in.clear(),
        }
        if before > 0 && same.only_in.is_empty() {
            same.notes.retain(|n| !n.starts_with("offered only in"));
        }
        same.from.push(from);
        return;
    }
    let mut notes = notes;
    if let Some(dir) = &project_only {
        notes.push(format!(
            "offered only in {dir} (`projects:`), as {} did: it is that project's own server",
            found.source.client
        ));
    }
    if base != found.name {
        notes.push(format!("named `{base}`: server names may only use letters, digits, `_` and `-`"));
    }
    let taken = |name: &str, add: &[Planned]| servers.contains_key(name) || add.iter().any(|p| p.name == name);
    let mut name = base.clone();
    if taken(&name, &plan.add) {
        let first = plan.add.iter().find(|p| p.name == base).map(|p| p.from[0].label.clone()).unwrap_or_default();
        name = format!("{base}-{}", found.source.client);
        let mut n = 2;
        while taken(&name, &plan.add) {
            name = format!("{base}-{}-{n}", found.source.client);
            n += 1;
        }
        notes.push(format!("named `{name}`: `{base}` from {first} is defined differently"));
    }
    plan.add.push(Planned {
        name,
        from: vec![from],
        definition: Value::Null,
        moved_to_env: Vec::new(),
        needs,
        notes,
        raw: definition,
        only_in: project_only.into_iter().collect(),
        server: None,
    });
}

/// Moves the secrets of a planned server to `.env` and makes its gateway definition.
fn finish(planned: &mut Planned, dotenv: &mut GatewayEnv) -> Result<ServerConfig, String> {
    let server = planned.name.clone();
    let mut definition = planned.raw.clone();
    let mut moved = Vec::new();
    let mut store = |field: String, names: Vec<String>, value: &str| -> Result<String, String> {
        let variable = dotenv.store(&names, value).map_err(|e| e.to_string())?;
        moved.push(Moved { field, variable: variable.clone() });
        Ok(format!("${{{variable}}}"))
    };
    // `SERVER_WHAT`, unless WHAT already starts with the server's name.
    let scoped = |what: &str| {
        let (prefix, what) = (var_name(&server), var_name(what));
        if what.starts_with(&format!("{prefix}_")) { what } else { format!("{prefix}_{what}") }
    };
    for (key, value) in definition.env.iter_mut() {
        if secrets::should_move(key, value) {
            *value = store(format!("env.{key}"), vec![var_name(key), scoped(key)], value)?;
        } else if let Some(rewritten) = move_from_url(value, &format!("env.{key}"), &scoped, &mut store)? {
            *value = rewritten;
        }
    }
    for (header, value) in definition.headers.iter_mut() {
        let (scheme, secret) = secrets::strip_scheme(value);
        let (scheme, secret) = (scheme.to_string(), secret.to_string());
        if secrets::should_move(header, value) || secrets::looks_like_token(&secret) {
            let names = if header.eq_ignore_ascii_case("authorization") {
                vec![scoped("TOKEN"), scoped(header)]
            } else {
                vec![scoped(header)]
            };
            let reference = store(format!("headers.{header}"), names, &secret)?;
            *value = format!("{scheme}{reference}");
        }
    }
    let mut previous: Option<String> = None;
    for (i, arg) in definition.args.iter_mut().enumerate() {
        let flag_before = previous.take();
        previous = Some(arg.clone());
        if let Some(rewritten) = move_from_url(arg, &format!("args[{i}]"), &scoped, &mut store)? {
            *arg = rewritten;
            continue;
        }
        if arg.contains("${") {
            continue;
        }
        if let Some((key, value)) = arg.split_once('=') {
            let flag = key.trim_start_matches('-');
            if !flag.is_empty() && !flag.contains(char::is_whitespace) && secrets::should_move(flag, value) {
                let reference = store(format!("args[{i}]"), vec![scoped(flag)], value)?;
                *arg = format!("{key}={reference}");
                continue;
            }
        }
        let after_secret_flag = flag_before
            .as_deref()
            .is_some_and(|f| f.starts_with('-') && secrets::is_secret_name(f.trim_start_matches('-')));
        if (after_secret_flag && !arg.starts_with('-') && secrets::should_move("TOKEN", arg))
            || secrets::looks_like_token(arg)
        {
            let what =
                flag_before.as_deref().filter(|_| after_secret_flag).map_or("SECRET", |f| f.trim_start_matches('-'));
            *arg = store(format!("args[{i}]"), vec![scoped(what)], arg)?;
        }
    }
    if let Some(url) = &mut definition.url
        && let Some(rewritten) = move_from_url(url, "url", &scoped, &mut store)?
    {
        *url = rewritten;
    }
    planned.moved_to_env = moved;
    for var in references(&definition) {
        if !planned.needs.contains(&var) && std::env::var_os(&var).is_none() {
            planned.needs.push(var);
        }
    }
    planned.needs.retain(|var| !dotenv.has(var));
    let mut json = serde_json::to_value(&definition).map_err(|e| e.to_string())?;
    if !planned.only_in.is_empty()
        && let Some(object) = json.as_object_mut()
    {
        object.insert("projects".into(), planned.only_in.clone().into());
    }
    serde_json::from_value(json).map_err(|e| e.to_string())
}

/// How `finish` stores one secret: (field, candidate names, value) to the reference written instead.
type Store<'a> = dyn FnMut(String, Vec<String>, &str) -> Result<String, String> + 'a;

/// `text` with the credentials written inside it replaced by references
/// (`postgresql://app:${PG_PASSWORD}@db/app`), each value stored; `None`
/// when it holds none. The URL is the whole text or, for a flag, what follows
/// its `=` (`--db=postgresql://…`).
fn move_from_url(
    text: &str,
    field: &str,
    scoped: &dyn Fn(&str) -> String,
    store: &mut Store<'_>,
) -> Result<Option<String>, String> {
    let after_flag = text.split_once('=').filter(|(flag, _)| !flag.contains("://")).map(|(flag, _)| flag.len() + 1);
    let Some((offset, found)) = [Some(0), after_flag]
        .into_iter()
        .flatten()
        .map(|offset| (offset, secrets::in_url(&text[offset..])))
        .find(|(_, found)| !found.is_empty())
    else {
        return Ok(None);
    };
    let mut replacements = Vec::new();
    for secret in found {
        let range = secret.range.start + offset..secret.range.end + offset;
        let place = if secret.place.starts_with('?') { secret.place } else { format!(" ({})", secret.place) };
        let reference = store(format!("{field}{place}"), vec![scoped(&secret.name)], &text[range.clone()])?;
        replacements.push((range, reference));
    }
    let mut out = text.to_string();
    // From the end, so the earlier ranges still point at the same text.
    for (range, reference) in replacements.into_iter().rev() {
        out.replace_range(range, &reference);
    }
    Ok(Some(out))
}

/// The variables a definition uses without a default (`${VAR}`, not `${VAR:-x}`).
fn references(definition: &Definition) -> Vec<String> {
    let strings = definition
        .command
        .iter()
        .chain(&definition.args)
        .chain(definition.env.values())
        .chain(&definition.cwd)
        .chain(&definition.url)
        .chain(definition.headers.values());
    let mut names = Vec::new();
    for text in strings {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("${") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find('}') else { break };
            let body = &rest[..end];
            if !body.contains(":-") && !names.iter().any(|n| n == body) {
                names.push(body.to_string());
            }
            rest = &rest[end + 1..];
        }
    }
    names
}

/// A definition as short lines: `args: ["-y", "pkg"]`, maps one entry a line.
fn compact(definition: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, value) in definition.as_object().into_iter().flatten() {
        match value {
            Value::String(s) => lines.push(format!("{key}: {s}")),
            Value::Object(map) => {
                lines.push(format!("{key}:"));
                for (k, v) in map {
                    lines.push(format!("  {k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string)));
                }
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(Value::to_string).collect();
                lines.push(format!("{key}: [{}]", items.join(", ")));
            }
            other => lines.push(format!("{key}: {other}")),
        }
    }
    lines
}

/// Writes the plan: the `.env` first (so the config never names a variable
/// that is not there), then the config. Returns the config's backup, if any.
pub fn apply(plan: &mut Plan) -> Result<Option<PathBuf>, ClientsError> {
    let Some(change) = &plan.change else { return Ok(None) };
    plan.env.write()?;
    let backup = install::apply(change)?;
    plan.applied = true;
    Ok(backup)
}

/// The preview people read before saying yes. Values of moved secrets never appear.
pub fn render(plan: &Plan, env: &Env) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let dotenv = env.show(&plan.dotenv);
    if plan.files_read.is_empty() && plan.unreadable.is_empty() {
        let _ = writeln!(
            out,
            "No client config files found (looked in the current directory and in {}).",
            env.show(&env.home)
        );
        return out;
    }
    let _ = writeln!(out, "Read: {}", plan.files_read.iter().map(|p| env.show(p)).collect::<Vec<_>>().join(", "));
    for u in &plan.unreadable {
        let _ = writeln!(out, "Could not read {}: {}", env.show(&u.file), u.reason);
    }
    if plan.add.is_empty() {
        let _ = writeln!(out, "\nNothing new to import into {}.", env.show(&plan.config));
    } else {
        let _ = writeln!(out, "\nWill add {} server(s) to {}:", plan.add.len(), env.show(&plan.config));
        for p in &plan.add {
            let from: Vec<String> = p.from.iter().map(|o| o.label.clone()).collect();
            let _ = writeln!(out, "\n  + {}   (from {})", p.name, from.join("; "));
            for line in compact(&p.definition) {
                let _ = writeln!(out, "      {line}");
            }
            for m in &p.moved_to_env {
                let _ = writeln!(out, "      {}: <secret moved to {dotenv} as {}>", m.field, m.variable);
            }
            for var in &p.needs {
                let _ = writeln!(out, "      needs {var}: set it in {dotenv} (or in the environment clients run in)");
            }
            for note in &p.notes {
                let _ = writeln!(out, "      note: {note}");
            }
        }
        if !plan.dotenv_added.is_empty() {
            let _ =
                writeln!(out, "\nSecrets go to {dotenv} (mode 0600), not the config: {}", plan.dotenv_added.join(", "));
        }
    }
    if !plan.already_imported.is_empty() {
        let _ = writeln!(out, "\nAlready in the gateway:");
        for a in &plan.already_imported {
            let _ = writeln!(out, "  = {} ({}) is `{}`", a.from.name, a.from.label, a.gateway_name);
        }
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(out, "\nNot imported:");
        for s in &plan.skipped {
            let _ = writeln!(out, "  - {} ({}): {}", s.from.name, s.from.label, s.reason);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_only_known_variables() {
        let lookup = |name: &str| (name == "A").then(|| "1".to_string());
        assert_eq!(fill("x${A}y${B}z${", &lookup), "x1y${B}z${");
    }

    #[test]
    fn secrets_in_args_headers_and_urls_move_to_the_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut dotenv = GatewayEnv::load(&dir.path().join(".env")).unwrap();
        let raw = Definition {
            command: Some("tool".into()),
            args: vec![
                "--api-key=sk-abcdefgh12345678".into(),
                "--password".into(),
                "hunter2".into(),
                "--port=3000".into(),
                "ghp_abcdefghijklmnop0123456789".into(),
            ],
            url: Some("https://h/mcp?apiKey=abc123&region=eu".into()),
            headers: [("X-Api-Key".to_string(), "k3y".to_string())].into_iter().collect(),
            ..Definition::default()
        };
        let mut planned = planned("svc", raw);
        let server = finish(&mut planned, &mut dotenv).unwrap();
        assert_eq!(
            server.args,
            ["--api-key=${SVC_API_KEY}", "--password", "${SVC_PASSWORD}", "--port=3000", "${SVC_SECRET}"]
        );
        assert_eq!(server.url.as_deref(), Some("https://h/mcp?apiKey=${SVC_APIKEY}&region=eu"));
        assert_eq!(server.headers["X-Api-Key"], "${SVC_X_API_KEY}");
        assert_eq!(dotenv.get("SVC_PASSWORD"), Some("hunter2"));
        assert_eq!(dotenv.get("SVC_SECRET"), Some("ghp_abcdefghijklmnop0123456789"));
        assert_eq!(planned.moved_to_env.len(), 5);
    }

    /// A server about to be finished, as `plan` makes one.
    fn planned(name: &str, raw: Definition) -> Planned {
        Planned {
            name: name.into(),
            from: Vec::new(),
            definition: Value::Null,
            moved_to_env: Vec::new(),
            needs: Vec::new(),
            notes: Vec::new(),
            raw,
            only_in: Vec::new(),
            server: None,
        }
    }

    #[test]
    fn credentials_inside_connection_strings_and_urls_move_to_the_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut dotenv = GatewayEnv::load(&dir.path().join(".env")).unwrap();
        let raw = Definition {
            command: Some("npx".into()),
            args: vec![
                "-y".into(),
                "@modelcontextprotocol/server-postgres".into(),
                "postgresql://app:hunter2@db.internal:5432/app?sslmode=require".into(),
                "--mirror=https://ghp_abcdefghijklmnop0123@github.com/o/r.git".into(),
                "postgresql://readonly@db.internal/app".into(),
            ],
            env: [("DATABASE_URL".to_string(), "postgres://u:s3cr3t@h/db".to_string())].into_iter().collect(),
            url: Some("https://tok3n@mcp.example/mcp?api_key=abc123&region=eu".into()),
            ..Definition::default()
        };
        let mut planned = planned("pg", raw);
        let server = finish(&mut planned, &mut dotenv).unwrap();
        assert_eq!(
            server.args,
            [
                "-y",
                "@modelcontextprotocol/server-postgres",
                "postgresql://app:${PG_PASSWORD_2}@db.internal:5432/app?sslmode=require",
                "--mirror=https://${PG_TOKEN}@github.com/o/r.git",
                "postgresql://readonly@db.internal/app",
            ]
        );
        assert_eq!(server.env["DATABASE_URL"], "postgres://u:${PG_PASSWORD}@h/db");
        assert_eq!(
            server.url.as_deref(),
            Some("https://${PG_TOKEN_2}@mcp.example/mcp?api_key=${PG_API_KEY}&region=eu")
        );
        assert_eq!(dotenv.get("PG_PASSWORD"), Some("s3cr3t"));
        assert_eq!(dotenv.get("PG_PASSWORD_2"), Some("hunter2"));
        assert_eq!(dotenv.get("PG_TOKEN"), Some("ghp_abcdefghijklmnop0123"));
        assert_eq!(dotenv.get("PG_TOKEN_2"), Some("tok3n"));
        assert_eq!(dotenv.get("PG_API_KEY"), Some("abc123"));
        let fields: Vec<&str> = planned.moved_to_env.iter().map(|m| m.field.as_str()).collect();
        assert_eq!(
            fields,
            ["env.DATABASE_URL (password)", "args[2] (password)", "args[3] (user)", "url (user)", "url?api_key"]
        );
        // What the gateway runs, with the `.env` filled in, is what the client ran.
        let lookup = dotenv.lookup();
        assert_eq!(filled(&definition_of(&server), &lookup), planned.raw);
    }

    #[test]
    fn server_names_are_made_valid() {
        assert_eq!(server_name("github.com/tools"), "github-com-tools");
        assert_eq!(server_name("ok_name-1"), "ok_name-1");
        assert_eq!(server_name("..."), "server");
    }
}
