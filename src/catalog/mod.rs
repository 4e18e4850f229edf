//! What clients see: every backend's tools, prompts and resources under one roof.
//!
//! Tool and prompt names become `<server>__<name>`, restricted to the characters
//! clients accept (`[A-Za-z0-9_-]`) and to the session's [`NameBudget`], which
//! leaves room within the model APIs' 64 for the prefix its client puts in
//! front (Claude Code offers `mcp__gateway__<name>`). Exposed names are mapped
//! back through a table built alongside them, never parsed, so a server or tool
//! name containing `__` still routes correctly.
//!
//! Listings are persisted per server with the fingerprint of its definition so a
//! fresh daemon can answer `tools/list` for a server it has not started yet.

pub mod budget;
pub mod search;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use budget::NameBudget;

const HASH_SUFFIX_LEN: usize = 8;

/// What a shortened name keeps of the server's part at least (all of it when
/// shorter) under `budget`: enough to say which server it is. Under the
/// least budget, it is what [`may_expose`] checks.
fn server_keep(budget: NameBudget) -> usize {
    (budget.len() - HASH_SUFFIX_LEN - 1 - 2) / 2
}

fn short_hash(input: &str) -> String {
    crate::config::hex_digest(input.as_bytes(), HASH_SUFFIX_LEN / 2)
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// The name a backend tool or prompt is exposed as, before collisions are resolved.
///
/// A name longer than `budget` is shortened the same way every time and
/// still says which server and which tool: the server's part keeps what the
/// tool's leaves of the room, but at least [`server_keep`] characters, the
/// tool's part the head of the rest, and a hash of the full pair tells apart
/// names that then look alike (`filesystem-readonly-projects__list_directory_with_sizes`
/// becomes `filesystem-readon__list_directory_wit_bbf16b4c` in 46 characters).
pub fn exposed_name(server: &str, name: &str, prefix: bool, budget: NameBudget) -> String {
    let hash = || short_hash(&format!("{server}/{name}"));
    let room = budget.len() - HASH_SUFFIX_LEN - 1;
    if !prefix {
        let clean = sanitize(name);
        if clean.len() <= budget.len() {
            return clean;
        }
        return format!("{}_{}", &clean[..room], hash());
    }
    // Sanitized to ASCII, so byte slicing is slicing characters.
    let (server_part, tool_part) = (sanitize(server), sanitize(name));
    if server_part.len() + 2 + tool_part.len() <= budget.len() {
        return format!("{server_part}__{tool_part}");
    }
    let room = room - 2;
    let server_keep = server_part.len().min(room.saturating_sub(tool_part.len()).max(server_keep(budget)));
    let tool_keep = tool_part.len().min(room - server_keep);
    format!("{}__{}_{}", &server_part[..server_keep], &tool_part[..tool_keep], hash())
}

/// Whether `exposed` can be the exposed name of one of `server`'s tools or
/// prompts, whatever the server lists: it starts with the server's sanitized
/// `<server>__` prefix, or, for a server name longer than a shortened name
/// keeps, with the characters every shortened name keeps under any budget
/// (the [`server_keep`] of [`NameBudget::MIN`]).
/// Collision suffixes keep those too. A server with `prefix: false` can expose
/// any name.
///
/// This is how a call finds the few servers it has to wait for before their
/// listings are known: naming is deterministic, so no other server can
/// produce the name.
pub fn may_expose(server: &str, prefix: bool, exposed: &str) -> bool {
    if !prefix {
        return true;
    }
    let head = sanitize(&format!("{server}__"));
    if exposed.starts_with(&head) {
        return true;
    }
    let server_part = &head[..head.len() - 2];
    let keep = server_keep(NameBudget::MIN);
    server_part.len() > keep && exposed.starts_with(&server_part[..keep])
}

/// Assigns collision-free exposed names within `budget`, in order, to
/// `(server, name, prefix)` items.
fn assign_names<'a>(items: impl Iterator<Item = (&'a str, &'a str, bool)>, budget: NameBudget) -> Vec<String> {
    let mut used = HashSet::new();
    let mut names = Vec::new();
    for (server, name, prefix) in items {
        let mut candidate = exposed_name(server, name, prefix, budget);
        let mut attempt = 0u32;
        while used.contains(&candidate) {
            attempt += 1;
            let suffix = short_hash(&format!("{server}/{name}#{attempt}"));
            let base = exposed_name(server, name, prefix, budget);
            let keep = base.len().min(budget.len() - HASH_SUFFIX_LEN - 1);
            candidate = format!("{}_{suffix}", &base[..keep]);
        }
        used.insert(candidate.clone());
        names.push(candidate);
    }
    names
}

