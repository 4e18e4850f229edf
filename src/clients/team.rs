//! `mcp-gateway import --from URL`: a team gateway's virtual servers as
//! remote servers of this gateway, so nobody copies their URLs by hand.
//!
//! The team gateway is IBM ContextForge: `GET <base>/servers` (bearer JWT or
//! API token) lists the virtual servers the token may see, and each serves
//! MCP (Streamable HTTP) at `<base>/servers/<id>/mcp`. Each becomes a `url:`
//! server whose `Authorization` header names the token as `${VAR}`; the token
//! itself goes to the gateway `.env` (0600), never to the config.
//!
//! Names are made from the virtual server's name (lower case, `[a-z0-9_-]`,
//! after an optional prefix), so the same catalog always gives the same
//! names; one already taken by a different server, or shared by two virtual
//! servers, gets the first 8 characters of the virtual server's id added.
//! A virtual server the config already points at (same URL) is left alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::ClientsError;
use super::dotenv::GatewayEnv;
use super::entry::var_name;
use super::import::{load_gateway, server_name};
use crate::config::ServerConfig;
use crate::install::{self, Change, Target};
use crate::redact::redacted_url;

/// How long the catalog request may take, all of it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// At most this many pages of `GET /servers` are followed.
const MAX_PAGES: usize = 100;

/// Why a team gateway's catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("--from {url}: not an http(s) URL ({reason})")]
    BadUrl { url: String, reason: String },
    #[error("could not reach the team gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the team gateway at {url} answered HTTP {status} to GET {path}: {advice} (a ContextForge JWT or API \
         token: `MCP_GATEWAY_TEAM_TOKEN=… mcp-gateway import --from {url}`)"
    )]
    Refused { url: String, path: String, status: u16, advice: &'static str },
    #[error("{url} does not look like a ContextForge team gateway: GET {path} {what}")]
    NotContextForge { url: String, path: String, what: String },
}

/// One virtual server of the team gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

/// The team gateway's base URL, as given (no trailing `/`), checked.
pub fn base_url(given: &str) -> Result<String, TeamError> {
    let bad = |reason: String| TeamError::BadUrl { url: redacted_url(given), reason };
    let url = reqwest::Url::parse(given).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("the scheme is `{}`", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL would be copied into the config; give the token with \
                        MCP_GATEWAY_TEAM_TOKEN (or --token) instead"
            .into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("give the gateway's base URL, without `?` or `#`".into()));
    }
    Ok(given.trim_end_matches('/').to_string())
}

/// Reads the virtual servers `token` may see (every page).
pub async fn fetch_catalog(base: &str, token: Option<&str>) -> Result<Vec<VirtualServer>, TeamError> {
    let shown = redacted_url(base);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| TeamError::Unreachable { url: shown.clone(), reason: e.to_string() })?;
    let mut servers = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = reqwest::Url::parse(&format!("{base}/servers"))
            .map_err(|e| TeamError::BadUrl { url: shown.clone(), reason: e.to_string() })?;
        url.query_pairs_mut().append_pair("include_pagination", "true");
        if let Some(cursor) = &cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let mut request = client.get(url).header("Accept", "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response =
            request.send().await.map_err(|e| TeamError::Unreachable { url: shown.clone(), reason: causes(e) })?;
        let status = response.status().as_u16();
        let path = "/servers".to_string();
        match status {
            401 | 403 => {
                let advice = match (status, token) {
                    (401, None) => "it needs a token; give one with --token or MCP_GATEWAY_TEAM_TOKEN",
                    (401, Some(_)) => "it does not accept the token given (expired, revoked, or another gateway's)",
                    _ => "the token may not list virtual servers (it needs `servers.read`)",
                };
                return Err(TeamError::Refused { url: shown, path, status, advice });
            }
            404 | 405 => {
                return Err(TeamError::NotContextForge {
                    url: shown,
                    path,
                    what: format!("answered HTTP {status} (no virtual-server API there)"),
                });
            }
            _ if !(200..300).contains(&status) => {
                return Err(TeamError::NotContextForge { url: shown, path, what: format!("answered HTTP {status}") });
            }
            _ => {}
        }
        let body = response.bytes().await.map_err(|e| TeamError::Unreachable {
            url: shown.clone(),
            reason: format!("reading its answer: {}", causes(e)),
        })?;
        let page = parse_page(&body).map_err(|what| TeamError::NotContextForge { url: shown.clone(), path, what })?;
        servers.extend(page.0);
        match page.1 {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(servers),
        }
    }
    Ok(servers)
}

