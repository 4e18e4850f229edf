//! A backend's answer kept as the bytes it came in.
//!
//! Most answers cross the gateway unchanged but for their id: the backend
//! answered the gateway's own id (see `backend::pending`), and the client must
//! get its own back. Parsing such an answer into a `serde_json::Value` tree
//! and serialising it again costs an allocation per string, array and object
//! of what is usually the bulk of the traffic (tool results), twice. So the
//! backend's reader only probes the few fields that decide where an answer goes
//! and whether anything in it must be rewritten (one pass, nothing allocated),
//! and an answer that needs nothing else is relayed as its bytes with the id
//! spliced in. Everything else, and every caller that wants to read the
//! answer, gets the tree ([`RawAnswer::to_value`]): the bytes are the same, so
//! unknown fields pass through either way.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

/// The top-level fields of a message the gateway routes an answer on.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    method: Option<IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// The top-level fields of a result that the gateway may act on: the modern
/// era's (removed for a client of the handshake era, or an `input_required`
/// round to run) and a task's (recorded for its owner). Nested fields are
/// skipped unread.
#[derive(Deserialize)]
struct ResultKeys {
    #[serde(rename = "resultType")]
    result_type: Option<IgnoredAny>,
    #[serde(rename = "ttlMs")]
    ttl_ms: Option<IgnoredAny>,
    #[serde(rename = "cacheScope")]
    cache_scope: Option<IgnoredAny>,
    task: Option<IgnoredAny>,
}

impl ResultKeys {
    fn any(&self) -> bool {
        self.result_type.is_some() || self.ttl_ms.is_some() || self.cache_scope.is_some() || self.task.is_some()
    }
}

/// A response from a backend, as the line it came in (without its newline).
#[derive(Debug, Clone)]
pub struct RawAnswer {
    line: Bytes,
    /// The backend-side id (the gateway's own: always an integer).
    id: u64,
    /// Where the id's text is in `line`.
    id_at: Range<usize>,
    /// Whether it carries a `result` (rather than an `error`).
    has_result: bool,
    /// Whether only its id needs changing on the way to a client of the
    /// handshake era: `jsonrpc` present, and a result (an object) without the
    /// modern era's fields or a task, or an error.
    plain: bool,
}

impl RawAnswer {
    /// Probes a line: an answer to one of the gateway's integer ids, or
    /// `None` (a request, a notification, a string id, not an object, not
    /// JSON, a repeated field: anything else goes the way of a parsed message).
    pub fn probe(line: Bytes) -> Option<RawAnswer> {
        // The fields skipped unread are relayed too: the whole line must be
        // UTF-8, as a parsed message's strings are.
        let text = std::str::from_utf8(&line).ok()?;
        let probe: Probe<'_> = serde_json::from_str(text).ok()?;
        if probe.method.is_some() || (probe.result.is_none() && probe.error.is_none()) {
            return None;
        }
        let id_text = probe.id?.get();
        let id = id_text.parse::<u64>().ok()?;
        let result_is_plain = match probe.result {
            Some(result) => {
                result.get().starts_with('{')
                    && serde_json::from_str::<ResultKeys>(result.get()).is_ok_and(|keys| !keys.any())
            }
            None => true,
        };
        let plain = probe.jsonrpc.is_some() && result_is_plain && (probe.result.is_none() || probe.error.is_none());
        // The id's text borrows from `line`: its offset is where it sits in it.
        let start = id_text.as_ptr() as usize - line.as_ptr() as usize;
        let id_at = start..start + id_text.len();
        let has_result = probe.result.is_some();
        Some(RawAnswer { line, id, id_at, has_result, plain })
    }

    /// The backend-side id it answers.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn has_result(&self) -> bool {
        self.has_result
    }

    /// Whether it can go to a handshake-era client with only its id changed.
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// The answer as a tree (it was JSON when probed, so this only fails on a
    /// nesting deeper than `serde_json` reads).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.line)
    }

    /// The line with `id` in place of the backend-side id, newline included.
    pub fn line_with_id(&self, id: &Value) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.line.len() + 16);
        line.extend_from_slice(&self.line[..self.id_at.start]);
        // A `Value` always serialises.
        let _ = serde_json::to_writer(&mut line, id);
        line.extend_from_slice(&self.line[self.id_at.end..]);
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(text: &str) -> Option<RawAnswer> {
        RawAnswer::probe(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn a_plain_answer_gets_its_id_spliced_and_keeps_everything_else() {
        let text = r#"{"jsonrpc":"2.0", "id" : 17,"result":{"content":[{"type":"text","text":"id 17 \"x\""}],"zz":{"task":1}}}"#;
        let raw = probe(text).unwrap();
        assert_eq!(raw.id(), 17);
        assert!(raw.is_plain() && raw.has_result());
        let line = raw.line_with_id(&json!("client-7"));
        assert_eq!(line.last(), Some(&b'\n'));
        let relayed: Value = serde_json::from_slice(&line).unwrap();
        let mut expected: Value = serde_json::from_str(text).unwrap();
        expected["id"] = json!("client-7");
        assert_eq!(relayed, expected);
        assert_eq!(String::from_utf8(line).unwrap(), text.replace("17,", "\"client-7\",") + "\n");
        assert_eq!(raw.to_value().unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn errors_are_plain_too() {
        let raw = probe(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}"#).unwrap();
        assert!(raw.is_plain() && !raw.has_result());
        let line = raw.line_with_id(&json!(1));
        assert_eq!(line, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"no\"}}\n");
    }

    #[test]
    fn what_must_be_rewritten_is_not_plain() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"ttlMs":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"t\u0061sk":{"taskId":"t"}}}"#,
            r#"{"id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"both"}}"#,
        ] {
            let raw = probe(text).unwrap_or_else(|| panic!("{text} is an answer"));
            assert!(!raw.is_plain(), "{text} is not plain");
        }
    }

    #[test]
    fn only_answers_to_integer_ids_are_probed() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":"mcp-gateway-listen-1","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":-1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#,
            "17",
        ] {
            assert!(probe(text).is_none(), "{text}");
        }
        // A field skipped unread is relayed too, so it must be UTF-8 as well.
        let invalid = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"x\":\"\xff\"}";
        assert!(RawAnswer::probe(Bytes::from_static(invalid)).is_none());
    }
}