/// What one backend offers, as last listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerListing {
    /// The backend's `initialize` result (capabilities, serverInfo, instructions).
    #[serde(default)]
    pub initialize: Value,
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub prompts: Vec<Value>,
    #[serde(default)]
    pub resources: Vec<Value>,
    #[serde(default)]
    pub resource_templates: Vec<Value>,
    /// The era the backend was found to speak, so that a later start of the
    /// same definition, even by another daemon, need not ask again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub era: Option<crate::era::Era>,
    /// The tools seen to ask a client something mid-call (see
    /// `gateway::asking`), so that a new daemon knows from the first call.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub asking_tools: std::collections::BTreeSet<String>,
    /// What each tool was seen to ask a client for (`sampling`,
    /// `elicitation`, `url-elicitation`), recorded only when the request
    /// could be told to come from one call of it: such a tool is not listed
    /// to a session that cannot answer that (see `gateway::server_requests`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub asks_for: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl ServerListing {
    /// Whether the backend declared a capability (`tools`, `prompts`, …).
    pub fn has_capability(&self, name: &str) -> bool {
        self.initialize.get("capabilities").and_then(|c| c.get(name)).is_some()
    }

    /// The backend's `instructions`, if any.
    pub fn instructions(&self) -> Option<&str> {
        self.initialize.get("instructions").and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
}

/// Where an exposed tool or prompt really lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub server: String,
    pub name: String,
}

/// One server's contribution to the catalog: its name, prefixing, tool filter and listing.
pub struct CatalogInput<'a> {
    pub server: &'a str,
    pub prefix: bool,
    pub filter: &'a crate::config::ToolFilter,
    pub listing: &'a ServerListing,
}

/// The aggregated view, rebuilt whenever a listing or the config changes.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tools: Vec<Value>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub resource_templates: Vec<Value>,
    tool_targets: HashMap<String, Target>,
    prompt_targets: HashMap<String, Target>,
    /// Exact resource URI → server.
    resource_servers: HashMap<String, String>,
    /// Template URI prefix (up to the first `{`) → server, longest first.
    template_prefixes: Vec<(String, String)>,
    /// Servers that could not be listed, and why (said when a name is not found).
    pub unavailable: Vec<(String, String)>,
    /// Exposed tool name → what the tool was seen to ask a client for.
    asks_for: HashMap<String, std::collections::BTreeSet<String>>,
}

fn renamed(item: &Value, name: &str) -> Value {
    let mut item = item.clone();
    if let Some(obj) = item.as_object_mut() {
        obj.insert("name".into(), Value::String(name.to_string()));
    }
    item
}

fn item_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

impl Catalog {
    /// The server that could not be listed whose `<server>__` names `name`
    /// starts with, and why it could not be.
    pub fn unavailable_for(&self, name: &str) -> Option<&(String, String)> {
        self.unavailable
            .iter()
            .find(|(server, _)| name.strip_prefix(server.as_str()).is_some_and(|r| r.starts_with("__")))
    }

