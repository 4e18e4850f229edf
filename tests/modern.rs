//! The 2026-07-28 ("modern") protocol era on the client side, raw on the wire:
//! the era is decided by a connection's first request, every request carries
//! an envelope, `server/discover` replaces the handshake, list changes arrive
//! only on `subscriptions/listen` streams, and a backend's question to the
//! client becomes an `input_required` round. (The Python SDK's own modern
//! client is run against the gateway in the interop and multiplexing tests.)

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const VERSION: &str = "2026-07-28";

fn envelope(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "1"},
    })
}

/// `params` with the envelope added to its `_meta`.
fn enveloped(mut params: Value, capabilities: Value) -> Value {
    let mut meta = envelope(capabilities);
    if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
        for (k, v) in extra {
            meta[k] = v.clone();
        }
    }
    params["_meta"] = meta;
    params
}

fn save(gw: &TestGateway, text: &str) {
    let tmp = gw.home.join(".config.yaml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, gw.home.join("config.yaml")).unwrap();
}

#[test]
fn a_modern_client_discovers_calls_and_listens_without_a_handshake() {
    let mut gw = TestGateway::with_servers(&[("a", fixture_server("a"))]);
    gw.start();
    let mut client = gw.client();

    let discovered = client.request(json!(1), "server/discover", enveloped(json!({}), json!({})));
    let result = &discovered["result"];
    assert_eq!(result["resultType"], "complete", "{discovered}");
    assert!(result["supportedVersions"].as_array().unwrap().contains(&json!(VERSION)), "{discovered}");
    assert!(result["capabilities"]["tools"].is_object(), "{discovered}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-gateway");
    assert!(result["ttlMs"].is_u64() && result["cacheScope"].is_string(), "{discovered}");

    // The era holds for the connection: no handshake, and an envelope on everything.
    let init = client.request(
        json!(2),
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}),
    );
    assert_eq!(init["error"]["code"], -32022, "{init}");
    let bare = client.request(json!(3), "tools/list", json!({}));
    assert_eq!(bare["error"]["code"], -32602, "{bare}");
    let old = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {}}});
    let unsupported = client.request(json!(4), "tools/list", old);
    assert_eq!(unsupported["error"]["code"], -32022, "{unsupported}");
    assert!(unsupported["error"]["data"]["supported"].as_array().unwrap().contains(&json!(VERSION)));

    let tools = client.request(json!(5), "tools/list", enveloped(json!({}), json!({})));
    assert_eq!(tools["result"]["resultType"], "complete", "{tools}");
    assert!(tools["result"]["ttlMs"].is_u64() && tools["result"]["cacheScope"] == "private", "{tools}");
    let call = client.request(
        json!(6),
        "tools/call",
        enveloped(json!({"name": "a__echo", "arguments": {"message": "modern"}}), json!({})),
    );
    assert_eq!(call["result"]["resultType"], "complete", "{call}");
    assert!(first_text(&call).contains("modern"), "{call}");

    // A listen stream: acknowledged, then list changes on it, stamped with its id.
    let mut quiet = gw.client();
    quiet.request(json!(1), "server/discover", enveloped(json!({}), json!({})));
    client.send(&json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": enveloped(json!({"notifications": {"toolsListChanged": true}}), json!({}))}));
    let ack = client.recv_within(TIMEOUT).expect("an acknowledgement");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{ack}");
    assert_eq!(ack["params"]["notifications"], json!({"toolsListChanged": true}), "{ack}");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1", "{ack}");
    save(&gw, &format!("servers:\n  a:\n{}  b:\n{}", fixture_server("a"), fixture_server("b")));
    let changed = client.recv_within(TIMEOUT).expect("a list change on the listen stream");
    assert_eq!(changed["method"], "notifications/tools/list_changed", "{changed}");
    assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1", "{changed}");
    quiet.gather(Duration::from_millis(300));
    assert!(
        quiet.stash.iter().all(|m| m["method"] != "notifications/tools/list_changed"),
        "a modern client that does not listen is not told: {:?}",
        quiet.stash
    );

    // Cancelling the listen ends it: no answer to it, no more changes on it.
    client.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "listen-1"}}));
    let after = client.request(json!(7), "ping", enveloped(json!({}), json!({})));
    assert!(after.get("result").is_some(), "{after}");
    save(&gw, &format!("servers:\n  a:\n{}", fixture_server("a")));
    client.gather(Duration::from_millis(500));
    assert!(client.stash.iter().all(|m| m["id"] != "listen-1" && m.get("method").is_none()), "{:?}", client.stash);
}

#[test]
fn a_backend_question_to_a_modern_client_is_an_input_required_round() {
    let mut gw = TestGateway::with_servers(&[("everything", everything_server())]);
    gw.start();
    let mut client = gw.client();
    let sampling = json!({"sampling": {}});
    client.request(json!(1), "server/discover", enveloped(json!({}), sampling.clone()));
    let asked = client.request(
        json!(2),
        "tools/call",
        enveloped(
            json!({"name": "everything__trigger-sampling-request", "arguments": {"prompt": "which?", "maxTokens": 5}}),
            sampling.clone(),
        ),
    );
    let result = &asked["result"];
    assert_eq!(result["resultType"], "input_required", "{asked}");
    let (key, request) = result["inputRequests"].as_object().unwrap().iter().next().expect("one input request");
    assert_eq!(request["method"], "sampling/createMessage", "{asked}");
    assert!(request.get("id").is_none(), "an input request is no JSON-RPC request: {request}");
    let state = result["requestState"].as_str().expect("a requestState");
    assert!(client.stash.iter().all(|m| m["method"] != "sampling/createMessage"), "no request was sent");

    // The retry, under a new id, carries the answer; the backend's call goes on.
    let answer = json!({"role": "assistant", "content": {"type": "text", "text": "modern-answer"}, "model": "m"});
    let done = client.request(
        json!(3),
        "tools/call",
        enveloped(
            json!({"name": "everything__trigger-sampling-request", "arguments": {"prompt": "which?", "maxTokens": 5},
                "inputResponses": {key.clone(): answer}, "requestState": state}),
            sampling.clone(),
        ),
    );
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(serde_json::to_string(&done).unwrap().contains("modern-answer"), "{done}");

    // A state used once, or never handed out, is refused.
    let replay = client.request(
        json!(4),
        "tools/call",
        enveloped(json!({"name": "everything__echo", "arguments": {"message": "x"}, "requestState": state}), sampling),
    );
    assert_eq!(replay["error"]["code"], -32602, "{replay}");
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}
