//! A minimal stdio MCP server whose own cost is as close to zero as a JSON
//! server can be: it parses each line, answers `initialize`, `tools/list`
//! (one tool, `echo`), `tools/call` echo, `ping` and the empty lists, and
//! ignores notifications. Used to isolate the gateway's own added cost.
use serde_json::{json, Value};
use std::io::{BufRead, BufWriter, Write};

fn main() {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Ok(msg) = serde_json::from_str::<Value>(line.trim_end()) else { continue };
        let Some(id) = msg.get("id").cloned() else { continue }; // notification or response
        let Some(method) = msg.get("method").and_then(Value::as_str) else { continue };
        let result = match method {
            "initialize" => json!({
                "protocolVersion": msg.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-06-18")),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fast-fixture", "version": "0.1.0"}
            }),
            "tools/list" => json!({"tools": [{
                "name": "echo",
                "description": "Echoes back the input",
                "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
            }]}),
            "tools/call" => {
                let text = msg.pointer("/params/arguments/message").and_then(Value::as_str).unwrap_or("");
                json!({"content": [{"type": "text", "text": format!("Echo: {text}")}]})
            }
            "ping" => json!({}),
            "resources/list" => json!({"resources": []}),
            "resources/templates/list" => json!({"resourceTemplates": []}),
            "prompts/list" => json!({"prompts": []}),
            _ => {
                let err = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}});
                let _ = writeln!(out, "{err}");
                let _ = out.flush();
                continue;
            }
        };
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            return;
        }
    }
}
