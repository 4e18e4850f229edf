//! The 2026-07-28 revision's HTTP routing headers (SEP-2243): `Mcp-Method`
//! on every request, `Mcp-Name` naming what a `tools/call`, `prompts/get` or
//! `resources/read` is about, and `Mcp-Param-<Name>` mirroring the arguments a
//! tool's schema marks `x-mcp-header`. They exist so that an intermediary can
//! route without parsing the body, which only works when both ends agree on
//! them byte for byte: the gateway sends them to modern backends and checks
//! them at its front door, with the one codec and the one reading of the
//! schema annotations in this module.

use base64::Engine;
use serde_json::Value;

use crate::jsonrpc;

/// The header every modern HTTP request names its method in.
pub const METHOD_HEADER: &str = "mcp-method";
/// The header that says what a request names (see [`name_of`]).
pub const NAME_HEADER: &str = "mcp-name";
/// The prefix of the headers that mirror annotated tool arguments.
pub const PARAM_HEADER_PREFIX: &str = "Mcp-Param-";

/// The `Mcp-Name` of a request: what it names (a tool, a prompt, a resource).
pub fn name_of(message: &Value) -> Option<&str> {
    let params = jsonrpc::params(message);
    match jsonrpc::method(message) {
        "tools/call" | "prompts/get" => params.get("name")?.as_str(),
        "resources/read" => params.get("uri")?.as_str(),
        _ => None,
    }
}

