//! The catalog of installable servers: shipped inside the binary (the data file
//! `catalog/servers.yaml`, compiled in) and extended or overridden by the
//! user's `catalog.yaml` beside the config.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use tracing::warn;

use crate::config::ServerConfig;

const SHIPPED: &str = include_str!("../catalog/servers.yaml");

/// One installable server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub description: String,
    /// Variables the server needs (reported at install time when not set).
    #[serde(default)]
    pub requires: Vec<String>,
    /// The definition that goes into the config.
    pub server: ServerConfig,
}

pub type Registry = IndexMap<String, Entry>;

/// The shipped catalog (a build that does not parse it is a broken build: see the test).
pub fn shipped() -> Registry {
    serde_norway::from_str(SHIPPED).unwrap_or_default()
}

/// The shipped catalog with the user's entries on top.
pub fn load(user_file: &Path) -> Registry {
    let mut registry = shipped();
    match std::fs::read_to_string(user_file) {
        Ok(text) => match serde_norway::from_str::<Registry>(&text) {
            Ok(user) => registry.extend(user),
            Err(e) => {
                let line = e.location().map_or(0, |l| l.line());
                warn!("ignoring the user catalog {}:{line}: {e}", user_file.display());
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(path = %user_file.display(), error = %e, "cannot read the user catalog"),
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_parses_and_covers_the_common_servers() {
        let registry: Registry = serde_norway::from_str(SHIPPED).expect("catalog/servers.yaml must parse");
        for name in [
            "filesystem",
            "memory",
            "fetch",
            "git",
            "time",
            "sequential-thinking",
            "github",
            "playwright",
            "context7",
            "supabase",
            "postgres",
            "everything",
        ] {
            assert!(registry.contains_key(name), "{name} missing");
        }
        assert_eq!(registry["github"].requires, ["GITHUB_TOKEN"]);
    }

    #[test]
    fn user_entries_add_and_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.yaml");
        std::fs::write(&path, "memory:\n  description: mine\n  server: { command: my-memory }\nextra:\n  description: x\n  server: { command: x }\n").unwrap();
        let registry = load(&path);
        assert_eq!(registry["memory"].description, "mine");
        assert!(registry.contains_key("extra") && registry.contains_key("git"));
        std::fs::write(&path, "broken: [").unwrap();
        assert_eq!(load(&path), shipped());
    }
}
