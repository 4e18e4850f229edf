//! The daemon in this process ([`InProcessGateway`]): a session over its
//! socket, the connection seam (preamble, then MCP lines) with no binary of the
//! gateway's between the test and `daemon::serve`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use serde_json::{Value, json};

use crate::common::*;

/// Sends one JSON-RPC line; for a request, reads until its response.
fn exchange(stream: &mut UnixStream, lines: &mut BufReader<UnixStream>, message: &Value) -> Option<Value> {
    writeln!(stream, "{message}").expect("send");
    let id = message.get("id")?;
    loop {
        let mut line = String::new();
        assert!(lines.read_line(&mut line).expect("read") > 0, "the daemon closed the session");
        let received: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        if received.get("id") == Some(id) && received.get("method").is_none() {
            return Some(received);
        }
    }
}

#[test]
fn a_session_initializes_and_lists_tools_in_process() {
    let gw = InProcessGateway::start(&format!("servers:\n  fx:\n{}", fixture_server("inproc")));
    let (mut stream, reply) = gw.session(gw.dir());
    assert!(reply["error"].is_null() && reply["session"].is_string(), "{reply}");
    let mut lines = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut send = |message: Value| exchange(&mut stream, &mut lines, &message);

    let init = send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params":
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}))
    .expect("an initialize result");
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-gateway", "{init}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let tools = send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})).expect("a tool list");
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"fx__echo"), "{tools}");
    let call = send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"message": "hi"}}}))
    .expect("a call result");
    assert_eq!(first_text(&call), "inproc: hi");

    // The real shim reaches it the same way.
    let mut client = gw.client();
    client.initialize();
    assert!(client.tool_names().contains(&"fx__echo".to_string()));
}