/// A request's error with its causes (`error sending request: … Connection
/// refused`), without the URL (it is in the message already).
pub(super) fn causes(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// One page of `GET /servers`: `{"servers": [...], "nextCursor": …}` (with
/// `include_pagination`), or the bare list older releases answer with.
/// Disabled virtual servers are left out.
fn parse_page(body: &[u8]) -> Result<(Vec<VirtualServer>, Option<String>), String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        let start: String = String::from_utf8_lossy(body).chars().take(60).collect();
        format!("answered with something that is not JSON ({start:?}…)")
    })?;
    let (list, next) = match &value {
        Value::Array(list) => (list, None),
        Value::Object(object) => match object.get("servers") {
            Some(Value::Array(list)) => {
                let next = object.get("nextCursor").or_else(|| object.get("next_cursor"));
                (list, next.and_then(Value::as_str).map(str::to_string))
            }
            _ => return Err("answered JSON without a `servers` list".into()),
        },
        _ => return Err("answered JSON that is not a list of virtual servers".into()),
    };
    let mut servers = Vec::new();
    for item in list {
        let (Some(id), Some(name)) = (item["id"].as_str(), item["name"].as_str()) else {
            return Err("listed an entry without the `id` and `name` of a virtual server".into());
        };
        if item["enabled"] == false || item["isActive"] == false {
            continue;
        }
        let description = item["description"].as_str().filter(|d| !d.trim().is_empty()).map(str::to_string);
        servers.push(VirtualServer { id: id.to_string(), name: name.to_string(), description });
    }
    Ok((servers, next))
}

/// The MCP endpoint of a virtual server.
pub fn endpoint(base: &str, id: &str) -> String {
    format!("{base}/servers/{id}/mcp")
}

/// A virtual server the import adds.
#[derive(Debug, Clone, Serialize)]
pub struct TeamPlanned {
    /// Its name in the gateway.
    pub name: String,
    /// Its name and id in the team gateway.
    pub virtual_name: String,
    pub id: String,
    /// The definition as it will be written (the token as `${VAR}`).
    pub definition: Value,
    pub notes: Vec<String>,
}

/// A virtual server the gateway already points at, or one left out.
#[derive(Debug, Clone, Serialize)]
pub struct TeamOther {
    pub virtual_name: String,
    pub id: String,
    /// `already`: its gateway name; `skipped`: why.
    pub detail: String,
}

/// Everything `import --from URL` would do.
#[derive(Debug, Serialize)]
pub struct TeamPlan {
    /// The team gateway (credentials in the URL redacted).
    pub source: String,
    pub config: PathBuf,
    pub dotenv: PathBuf,
    pub add: Vec<TeamPlanned>,
    pub already_imported: Vec<TeamOther>,
    pub skipped: Vec<TeamOther>,
    /// The `.env` variable the servers' `Authorization` names, if a token was given.
    pub token_variable: Option<String>,
    /// Variables added to the gateway `.env` (names only).
    pub dotenv_added: Vec<String>,
    pub applied: bool,
    #[serde(skip)]
    env: GatewayEnv,
    #[serde(skip)]
    change: Option<Change>,
}

