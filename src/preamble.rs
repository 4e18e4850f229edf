//! The one-line handshake between the shim (or a control client) and the daemon.
//!
//! Before any MCP traffic the shim sends one JSON line describing the terminal it
//! runs in; the daemon answers with one JSON line. The version number lets a newer
//! shim detect an older daemon (and the other way round) and say so clearly
//! instead of failing on some later message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The preamble format this build speaks.
pub const PREAMBLE_VERSION: u32 = 1;

/// A client's environment (credentials included). Its `Debug` shows only how
/// many variables it has, so no log line or error can ever print a value.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientEnv(pub Arc<BTreeMap<String, String>>);

impl std::fmt::Debug for ClientEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientEnv(<{} variables>)", self.0.len())
    }
}

/// The first line a client of the socket sends.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Preamble {
    /// Must equal [`PREAMBLE_VERSION`].
    pub mcp_gateway_preamble: u32,
    /// `None` for an MCP session; a command name for a control connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// The control command's arguments (`{"server": …}` for `restart`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub args: serde_json::Value,
    /// The client's working directory (its workspace is found from here).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// The environment the client ran in (a source of credentials).
    #[serde(default)]
    pub env: ClientEnv,
    /// `--profile` given to the shim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `--entry` given to the shim: the name of the client's config entry
    /// that runs it, which the client puts in front of every tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// The pid of the process that launched the shim (the AI client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_pid: Option<u32>,
    /// The shim's own version, for messages.
    #[serde(default)]
    pub shim_version: String,
    /// Whether the client sends again what a draining daemon hands back with
    /// [`NOT_STARTED`] (the shim does). A client that does not (the HTTP front
    /// door, an older shim) gets an error for such a request instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resends_unstarted: bool,
}

/// The notification a draining daemon (a planned restart) sends for a client
/// line it read but did not start, carrying the line's message back as
/// `params.message`: the shim sends it to the next daemon, as it was never
/// acted on. Private to the socket: the shim never relays it to its client.
pub const NOT_STARTED: &str = "notifications/mcp-gateway/not-started";

/// The daemon's one-line answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PreambleReply {
    /// The preamble version the daemon speaks.
    pub mcp_gateway_preamble: u32,
    /// The daemon's version.
    pub gateway_version: String,
    /// The session id (MCP sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Set when the daemon refuses the connection; it closes the socket after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PreambleReply {
    pub fn accepted(session: Option<String>) -> Self {
        Self {
            mcp_gateway_preamble: PREAMBLE_VERSION,
            gateway_version: crate::VERSION.to_string(),
            session,
            error: None,
        }
    }

    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            mcp_gateway_preamble: PREAMBLE_VERSION,
            gateway_version: crate::VERSION.to_string(),
            session: None,
            error: Some(error.into()),
        }
    }
}

/// Checks a received preamble line, returning the reason to refuse it.
///
/// The reasons are logged and sent back, and the line carries the client's
/// environment: so they name where and what kind of error it is, never the
/// text serde would quote from the input (see [`describe_json_error`]).
pub fn parse(line: &[u8]) -> Result<Preamble, String> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| format!("the first line is not a JSON preamble: {}", describe_json_error(&e)))?;
    let version = value.get("mcp_gateway_preamble").and_then(serde_json::Value::as_u64);
    match version {
        None => Err("the first line must be the mcp-gateway preamble; connect through mcp-gateway-connect".to_string()),
        Some(v) if v != u64::from(PREAMBLE_VERSION) => Err(format!(
            "preamble version {v} is not supported: this daemon (mcp-gateway {}) speaks version {PREAMBLE_VERSION}; \
             restart the daemon (`mcp-gateway stop`) so that the installed version starts",
            crate::VERSION
        )),
        // From the bytes again, not from `value`: only then does the error
        // carry a line and column to point at.
        Some(_) => serde_json::from_slice(line).map_err(|e| format!("invalid preamble: {}", describe_json_error(&e))),
    }
}

/// A serde_json error without any of the input it may quote (`invalid type:
/// string "<the value>"`, `unknown variant `<the value>``): its kind, the
/// position, and what was expected there (text that comes from the preamble's
/// type, not from the input).
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "a read error",
        Category::Syntax => "a JSON syntax error",
        Category::Eof => "the line ends in the middle of a JSON value",
        Category::Data => "a field of the wrong type or value",
    };
    let message = e.to_string();
    // serde's "..., expected X" lists what the type accepts; for unknown
    // fields and variants that list comes after "expected" too.
    let expected = match e.classify() {
        Category::Data => message
            .rsplit_once(", expected ")
            .map(|(_, tail)| tail.rsplit_once(" at line ").map_or(tail, |(head, _)| head))
            .filter(|tail| !tail.contains('"'))
            .map(|tail| format!(" (expected {tail})")),
        _ => None,
    };
    format!("{kind}{} at line {} column {}", expected.unwrap_or_default(), e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_current_version() {
        let p = parse(br#"{"mcp_gateway_preamble":1,"cwd":"/tmp","env":{"A":"b"}}"#).unwrap();
        assert_eq!(p.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
        assert_eq!(p.env.0.get("A").map(String::as_str), Some("b"));
        assert_eq!(format!("{:?}", p.env), "ClientEnv(<1 variables>)", "values never reach Debug output");
    }

    #[test]
    fn refuses_other_versions_and_non_preambles() {
        let err = parse(br#"{"mcp_gateway_preamble":99}"#).unwrap_err();
        assert!(err.contains("version 99"), "{err}");
        let err = parse(br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#).unwrap_err();
        assert!(err.contains("mcp-gateway-connect"), "{err}");
        assert!(parse(b"not json").unwrap_err().contains("not a JSON preamble"));
    }

    #[test]
    fn a_refusal_names_the_position_never_the_value() {
        let err = parse(br#"{"mcp_gateway_preamble":1,"client_pid":"sk-live-SECRET"}"#).unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.contains("line 1 column") && err.contains("expected u32"), "{err}");
        let err = parse(br#"{"mcp_gateway_preamble":1,"env":{"TOKEN":7}}"#).unwrap_err();
        assert!(err.contains("expected a string") && err.contains("line 1"), "{err}");
    }
}