    /// Builds the catalog from servers in config order, its names within `budget`.
    pub fn build(inputs: &[CatalogInput<'_>], budget: NameBudget) -> Catalog {
        let mut catalog = Catalog::default();
        let (tools, tool_targets) = Self::expose(inputs, |l| &l.tools, true, budget);
        let (prompts, prompt_targets) = Self::expose(inputs, |l| &l.prompts, false, budget);
        catalog.tools = tools;
        catalog.tool_targets = tool_targets;
        catalog.prompts = prompts;
        catalog.prompt_targets = prompt_targets;
        for (exposed, target) in &catalog.tool_targets {
            let listing = inputs.iter().find(|i| i.server == target.server).map(|i| i.listing);
            if let Some(kinds) = listing.and_then(|l| l.asks_for.get(&target.name)) {
                catalog.asks_for.insert(exposed.clone(), kinds.clone());
            }
        }
        for input in inputs {
            for resource in &input.listing.resources {
                if let Some(uri) = resource.get("uri").and_then(Value::as_str) {
                    catalog.resource_servers.entry(uri.to_string()).or_insert_with(|| input.server.to_string());
                }
                catalog.resources.push(resource.clone());
            }
            for template in &input.listing.resource_templates {
                if let Some(uri) = template.get("uriTemplate").and_then(Value::as_str) {
                    let prefix = uri.split('{').next().unwrap_or(uri).to_string();
                    catalog.template_prefixes.push((prefix, input.server.to_string()));
                }
                catalog.resource_templates.push(template.clone());
            }
        }
        catalog.template_prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        catalog
    }

    /// The items under their exposed names, and where each name leads. A
    /// name under the default budget leads where it would for any client
    /// too (unlisted when it differs): a call made with the name another
    /// client was shown still finds its tool.
    fn expose(
        inputs: &[CatalogInput<'_>],
        items: impl Fn(&ServerListing) -> &Vec<Value>,
        filtered: bool,
        budget: NameBudget,
    ) -> (Vec<Value>, HashMap<String, Target>) {
        let flat: Vec<(&CatalogInput<'_>, &Value, &str)> = inputs
            .iter()
            .flat_map(|input| items(input.listing).iter().filter_map(move |item| Some((input, item, item_name(item)?))))
            .filter(|(input, _, name)| !filtered || input.filter.permits(name))
            .collect();
        let triples = || flat.iter().map(|(input, _, name)| (input.server, *name, input.prefix));
        let names = assign_names(triples(), budget);
        let defaults = (budget != NameBudget::DEFAULT).then(|| assign_names(triples(), NameBudget::DEFAULT));
        let mut exposed = Vec::with_capacity(flat.len());
        let mut targets = HashMap::with_capacity(flat.len());
        for ((input, item, name), exposed_as) in flat.iter().zip(names) {
            exposed.push(renamed(item, &exposed_as));
            targets.insert(exposed_as, Target { server: input.server.to_string(), name: name.to_string() });
        }
        for ((input, _, name), alias) in flat.iter().zip(defaults.into_iter().flatten()) {
            targets.entry(alias).or_insert_with(|| Target { server: input.server.to_string(), name: name.to_string() });
        }
        (exposed, targets)
    }

    pub fn tool(&self, exposed: &str) -> Option<&Target> {
        self.tool_targets.get(exposed)
    }

    /// What the tool exposed as `exposed` was seen to ask a client for.
    pub fn asks_for(&self, exposed: &str) -> Option<&std::collections::BTreeSet<String>> {
        self.asks_for.get(exposed)
    }

    pub fn prompt(&self, exposed: &str) -> Option<&Target> {
        self.prompt_targets.get(exposed)
    }

    /// The server that serves a resource URI: an exact listing, else the longest
    /// matching template prefix.
    pub fn resource_server(&self, uri: &str) -> Option<&str> {
        if let Some(server) = self.resource_servers.get(uri) {
            return Some(server);
        }
        self.template_prefixes
            .iter()
            .find(|(prefix, _)| !prefix.is_empty() && uri.starts_with(prefix.as_str()))
            .map(|(_, server)| server.as_str())
    }

    /// Exposed tool names closest to a wrong one, for error messages.
    pub fn similar_tools(&self, wrong: &str, limit: usize) -> Vec<&str> {
        let wrong_lower = wrong.to_ascii_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .tools
            .iter()
            .filter_map(item_name)
            .map(|name| (edit_distance(&wrong_lower, &name.to_ascii_lowercase()), name))
            .collect();
        scored.sort();
        let cutoff = (wrong.len() / 3).max(2);
        scored.into_iter().filter(|(d, _)| *d <= cutoff).take(limit).map(|(_, n)| n).collect()
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// One persisted listing with the definition fingerprint it was taken under.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedListing {
    fingerprint: String,
    listing: ServerListing,
    /// When it was taken (seconds since the Unix epoch), for `status`: how
    /// old what clients are told before the server runs is. Absent in caches
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listed_at: Option<u64>,
}

/// Listings on disk, keyed by server name.
#[derive(Debug, Default)]
pub struct ListingCache {
    path: Option<PathBuf>,
    entries: HashMap<String, CachedListing>,
}

impl ListingCache {
    /// Loads the cache; a missing or unreadable file is an empty cache (it is only a cache).
    pub fn load(path: &Path) -> ListingCache {
        let entries = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable catalog cache");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        ListingCache { path: Some(path.to_path_buf()), entries }
    }

    /// The cached listing of `server`, if it was taken under `fingerprint`.
    pub fn get(&self, server: &str, fingerprint: &str) -> Option<Arc<ServerListing>> {
        self.entries.get(server).filter(|e| e.fingerprint == fingerprint).map(|e| Arc::new(e.listing.clone()))
    }

    /// When the cached listing of `server` under `fingerprint` was taken, if
    /// there is one and that was recorded.
    pub fn listed_at(&self, server: &str, fingerprint: &str) -> Option<std::time::SystemTime> {
        let entry = self.entries.get(server).filter(|e| e.fingerprint == fingerprint)?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.listed_at?))
    }

    /// Stores a listing and writes the file (atomically, via rename).
    pub fn put(&mut self, server: &str, fingerprint: &str, listing: &ServerListing) {
        let listed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs());
        self.entries.insert(
            server.to_string(),
            CachedListing { fingerprint: fingerprint.to_string(), listing: listing.clone(), listed_at },
        );
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "could not write the catalog cache");
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(&self.entries)?)?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: NameBudget = NameBudget::DEFAULT;

