//! One client's server entry, in the gateway's terms: the neutral types every
//! dialect's reader (`json.rs`, `codex.rs`) produces, so the rest of
//! the import compares like with like.

use std::path::Path;

use indexmap::IndexMap;
use serde::Serialize;

use super::locations::{Env, SourceFile};

/// The shim's binary name: entries that run it are the gateway already.
pub const SHIM: &str = "mcp-gateway-connect";

/// A server as a client runs it, in the gateway's vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Definition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
}

/// What an entry turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A server the gateway can run.
    Server {
        /// Boxed: it is much larger than the other variants.
        definition: Box<Definition>,
        /// Things a person should know (translated variables, guessed `cwd`).
        notes: Vec<String>,
        /// Variables the entry needs that no file holds (VS Code prompts).
        needs: Vec<String>,
    },
    /// It already runs `mcp-gateway-connect`.
    Shim,
    /// It cannot be imported; the reason.
    Skip(String),
}

/// One entry found in a client's file.
#[derive(Debug, Clone)]
pub struct Found {
    pub source: SourceFile,
    /// The keys leading to the map the entry is in (`["mcpServers"]`, or
    /// `["projects", "/src/app", "mcpServers"]`, or `["mcp_servers"]`).
    pub location: Vec<String>,
    pub name: String,
    pub parsed: Parsed,
}

impl Found {
    /// Where it came from, for people: `claude-code ~/.claude.json (projects./src/app)`.
    pub fn origin(&self, env: &Env) -> String {
        let mut origin = format!("{} {}", self.source.client, env.show(&self.source.path));
        if self.location.len() > 1 {
            origin.push_str(&format!(" ({})", self.location[..self.location.len() - 1].join(".")));
        }
        origin
    }
}

/// Whether a command line runs the shim.
pub fn runs_shim(command: Option<&str>, args: &[String]) -> bool {
    let is_shim = |s: &str| Path::new(s).file_name().is_some_and(|n| n == SHIM);
    command.is_some_and(is_shim) || args.iter().any(|a| is_shim(a))
}

/// A variable name the gateway accepts, made from anything.
pub fn var_name(raw: &str) -> String {
    let mut name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_').to_string();
    match name.chars().next() {
        None => "VALUE".into(),
        Some(c) if c.is_ascii_digit() => format!("V_{name}"),
        Some(_) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_names() {
        assert_eq!(var_name("github-token"), "GITHUB_TOKEN");
        assert_eq!(var_name("1x"), "V_1X");
        assert_eq!(var_name("--"), "VALUE");
    }
}
