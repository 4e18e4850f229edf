//! JSON as clients write it: VS Code (and Cursor, which is VS Code) accept
//! comments and trailing commas in their settings and `mcp.json`.
//!
//! Reading and editing both go through `jsonc-parser` (dprint's). A plain
//! JSON file is rewritten through `serde_json` with `preserve_order`, which
//! keeps every key and its order, reusing the file's indentation so the diff
//! stays small. A file with comments or trailing commas is edited in place
//! instead ([`edit`], on the parser's concrete syntax tree): the entries
//! `setup` removes and adds change, and every comment, blank line and comma
//! elsewhere stays as it was.

use std::path::Path;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use super::ClientsError;

/// JSON with comments and trailing commas, as VS Code reads it: nothing
/// looser (no single quotes, bare keys or hexadecimal numbers).
fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// A parsed JSON config file.
#[derive(Debug, Clone)]
pub struct JsonFile {
    pub value: Value,
    /// It had comments or trailing commas: rewrite it with [`edit`], which
    /// keeps them, not [`render`].
    pub has_comments: bool,
    /// The indentation unit the file uses.
    pub indent: String,
}

/// Parses a client's JSON file (comments and trailing commas allowed); an
/// empty file is `{}`.
pub fn parse(path: &Path, text: &str) -> Result<JsonFile, ClientsError> {
    if text.trim().is_empty() {
        return Ok(JsonFile { value: Value::Object(Default::default()), has_comments: false, indent: indent_of(text) });
    }
    // What strict JSON accepts has nothing `serde_json` would drop.
    let (value, has_comments) = match serde_json::from_str::<Value>(text) {
        Ok(value) => (value, false),
        Err(_) => {
            let value = jsonc_parser::parse_to_serde_value::<Value>(text, &options())
                .map_err(|e| ClientsError::file(path, e))?;
            (value, true)
        }
    };
    if !value.is_object() {
        return Err(ClientsError::file(path, "expected a JSON object"));
    }
    Ok(JsonFile { value, has_comments, indent: indent_of(text) })
}

/// `text` (a JSON object, comments allowed) with the entries `remove` names
/// (`(path of object keys, key)`) taken out and, when `add` says so, the entry
/// `name: value` appended to the object under `key` (created when missing).
/// Everything else, comments included, is left as written.
pub fn edit(
    path: &Path,
    text: &str,
    remove: &[(Vec<String>, String)],
    add: Option<(&str, &str, &Value)>,
) -> Result<String, ClientsError> {
    let root = CstRootNode::parse(text, &options()).map_err(|e| ClientsError::file(path, e))?;
    let top = root.object_value().ok_or_else(|| ClientsError::file(path, "expected a JSON object"))?;
    for (location, name) in remove {
        let object = location.iter().try_fold(top.clone(), |object: CstObject, key| object.object_value(key));
        if let Some(entry) = object.and_then(|o| o.get(name)) {
            entry.remove();
        }
    }
    if let Some((key, name, value)) = add {
        let servers = top
            .object_value_or_create(key)
            .ok_or_else(|| ClientsError::file(path, format!("`{key}` is not an object")))?;
        servers.append(name, input(value));
    }
    Ok(root.to_string())
}

/// A `serde_json` value as the syntax tree's input.
fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Value::Object(map) => CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), input(v))).collect()),
    }
}

/// The first indentation found (two spaces when there is none).
fn indent_of(text: &str) -> String {
    text.lines()
        .skip(1)
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .find(|i| !i.is_empty())
        .map_or_else(|| "  ".to_string(), str::to_string)
}

/// The value as pretty JSON with the given indentation and a final newline.
pub fn render(value: &Value, indent: &str) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut buf, formatter);
    // Serializing a Value into a Vec cannot fail.
    let _ = value.serialize(&mut serializer);
    let mut text = String::from_utf8(buf).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_are_read_not_in_strings() {
        let text = "{\n  // a comment\n  \"a\": \"http://x//y\", /* block */\n  \"b\": [1, 2,],\n}\n";
        let file = parse(Path::new("x.json"), text).unwrap();
        assert!(file.has_comments);
        assert_eq!(file.value["a"], "http://x//y");
        assert_eq!(file.value["b"], serde_json::json!([1, 2]));
        let plain = parse(Path::new("x.json"), "{\"a\": \"é, } // not a comment\"}").unwrap();
        assert!(!plain.has_comments);
        assert_eq!(plain.value["a"], "é, } // not a comment");
        let error = parse(Path::new("x.json"), "{'a': 1}").unwrap_err().to_string();
        assert!(error.contains("x.json"), "names the file: {error}");
    }

    #[test]
    fn indentation_is_kept() {
        let file = parse(Path::new("x.json"), "{\n    \"a\": 1\n}\n").unwrap();
        assert_eq!(file.indent, "    ");
        assert_eq!(render(&file.value, &file.indent), "{\n    \"a\": 1\n}\n");
    }

    #[test]
    fn editing_keeps_every_comment() {
        let text = "{\n  // the editor\n  \"editor.fontSize\": 14, /* big */\n  \"mcp\": {\n    \"servers\": {\n      // GitHub\n      \"github\": { \"command\": \"npx\" },\n      \"time\": { \"command\": \"uvx\" }, // keep me\n    },\n  },\n}\n";
        let entry = serde_json::json!({"type": "stdio", "command": "/usr/bin/mcp-gateway-connect", "args": []});
        let path = Path::new("settings.json");
        let remove = [(vec!["mcp".to_string(), "servers".to_string()], "github".to_string())];
        let edited = edit(path, text, &remove, None).unwrap();
        assert!(!edited.contains("\"github\""), "{edited}");
        for kept in ["// the editor", "/* big */", "// keep me", "\"time\""] {
            assert!(edited.contains(kept), "{kept} lost:\n{edited}");
        }
        let added = edit(path, &edited, &[], Some(("servers", "gateway", &entry))).unwrap();
        let value = parse(path, &added).unwrap().value;
        assert_eq!(value["servers"]["gateway"], entry);
        assert_eq!(value["mcp"]["servers"]["time"]["command"], "uvx");
        assert!(added.contains("// keep me") && added.contains("/* big */"), "{added}");
    }
}