    #[test]
    fn names_are_prefixed_sanitized_and_bounded() {
        assert_eq!(exposed_name("everything", "echo", true, D), "everything__echo");
        assert_eq!(exposed_name("everything", "echo", false, D), "echo");
        assert_eq!(exposed_name("fs", "read.file", true, D), "fs__read_file");
        let long = exposed_name("server", &"x".repeat(100), true, D);
        assert_eq!(long.len(), D.len());
        assert!(long.starts_with("server__xxx"), "{long}");
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        // Stable: the same input gives the same name.
        assert_eq!(long, exposed_name("server", &"x".repeat(100), true, D));
        // Different long names differ.
        assert_ne!(long, exposed_name("server", &format!("{}y", "x".repeat(100)), true, D));
    }

    /// What a client offers its model stays within the APIs' 64 characters
    /// with the longest client prefix in front, and a shortened name still
    /// says which server and which tool it is.
    #[test]
    fn names_fit_behind_the_clients_prefix_and_stay_readable() {
        assert_eq!(D.len(), 46);
        let cases = [
            ("filesystem-readonly-projects", "list_directory_with_sizes"),
            (&*"long-server-name-".repeat(5), "get"),
            ("gh", &*"a_very_long_tool_name_".repeat(4)),
            (&*"s".repeat(80), &*"t".repeat(80)),
        ];
        for (server, tool) in cases {
            let name = exposed_name(server, tool, true, D);
            assert!(name.len() <= D.len(), "{name}");
            for prefix in ["mcp__gateway__", "mcp_gateway_", "mcp__mcp-gateway__"] {
                assert!(prefix.len() + name.len() <= budget::MAX_NAME_LEN, "{prefix}{name}");
            }
            let (server_part, rest) = name.split_once("__").unwrap_or_else(|| panic!("{name} keeps `__`"));
            assert!(server.starts_with(server_part) && server_part.len() >= server_keep(D).min(server.len()), "{name}");
            let tool_part = rest.rsplit_once('_').map_or(rest, |(t, _)| t);
            assert!(tool_part.len() >= 8.min(tool.len()) && tool.starts_with(tool_part), "{name}: the tool is kept");
            assert_eq!(name, exposed_name(server, tool, true, D), "stable");
        }
        assert_eq!(
            exposed_name("filesystem-readonly-projects", "list_directory_with_sizes", true, D),
            format!(
                "filesystem-readon__list_directory_wit_{}",
                short_hash("filesystem-readonly-projects/list_directory_with_sizes")
            )
        );
        // Two tools of a long-named server that differ only at their end.
        let a = exposed_name("filesystem-readonly-projects", "list_directory_with_sizes", true, D);
        let b = exposed_name("filesystem-readonly-projects", "list_directory_with_times", true, D);
        assert_ne!(a, b);
    }