/// Works out what importing `servers` of the team gateway at `base` into
/// `config` would do. `prefix` goes before every name; the token, when
/// given, is stored in the gateway `.env` under `<PREFIX>_TOKEN` (else
/// `TEAM_GATEWAY_TOKEN`), or the variable already holding it.
pub fn plan(
    base: &str,
    servers: &[VirtualServer],
    token: Option<&str>,
    prefix: &str,
    config: &Path,
) -> Result<TeamPlan, ClientsError> {
    let (existing, mut env) = load_gateway(config)?;
    let token_variable = match token {
        Some(token) => {
            let stem = prefix.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            let first =
                if stem.is_empty() { "TEAM_GATEWAY_TOKEN".to_string() } else { format!("{}_TOKEN", var_name(stem)) };
            Some(env.store(&[first], token)?)
        }
        None => None,
    };
    let mut plan = TeamPlan {
        source: redacted_url(base),
        config: config.to_path_buf(),
        dotenv: env.path.clone(),
        add: Vec::new(),
        already_imported: Vec::new(),
        skipped: Vec::new(),
        token_variable: token_variable.clone(),
        dotenv_added: env.added_names(),
        applied: false,
        env,
        change: None,
    };
    let mut ready: Vec<(String, ServerConfig)> = Vec::new();
    for vs in servers {
        let url = endpoint(base, &vs.id);
        let other = |detail: String| TeamOther { virtual_name: vs.name.clone(), id: vs.id.clone(), detail };
        if let Some((name, _)) = existing.iter().find(|(_, s)| s.url.as_deref() == Some(url.as_str())) {
            plan.already_imported.push(other(name.clone()));
            continue;
        }
        let taken = |name: &str, ready: &[(String, ServerConfig)]| {
            existing.contains_key(name) || ready.iter().any(|(n, _)| n == name)
        };
        let slug = |name: &str| server_name(&name.to_ascii_lowercase());
        let base_name = format!("{prefix}{}", slug(&vs.name));
        // Two virtual servers of one name: both get their id, whatever order they come in.
        let shared = servers.iter().filter(|o| slug(&o.name) == slug(&vs.name)).count() > 1;
        let mut notes = Vec::new();
        let name = if taken(&base_name, &ready) || shared {
            let short: String = vs.id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
            let alternative = format!("{base_name}-{}", short.to_ascii_lowercase());
            if taken(&alternative, &ready) {
                plan.skipped.push(other(format!(
                    "the gateway already has different servers named `{base_name}` and `{alternative}`; import \
                     with --prefix, or rename them"
                )));
                continue;
            }
            notes.push(format!("named `{alternative}`: `{base_name}` is another server's name too"));
            alternative
        } else {
            base_name
        };
        let mut raw = Map::new();
        raw.insert("url".into(), url.into());
        if let Some(variable) = &token_variable {
            let headers: Map<String, Value> =
                [("Authorization".to_string(), Value::String(format!("Bearer ${{{variable}}}")))].into_iter().collect();
            raw.insert("headers".into(), Value::Object(headers));
        }
        let description = match &vs.description {
            Some(d) => format!("{} (team gateway: {})", d.trim(), vs.name),
            None => format!("{} (team gateway)", vs.name),
        };
        raw.insert("description".into(), description.into());
        let server: ServerConfig = serde_json::from_value(Value::Object(raw))
            .map_err(|e| ClientsError::Usage(format!("virtual server `{}`: {e}", vs.name)))?;
        plan.add.push(TeamPlanned {
            name: name.clone(),
            virtual_name: vs.name.clone(),
            id: vs.id.clone(),
            definition: install::as_written(&server),
            notes,
        });
        ready.push((name, server));
    }
    if ready.is_empty() {
        // Nothing to add: nothing to write to `.env` either.
        plan.env = GatewayEnv::load(&plan.dotenv)?;
        plan.dotenv_added.clear();
    } else {
        plan.change = Some(install::plan_install_all(config, Target::Config, &ready)?);
    }
    Ok(plan)
}

impl TeamPlan {
    /// The names of the servers it adds.
    pub fn names(&self) -> Vec<String> {
        self.add.iter().map(|p| p.name.clone()).collect()
    }
}

/// Writes the plan: the `.env` first (so the config never names a variable
/// that is not there), then the config. Returns the config's backup, if any.
pub fn apply(plan: &mut TeamPlan) -> Result<Option<PathBuf>, ClientsError> {
    let Some(change) = &plan.change else { return Ok(None) };
    plan.env.write()?;
    let backup = install::apply(change)?;
    plan.applied = true;
    Ok(backup)
}

