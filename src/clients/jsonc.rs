//! JSON as clients write it: VS Code (and Cursor, which is VS Code) accept
//! comments and trailing commas in `mcp.json`, so reading strips them first.
//!
//! Writing goes through `serde_json` with `preserve_order`, which keeps every
//! key and its order but not comments; a file that has comments is therefore
//! never rewritten (the caller refuses and shows the snippet instead), and the
//! original indentation is reused so the diff stays small.

use std::path::Path;

use serde_json::Value;

use super::ClientsError;

/// A JSON file's text without comments and trailing commas, and whether it had any.
pub fn strip(text: &str) -> (String, bool) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' && i + 1 < bytes.len() {
                out.push_str(&text[i..i + 2]);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
            let len = utf8_len(c);
            out.push_str(&text[i..(i + len).min(bytes.len())]);
            i += len;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push('"');
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                changed = true;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                changed = true;
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
            }
            b',' => {
                // A comma followed (past whitespace and comments) by `}` or `]` is dropped.
                if matches!(next_significant(bytes, i + 1), Some(b'}' | b']')) {
                    changed = true;
                } else {
                    out.push(',');
                }
                i += 1;
            }
            _ => {
                let len = utf8_len(c);
                out.push_str(&text[i..(i + len).min(bytes.len())]);
                i += len;
            }
        }
    }
    (out, changed)
}

/// The next byte from `i` on that is neither whitespace nor inside a comment.
fn next_significant(bytes: &[u8], mut i: usize) -> Option<u8> {
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            other => return Some(other),
        }
    }
    None
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A parsed JSON config file.
#[derive(Debug, Clone)]
pub struct JsonFile {
    pub value: Value,
    /// It had comments or trailing commas (rewriting would lose them).
    pub has_comments: bool,
    /// The indentation unit the file uses.
    pub indent: String,
}

/// Parses a client's JSON file (comments allowed); an empty file is `{}`.
pub fn parse(path: &Path, text: &str) -> Result<JsonFile, ClientsError> {
    let (clean, has_comments) = strip(text);
    let value = if clean.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(&clean).map_err(|e| ClientsError::file(path, e))?
    };
    if !value.is_object() {
        return Err(ClientsError::file(path, "expected a JSON object"));
    }
    Ok(JsonFile { value, has_comments, indent: indent_of(text) })
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
    fn comments_and_trailing_commas_are_stripped_not_strings() {
        let text = "{\n  // a comment\n  \"a\": \"http://x//y\", /* block */\n  \"b\": [1, 2,],\n}\n";
        let (clean, changed) = strip(text);
        assert!(changed);
        let value: Value = serde_json::from_str(&clean).unwrap();
        assert_eq!(value["a"], "http://x//y");
        assert_eq!(value["b"], serde_json::json!([1, 2]));
        let (same, changed) = strip("{\"a\": \"é, }\"}");
        assert!(!changed);
        assert_eq!(same, "{\"a\": \"é, }\"}");
    }

    #[test]
    fn indentation_is_kept() {
        let file = parse(Path::new("x.json"), "{\n    \"a\": 1\n}\n").unwrap();
        assert_eq!(file.indent, "    ");
        assert_eq!(render(&file.value, &file.indent), "{\n    \"a\": 1\n}\n");
    }
}