/// A header value as the modern transport wants it: as is when it is plain
/// visible ASCII, else `=?base64?…?=`.
pub fn encode(value: &str) -> String {
    let plain = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.starts_with("=?");
    if plain {
        value.to_string()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// What a header value says: the value itself, or what its `=?base64?…?=`
/// wrapping holds. `None` for a wrapping that is not canonical base64 of
/// UTF-8, so that a corrupt header never matches a body by accident.
pub fn decode(value: &str) -> Option<String> {
    let Some(payload) = value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) else {
        return Some(value.to_string());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(payload).ok()?;
    (engine.encode(&bytes) == payload).then_some(())?;
    String::from_utf8(bytes).ok()
}

/// How an argument is written in its header: booleans and numbers as JSON
/// writes them, strings as they are; nothing else has a header form.
pub fn render(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Where a tool's `x-mcp-header` annotations are: (property path, header token).
pub type Annotations = Vec<(Vec<String>, String)>;

/// The valid `x-mcp-header` annotations of a tool's input schema: on a
/// property reached through `properties` alone, a string/integer/boolean,
/// named by an HTTP token, unique ignoring case. `None` when any annotation
/// is invalid: such a tool gets no headers at all (and a client drops it).
pub fn annotations(schema: &Value) -> Option<Annotations> {
    fn walk(schema: &Value, path: &[String], out: &mut Annotations) -> Option<()> {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Some(()) };
        for (key, property) in properties {
            let mut at = path.to_vec();
            at.push(key.clone());
            if let Some(token) = property.get("x-mcp-header") {
                let token = token.as_str()?;
                let is_token = !token.is_empty()
                    && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                let scalar =
                    matches!(property.get("type").and_then(Value::as_str), Some("string" | "integer" | "boolean"));
                let unique = out.iter().all(|(_, seen)| !seen.eq_ignore_ascii_case(token));
                if !(is_token && scalar && unique) {
                    return None;
                }
                out.push((at.clone(), token.to_string()));
            }
            walk(property, &at, out)?;
        }
        Some(())
    }
    let mut out = Vec::new();
    walk(schema, &[], &mut out)?;
    Some(out)
}

/// Takes out of a modern server's tool list every tool whose `x-mcp-header`
/// annotations are invalid, and returns their names. SEP-2243 has a client
/// reject such a definition rather than call the tool without the headers
/// its server routes by (or with headers the server never asked for); the
/// other tools stay, so one malformed definition costs only itself.
pub fn drop_invalid_tools(tools: &mut Vec<Value>) -> Vec<String> {
    let mut dropped = Vec::new();
    tools.retain(|tool| {
        let valid = tool.get("inputSchema").is_none_or(|schema| annotations(schema).is_some());
        if !valid {
            dropped.push(tool.get("name").and_then(Value::as_str).unwrap_or("?").to_string());
        }
        valid
    });
    dropped
}

/// The `Mcp-Param-*` headers of a call with `arguments`: each annotated
/// argument that is present and has a header form.
pub fn param_headers(annotations: &Annotations, arguments: &Value) -> Vec<(String, String)> {
    annotations
        .iter()
        .filter_map(|(path, token)| {
            let value = path.iter().try_fold(arguments, |node, key| node.get(key))?;
            Some((format!("{PARAM_HEADER_PREFIX}{token}"), encode(&render(value)?)))
        })
        .collect()
}

/// Whether a request's `Mcp-Method` and `Mcp-Name` headers say what its body
/// says; the mismatch, in words, when not. `header` looks a header up by its
/// lowercase name (`None` when absent, or not text).
pub fn mismatch(message: &Value, header: impl Fn(&str) -> Option<String>) -> Option<String> {
    let method = jsonrpc::method(message);
    match header(METHOD_HEADER) {
        Some(said) if said == method => {}
        Some(said) => return Some(format!("the Mcp-Method header ({said}) is not the body's method ({method})")),
        None => return Some(format!("a request needs an Mcp-Method header naming its method ({method})")),
    }
    let name = name_of(message)?;
    match header(NAME_HEADER).map(|said| decode(&said)) {
        Some(Some(said)) if said == name => None,
        Some(Some(said)) => Some(format!("the Mcp-Name header ({said}) is not what the body names ({name})")),
        Some(None) => Some("the Mcp-Name header's =?base64?…?= value is malformed".to_string()),
        None => Some(format!("a {method} request needs an Mcp-Name header ({name})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_plain_or_wrapped() {
        for value in ["whoami", "naïve", " padded", "=?looks-wrapped?=", "", "a\nb"] {
            assert_eq!(decode(&encode(value)).as_deref(), Some(value), "{value:?}");
        }
        assert_eq!(encode("whoami"), "whoami");
        assert!(encode("naïve").starts_with("=?base64?"));
        assert_eq!(decode("=?base64?not base64?="), None);
        assert_eq!(decode("=?base64?aGk=?="), Some("hi".to_string()));
        assert_eq!(decode("=?base64?aGl=?="), None, "not canonical: trailing bits set");
    }

    #[test]
    fn annotated_arguments_become_param_headers() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
            "opts": {"type": "object", "properties": {"tenant": {"type": "integer", "x-mcp-header": "Tenant"}}},
            "plain": {"type": "string"}
        }});
        let annotations = annotations(&schema).unwrap();
        let got = param_headers(&annotations, &json!({"region": "eu-west 1", "dry": true, "opts": {"tenant": 42}}));
        assert_eq!(
            got,
            [
                ("Mcp-Param-Region".to_string(), "eu-west 1".to_string()),
                ("Mcp-Param-Dry-Run".to_string(), "true".to_string()),
                ("Mcp-Param-Tenant".to_string(), "42".to_string()),
            ]
        );
        assert!(param_headers(&annotations, &json!({"plain": "x"})).is_empty(), "absent arguments send nothing");
        let bad = json!({"properties": {"n": {"type": "number", "x-mcp-header": "N"}}});
        assert_eq!(super::annotations(&bad), None);
        let dup = json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}});
        assert_eq!(super::annotations(&dup), None);
    }

    #[test]
    fn tools_with_invalid_annotations_are_dropped_and_the_rest_kept() {
        let tool = |name: &str, property: Value| json!({"name": name, "inputSchema": {"type": "object", "properties": {"p": property}}});
        let mut tools = vec![
            tool("valid", json!({"type": "string", "x-mcp-header": "Region"})),
            tool("plain", json!({"type": "string"})),
            json!({"name": "no_schema"}),
            tool("empty", json!({"type": "string", "x-mcp-header": ""})),
            tool("object", json!({"type": "object", "x-mcp-header": "Data"})),
            tool("number", json!({"type": "number", "x-mcp-header": "N"})),
            tool("space", json!({"type": "string", "x-mcp-header": "My Region"})),
            tool("colon", json!({"type": "string", "x-mcp-header": "Region:Primary"})),
            tool("non_ascii", json!({"type": "string", "x-mcp-header": "Région"})),
            tool("control", json!({"type": "string", "x-mcp-header": "Region\t1"})),
            tool("not_text", json!({"type": "string", "x-mcp-header": 7})),
        ];
        let dropped = drop_invalid_tools(&mut tools);
        assert_eq!(dropped, ["empty", "object", "number", "space", "colon", "non_ascii", "control", "not_text"]);
        let kept: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(kept, ["valid", "plain", "no_schema"]);
    }

    #[test]
    fn method_and_name_headers_must_say_what_the_body_says() {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "naïve"}});
        let wrapped = encode("naïve");
        let headers = |method: Option<&'static str>, name: Option<String>| {
            move |h: &str| match h {
                METHOD_HEADER => method.map(str::to_string),
                NAME_HEADER => name.clone(),
                _ => None,
            }
        };
        assert_eq!(mismatch(&call, headers(Some("tools/call"), Some(wrapped.clone()))), None);
        assert!(mismatch(&call, headers(Some("tools/list"), Some(wrapped))).unwrap().contains("Mcp-Method"));
        assert!(mismatch(&call, headers(None, None)).unwrap().contains("needs an Mcp-Method"));
        assert!(mismatch(&call, headers(Some("tools/call"), Some("other".into()))).unwrap().contains("Mcp-Name"));
        assert!(mismatch(&call, headers(Some("tools/call"), None)).unwrap().contains("needs an Mcp-Name"));
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
        assert_eq!(mismatch(&list, headers(Some("tools/list"), None)), None);
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///a b"}});
        assert_eq!(name_of(&read), Some("file:///a b"));
    }
}