    #[test]
    fn a_name_finds_the_unlisted_server_it_belongs_to() {
        let catalog = Catalog {
            unavailable: vec![("gh".into(), "needs a login".into()), ("gh-enterprise".into(), "down".into())],
            ..Catalog::default()
        };
        assert_eq!(catalog.unavailable_for("gh__issues").map(|(_, why)| why.as_str()), Some("needs a login"));
        assert_eq!(catalog.unavailable_for("gh-enterprise__issues").map(|(s, _)| s.as_str()), Some("gh-enterprise"));
        assert_eq!(catalog.unavailable_for("ghost__x"), None);
        assert_eq!(catalog.unavailable_for("gh"), None);
    }

    #[test]
    fn a_name_leads_to_the_servers_that_can_expose_it() {
        let long_server = "s".repeat(70);
        let cases =
            [("github", "create_issue"), ("my.server", "x"), (long_server.as_str(), "tool"), ("srv", &*"t".repeat(80))];
        for (server, tool) in cases {
            let exposed = exposed_name(server, tool, true, D);
            assert!(may_expose(server, true, &exposed), "{server} / {exposed}");
            for (other, _) in cases.iter().filter(|(other, _)| *other != server) {
                assert!(!may_expose(other, true, &exposed), "{other} does not expose {exposed}");
            }
        }
        // Collision suffixes keep the prefix.
        let names = assign_names([("a", "read.file", true), ("a", "read_file", true)].into_iter(), D);
        assert!(names.iter().all(|n| may_expose("a", true, n) && !may_expose("b", true, n)), "{names:?}");
        assert!(may_expose("plain", false, "anything"));
        assert!(!may_expose("github", true, "githu"));
        assert!(!may_expose(&long_server, true, "é"), "not a character boundary, no panic");
    }

