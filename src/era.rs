//! The two protocol eras, as far as both sides of the gateway need them: the
//! handshake era (`initialize`, 2024-11-05 to 2025-11-25) and the modern one
//! (2026-07-28: no handshake, an envelope in `params._meta` on every request).

use serde_json::{Value, json};

/// Which era a peer speaks, once that is known.
///
/// The one runtime answer to the question for a backend (`Backend::era`),
/// which the pool also remembers per definition: the user's `protocol:`
/// setting (`config::Protocol`) says how to find it out, the start-up plan
/// (`backend::handshake::EraPlan`) whether to ask, and this is what was found.
/// An enum rather than a `modern: bool` so that a third era is a compile
/// error everywhere the era matters, not a silent `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Era {
    /// `initialize` first, then requests without an envelope. What every
    /// server is until it is found to be modern: the start-up requests
    /// themselves go out without an envelope (`server/discover` carries its own).
    #[default]
    Handshake,
    /// No handshake; an envelope in `params._meta` on every request.
    Modern,
}

// Protocol versions: each spelled once, here, so that supporting a new one is
// an edit of this list and not a search for string literals.

/// The newest version of the modern era: what the gateway's envelopes and
/// its modern HTTP requests name.
pub const LATEST_MODERN_VERSION: &str = "2026-07-28";
/// Protocol versions of the modern era, newest first.
pub const MODERN_VERSIONS: &[&str] = &[LATEST_MODERN_VERSION];
/// The newest version of the handshake era: what the gateway asks backends
/// for in `initialize` (a backend may answer with an older one).
pub const LATEST_HANDSHAKE_VERSION: &str = "2025-11-25";
/// The first version with Streamable HTTP. An HTTP peer that is not told a
/// version (no `MCP-Protocol-Version` header) assumes this one, as the
/// transport's specification says.
pub const STREAMABLE_HTTP_VERSION: &str = "2025-03-26";
/// The version of the HTTP+SSE transport that Streamable HTTP replaced, which
/// the gateway still speaks to remote servers that predate it.
pub const HTTP_SSE_VERSION: &str = "2024-11-05";
/// The version since which a Streamable HTTP stream opens with a priming
/// event (an event id, no data), so a client can resume it before the first
/// message; older clients take that event for a malformed message. (2025-11-25,
/// which is also the latest handshake version today.)
pub const PRIMING_EVENTS_SINCE: &str = LATEST_HANDSHAKE_VERSION;
/// Protocol versions of the handshake era, newest first.
pub const HANDSHAKE_VERSIONS: &[&str] =
    &[LATEST_HANDSHAKE_VERSION, "2025-06-18", STREAMABLE_HTTP_VERSION, HTTP_SSE_VERSION];

/// Every protocol version the gateway speaks to clients, newest first: what
/// `server/discover` lists and an unsupported-version error names.
pub fn all_versions() -> Vec<&'static str> {
    MODERN_VERSIONS.iter().chain(HANDSHAKE_VERSIONS).copied().collect()
}

/// Methods of the handshake era that the modern one removed: a modern request
/// for one is a request for a method that does not exist (`initialize` aside
/// on stdio, where a modern connection says which era it is in instead).
pub const REMOVED_METHODS: &[&str] =
    &["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

pub const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
pub const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";
pub const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// The envelope a request carries to a modern server for one client.
pub fn envelope(capabilities: &Value, client_name: Option<&str>, log_level: Option<&str>) -> Value {
    let mut envelope = json!({
        VERSION_KEY: LATEST_MODERN_VERSION,
        CAPABILITIES_KEY: if capabilities.is_object() { capabilities.clone() } else { json!({}) },
        CLIENT_INFO_KEY: {"name": client_name.unwrap_or("mcp-gateway"), "version": crate::VERSION},
    });
    if let Some(level) = log_level {
        envelope[LOG_LEVEL_KEY] = level.into();
    }
    envelope
}

/// The gateway's own envelope (listings, probes): it asks for nothing.
pub fn gateway_envelope() -> Value {
    envelope(&json!({}), None, None)
}

/// Whether `params` already carry an envelope.
pub fn has_envelope(params: &Value) -> bool {
    params.get("_meta").and_then(|m| m.get(VERSION_KEY)).is_some()
}

/// Puts `envelope` into `params._meta`, replacing any envelope there and
/// keeping the rest (a progress token).
pub fn stamp(params: &mut Value, envelope: &Value) {
    if !params.is_object() {
        *params = json!({});
    }
    let meta = params.as_object_mut().map(|p| p.entry("_meta").or_insert_with(|| json!({})));
    if let Some(meta) = meta.and_then(Value::as_object_mut)
        && let Some(envelope) = envelope.as_object()
    {
        meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
        meta.extend(envelope.clone());
    }
}

/// Removes the envelope from params (what a handshake-era server gets).
pub fn strip_envelope(params: &mut Value) {
    let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) else { return };
    meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
    if meta.is_empty()
        && let Some(params) = params.as_object_mut()
    {
        params.remove("_meta");
    }
}