/// The preview people read before saying yes. The token never appears.
pub fn render(plan: &TeamPlan, show: &dyn Fn(&Path) -> String) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Read the virtual servers of the team gateway at {}.", plan.source);
    if plan.add.is_empty() {
        let _ = writeln!(out, "\nNothing new to import into {}.", show(&plan.config));
    } else {
        let _ = writeln!(out, "\nWill add {} server(s) to {}:", plan.add.len(), show(&plan.config));
        for p in &plan.add {
            let _ = writeln!(out, "\n  + {}   (virtual server `{}`, id {})", p.name, p.virtual_name, p.id);
            for (key, value) in p.definition.as_object().into_iter().flatten() {
                match value {
                    Value::Object(map) => {
                        for (k, v) in map {
                            let _ = writeln!(out, "      {key}.{k}: {}", v.as_str().unwrap_or_default());
                        }
                    }
                    other => {
                        let _ = writeln!(
                            out,
                            "      {key}: {}",
                            other.as_str().map_or_else(|| other.to_string(), str::to_string)
                        );
                    }
                }
            }
            for note in &p.notes {
                let _ = writeln!(out, "      note: {note}");
            }
        }
        match (&plan.token_variable, plan.dotenv_added.is_empty()) {
            (Some(variable), false) => {
                let _ = writeln!(
                    out,
                    "\nThe token goes to {} (mode 0600) as {variable}, not the config.",
                    show(&plan.dotenv)
                );
            }
            (Some(variable), true) => {
                let _ = writeln!(out, "\nThe token is already in {} as {variable}.", show(&plan.dotenv));
            }
            (None, _) => {
                let _ = writeln!(out, "\nNo token given: the servers are added without an `Authorization` header.");
            }
        }
    }
    if !plan.already_imported.is_empty() {
        let _ = writeln!(out, "\nAlready in the gateway:");
        for a in &plan.already_imported {
            let _ = writeln!(out, "  = virtual server `{}` is `{}`", a.virtual_name, a.detail);
        }
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(out, "\nNot imported:");
        for s in &plan.skipped {
            let _ = writeln!(out, "  - virtual server `{}` ({}): {}", s.virtual_name, s.id, s.detail);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(id: &str, name: &str) -> VirtualServer {
        VirtualServer { id: id.into(), name: name.into(), description: None }
    }

    #[test]
    fn pages_of_contextforge_and_answers_that_are_not() {
        let page = br#"{"servers": [{"id": "a1", "name": "Team Tools", "description": "", "enabled": true},
                                    {"id": "b2", "name": "off", "enabled": false}], "nextCursor": "c"}"#;
        let (servers, next) = parse_page(page).unwrap();
        assert_eq!(servers, [vs("a1", "Team Tools")]);
        assert_eq!(next.as_deref(), Some("c"));
        assert_eq!(parse_page(br#"[{"id": "x", "name": "y"}]"#).unwrap().0, [vs("x", "y")]);
        assert!(parse_page(b"<html>hello</html>").unwrap_err().contains("not JSON"));
        assert!(parse_page(br#"{"jsonrpc": "2.0"}"#).unwrap_err().contains("`servers`"));
        assert!(parse_page(br#"[{"name": "no id"}]"#).unwrap_err().contains("`id`"));
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("https://cf.example.com/gw/").unwrap(), "https://cf.example.com/gw");
        for bad in ["ftp://cf", "https://me:pw@cf.example.com", "https://cf?x=1", "cf.example.com"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        let e = base_url("https://me:hunter2@cf.example.com").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn names_are_readable_and_deterministic_and_the_token_stays_in_env() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "servers:\n  docs:\n    command: docs-mcp\n").unwrap();
        let catalog = [vs("0123abcd-ffff", "Docs"), vs("9999", "Team Tools"), vs("aaaa1111", "team tools")];
        let plan = plan("http://cf:4444", &catalog, Some("eyJ.secret.jwt"), "", &config).unwrap();
        let names = plan.names();
        assert_eq!(names, ["docs-0123abcd", "team-tools-9999", "team-tools-aaaa1111"]);
        assert_eq!(plan.token_variable.as_deref(), Some("TEAM_GATEWAY_TOKEN"));
        let first = &plan.add[0].definition;
        assert_eq!(first["url"], "http://cf:4444/servers/0123abcd-ffff/mcp");
        assert_eq!(first["headers"]["Authorization"], "Bearer ${TEAM_GATEWAY_TOKEN}");
        let text = serde_json::to_string(&plan).unwrap() + &render(&plan, &|p| p.display().to_string());
        assert!(!text.contains("eyJ.secret.jwt"), "{text}");
        // With a prefix, the token's variable follows it.
        let plan = super::plan("http://cf:4444", &catalog[..2], Some("t"), "acme-", &config).unwrap();
        assert_eq!(plan.names(), ["acme-docs", "acme-team-tools"]);
        assert_eq!(plan.token_variable.as_deref(), Some("ACME_TOKEN"));
    }
}