    #[test]
    fn collisions_get_distinct_names() {
        let listing_a = ServerListing {
            tools: vec![json!({"name": "read.file"}), json!({"name": "read_file"})],
            ..Default::default()
        };
        let listing_b = ServerListing { tools: vec![json!({"name": "read_file"})], ..Default::default() };
        let catalog = Catalog::build(
            &[
                CatalogInput { server: "a", prefix: false, filter: &Default::default(), listing: &listing_a },
                CatalogInput { server: "b", prefix: false, filter: &Default::default(), listing: &listing_b },
            ],
            D,
        );
        let names: Vec<&str> = catalog.tools.iter().filter_map(item_name).collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), 3, "{names:?}");
        assert_eq!(names[0], "read_file");
        for name in &names {
            assert!(name.len() <= D.len());
        }
        assert_eq!(catalog.tool(names[0]), Some(&Target { server: "a".into(), name: "read.file".into() }));
        assert_eq!(catalog.tool(names[1]), Some(&Target { server: "a".into(), name: "read_file".into() }));
        assert_eq!(catalog.tool(names[2]), Some(&Target { server: "b".into(), name: "read_file".into() }));
    }

    /// A client whose prefix is short gets the full name where the default
    /// budget cuts it; a call with the name any client is shown finds the tool.
    #[test]
    fn a_roomier_budget_shows_full_names_and_knows_the_short_ones() {
        let listing = ServerListing {
            tools: vec![json!({"name": "list_directory_with_sizes"}), json!({"name": "read"})],
            ..Default::default()
        };
        let server = "filesystem-readonly-pr"; // 22 + 2 + 25 = 49 characters with the tool
        let inputs = [CatalogInput { server, prefix: true, filter: &Default::default(), listing: &listing }];
        let claude = NameBudget::for_client(Some("claude-code"), None);
        let roomy = Catalog::build(&inputs, claude);
        let plain = Catalog::build(&inputs, D);
        let full = "filesystem-readonly-pr__list_directory_with_sizes";
        assert_eq!(roomy.tools[0]["name"], full);
        let short = plain.tools[0]["name"].as_str().unwrap().to_string();
        assert!(short.len() <= D.len() && short.starts_with("filesystem-readon__list_dir"), "{short}");
        let target = Target { server: server.into(), name: "list_directory_with_sizes".into() };
        assert_eq!(roomy.tool(full), Some(&target));
        assert_eq!(roomy.tool(&short), Some(&target), "the default name still routes");
        assert_eq!(plain.tool(full), None, "a longer name is not made up for a client that was not shown it");
        assert_eq!(roomy.tools.len(), 2, "the default names are not listed twice");
        assert_eq!(roomy.tools[1]["name"], plain.tools[1]["name"]);
    }

    #[test]
    fn routes_names_without_parsing_them() {
        let listing = ServerListing {
            tools: vec![json!({"name": "x__y", "description": "d", "inputSchema": {"type": "object"}})],
            prompts: vec![json!({"name": "p"})],
            resources: vec![json!({"uri": "demo://a", "name": "a"})],
            resource_templates: vec![json!({"uriTemplate": "demo://t/{id}", "name": "t"})],
            ..Default::default()
        };
        let catalog = Catalog::build(
            &[CatalogInput { server: "my__server", prefix: true, filter: &Default::default(), listing: &listing }],
            D,
        );
        assert_eq!(catalog.tools[0]["name"], "my__server__x__y");
        assert_eq!(catalog.tools[0]["description"], "d");
        assert_eq!(catalog.tool("my__server__x__y").unwrap().name, "x__y");
        assert_eq!(catalog.prompt("my__server__p").unwrap().server, "my__server");
        assert_eq!(catalog.resource_server("demo://a"), Some("my__server"));
        assert_eq!(catalog.resource_server("demo://t/42"), Some("my__server"));
        assert_eq!(catalog.resource_server("other://x"), None);
    }

    #[test]
    fn suggests_close_names() {
        let listing =
            ServerListing { tools: vec![json!({"name": "echo"}), json!({"name": "get-sum"})], ..Default::default() };
        let catalog = Catalog::build(
            &[CatalogInput { server: "everything", prefix: true, filter: &Default::default(), listing: &listing }],
            D,
        );
        assert_eq!(catalog.similar_tools("everything__ecko", 3), vec!["everything__echo"]);
        assert!(catalog.similar_tools("zzzzzzzzzzzzzzzzzzzzzz", 3).is_empty());
    }

    #[test]
    fn cache_round_trips_and_respects_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/catalog.json");
        let listing = ServerListing { tools: vec![json!({"name": "echo"})], ..Default::default() };
        ListingCache::load(&path).put("everything", "fp1", &listing);
        let cache = ListingCache::load(&path);
        assert_eq!(cache.get("everything", "fp1").as_deref(), Some(&listing));
        assert!(cache.get("everything", "fp2").is_none());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(ListingCache::load(&path).get("everything", "fp1").is_none());
    }
}