/// A `server/discover` result that names a modern version, seen as the
/// `initialize` result the rest of the gateway reads (capabilities, info,
/// instructions); `None` when the server is of the handshake era after all.
pub fn initialize_from_discover(result: &Value) -> Option<Value> {
    let versions = result.get("supportedVersions")?.as_array()?;
    let version = MODERN_VERSIONS.iter().find(|v| versions.iter().any(|s| s == *v))?;
    let mut initialize = json!({
        "protocolVersion": version,
        "capabilities": result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "serverInfo": result.pointer(&format!("/_meta/{}", SERVER_INFO_KEY.replace('/', "~1"))).cloned()
            .unwrap_or_else(|| json!({"name": "unknown", "version": "unknown"})),
    });
    if let Some(instructions) = result.get("instructions") {
        initialize["instructions"] = instructions.clone();
    }
    Some(initialize)
}

/// The version to send a request again at, when a modern server refused the
/// one it carried (`UnsupportedProtocolVersionError`, -32022, which the
/// caller checks; its `data` lists what the server supports): the newest the
/// gateway also speaks.
/// SEP-2575 has the client retry with a mutually supported version rather
/// than give up; that may be the version just refused (a server behind a
/// balancer can refuse once and accept the next), so the caller retries once.
/// `None` when the refusal is something else or names nothing in common.
pub fn version_to_retry(refusal: &Value) -> Option<&'static str> {
    let supported = refusal.pointer("/error/data/supported")?.as_array()?;
    MODERN_VERSIONS.iter().copied().find(|v| supported.iter().any(|s| s == *v))
}

/// The protocol version a modern request's envelope names, which its
/// `MCP-Protocol-Version` header must repeat.
pub fn version_of(params: &Value) -> Option<&str> {
    params.get("_meta")?.get(VERSION_KEY)?.as_str()
}

/// Takes what only the modern era has off a result for a handshake-era client.
pub fn strip_modern_result(response: &mut Value) {
    if let Some(result) = response.get_mut("result").and_then(Value::as_object_mut)
        && result.get("resultType").and_then(Value::as_str).is_none_or(|t| t == "complete")
    {
        for key in ["resultType", "ttlMs", "cacheScope"] {
            result.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_replaces_an_envelope_and_keeps_the_rest() {
        let mut params = json!({"name": "t", "_meta": {"progressToken": 3, VERSION_KEY: "old"}});
        stamp(&mut params, &envelope(&json!({"sampling": {}}), Some("client"), Some("debug")));
        assert_eq!(params["_meta"]["progressToken"], 3);
        assert_eq!(params["_meta"][VERSION_KEY], MODERN_VERSIONS[0]);
        assert_eq!(params["_meta"][CAPABILITIES_KEY], json!({"sampling": {}}));
        assert_eq!(params["_meta"][LOG_LEVEL_KEY], "debug");
        strip_envelope(&mut params);
        assert_eq!(params, json!({"name": "t", "_meta": {"progressToken": 3}}));
        let mut bare = Value::Null;
        stamp(&mut bare, &gateway_envelope());
        assert!(has_envelope(&bare));
    }

    #[test]
    fn a_refused_version_is_retried_at_one_both_sides_speak() {
        let refusal = |code: i64, supported: Value| {
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "Unsupported protocol version",
                "data": {"supported": supported, "requested": "2026-07-28"}}})
        };
        assert_eq!(version_to_retry(&refusal(-32022, json!(["2026-07-28"]))), Some(LATEST_MODERN_VERSION));
        assert_eq!(version_to_retry(&refusal(-32022, json!(["2099-01-01", "2026-07-28"]))), Some("2026-07-28"));
        assert_eq!(version_to_retry(&refusal(-32022, json!(["2099-01-01"]))), None, "nothing in common");
        assert_eq!(version_to_retry(&json!({"jsonrpc": "2.0", "id": 1, "result": {}})), None);
        let mut params = json!({});
        stamp(&mut params, &gateway_envelope());
        assert_eq!(version_of(&params), Some(LATEST_MODERN_VERSION));
        assert_eq!(version_of(&json!({"name": "t"})), None);
    }

    #[test]
    fn a_discover_result_reads_as_an_initialize_result() {
        let discovered = json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}}, "ttlMs": 0, "cacheScope": "public",
            "_meta": {SERVER_INFO_KEY: {"name": "modern", "version": "1"}}});
        let initialize = initialize_from_discover(&discovered).unwrap();
        assert_eq!(initialize["serverInfo"]["name"], "modern");
        assert_eq!(initialize["protocolVersion"], "2026-07-28");
        assert!(initialize_from_discover(&json!({"supportedVersions": ["2025-11-25"]})).is_none());
    }
}
