//! The 2026-07-28 ("modern") protocol era on the client side, raw on the wire:
//! the era is decided by a connection's first request, every request carries
//! an envelope, `server/discover` replaces the handshake, list changes arrive
//! only on `subscriptions/listen` streams, and a backend's question to the
//! client becomes an `input_required` round. (The Python SDK's own modern
//! client is run against the gateway in the interop and multiplexing tests.)

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

const VERSION: &str = MODERN;

fn save(gw: &TestGateway, text: &str) {
    let tmp = gw.home.join(".config.yaml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, gw.home.join("config.yaml")).unwrap();
}

#[test]
fn a_modern_client_discovers_calls_and_listens_without_a_handshake() {
    let mut gw = TestGateway::with_servers(&[("a", fixture_server("a"))]);
    gw.start_in_process();
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
    let after = client.request(json!(7), "tools/list", enveloped(json!({}), json!({})));
    assert!(after.get("result").is_some(), "{after}");
    // `ping` is one of the methods the revision removed.
    let ping = client.request(json!(8), "ping", enveloped(json!({}), json!({})));
    assert_eq!(ping["error"]["code"], -32601, "{ping}");
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
        enveloped(
            json!({"name": "everything__echo", "arguments": {"message": "x"}, "requestState": state}),
            sampling.clone(),
        ),
    );
    assert_eq!(replay["error"]["code"], -32602, "{replay}");

    // An envelope without the capability the backend's question needs: the
    // call fails with -32021 naming it, as a modern server would answer.
    let refused = client.request(
        json!(5),
        "tools/call",
        enveloped(
            json!({"name": "everything__trigger-sampling-request", "arguments": {"prompt": "which?", "maxTokens": 5}}),
            json!({}),
        ),
    );
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert_eq!(refused["error"]["data"]["requiredCapabilities"], json!({"sampling": {}}), "{refused}");
    let still = client.request(
        json!(6),
        "tools/call",
        enveloped(json!({"name": "everything__echo", "arguments": {"message": "still here"}}), sampling),
    );
    assert!(serde_json::to_string(&still["result"]).unwrap().contains("still here"), "{still}");
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

/// The config entry for the modern fixture server (Python SDK 2.x, stdio).
fn modern_server() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/modern_server.py");
    format!("    command: {}\n    args: [{script:?}]\n", deps().python())
}

/// A handshake-era client named `name` declaring `capabilities`.
fn legacy_client(gw: &TestGateway, name: &str, capabilities: Value) -> Client {
    let mut client = gw.client();
    let init = client.request(
        json!(0),
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": name, "version": "1"}}),
    );
    assert!(init.get("result").is_some(), "{init}");
    client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    client
}

fn named_envelope(name: &str, capabilities: &Value) -> Value {
    let mut meta = envelope(capabilities.clone());
    meta["io.modelcontextprotocol/clientInfo"]["name"] = name.into();
    meta
}

/// A modern client's request `params` with its own named envelope.
fn as_modern(name: &str, capabilities: &Value, mut params: Value) -> Value {
    params["_meta"] = named_envelope(name, capabilities);
    params
}

/// What `whoami` says the backend saw for this call.
fn whoami(reply: &Value) -> Value {
    serde_json::from_str(first_text(reply)).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

#[test]
fn one_modern_backend_serves_legacy_and_modern_clients_each_as_itself() {
    let mut gw = TestGateway::with_servers(&[("m", modern_server())]);
    gw.start();
    let elicit = json!({"elicitation": {}});
    let mut legacy_a = legacy_client(&gw, "legacy-a", elicit.clone());
    let mut legacy_b = legacy_client(&gw, "legacy-b", json!({"sampling": {}}));
    let mut modern_c = gw.client();
    let mut modern_d = gw.client();
    let c_caps = json!({"elicitation": {"form": {}}});
    let d_caps = json!({});
    modern_c.request(json!(1), "server/discover", as_modern("modern-c", &c_caps, json!({})));
    modern_d.request(json!(1), "server/discover", as_modern("modern-d", &d_caps, json!({})));

    // Each request reaches the one backend with its own client's envelope.
    let a = whoami(&legacy_a.call_tool(json!(1), "m__whoami", json!({})));
    let b = whoami(&legacy_b.call_tool(json!(1), "m__whoami", json!({})));
    let c =
        whoami(&modern_c.request(json!(2), "tools/call", as_modern("modern-c", &c_caps, json!({"name": "m__whoami"}))));
    let d =
        whoami(&modern_d.request(json!(2), "tools/call", as_modern("modern-d", &d_caps, json!({"name": "m__whoami"}))));
    assert_eq!((a["era"].as_str(), a["clientInfo"].as_str()), (Some("modern"), Some("legacy-a")), "{a}");
    assert_eq!(a["capabilities"], elicit, "{a}");
    assert_eq!(b["clientInfo"], "legacy-b", "{b}");
    assert_eq!(b["capabilities"], json!({"sampling": {}}), "{b}");
    assert_eq!(c["clientInfo"], "modern-c", "{c}");
    assert_eq!(c["capabilities"], c_caps, "{c}");
    assert_eq!(d["clientInfo"], "modern-d", "{d}");
    assert_eq!(gw.count("modern_server.py"), 1, "one backend process for all four");
    let backends = status(&gw)["backends"].clone();
    assert_eq!(backends.as_array().map(Vec::len), Some(1), "{backends}");

    // A question from the server: the legacy client is asked for real (the
    // gateway runs the rounds), the modern one gets input_required and retries.
    legacy_a.send(&json!({"jsonrpc": "2.0", "id": "ask", "method": "tools/call",
        "params": {"name": "m__two_rounds", "arguments": {}}}));
    for answer in ["one", "two"] {
        let question = loop {
            let m = legacy_a.recv_within(TIMEOUT).unwrap_or_else(|| panic!("no question\n{}", gw.daemon_log()));
            if m["method"] == "elicitation/create" {
                break m;
            }
        };
        legacy_a.send(&json!({"jsonrpc": "2.0", "id": question["id"],
            "result": {"action": "accept", "content": {"answer": answer}}}));
    }
    let done = legacy_a.response(&json!("ask"));
    assert_eq!(first_text(&done), "first=one, second=two", "{done}");
    assert!(done["result"].get("resultType").is_none(), "a handshake-era client gets no modern fields: {done}");

    let asked = modern_c.request(
        json!(3),
        "tools/call",
        as_modern("modern-c", &c_caps, json!({"name": "m__ask", "arguments": {"question": "colour?"}})),
    );
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let (key, question) = asked["result"]["inputRequests"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(question["method"], "elicitation/create");
    let mut retry = json!({"name": "m__ask", "arguments": {"question": "colour?"},
        "inputResponses": {key.clone(): {"action": "accept", "content": {"answer": "blue"}}},
        "requestState": asked["result"]["requestState"]});
    retry["_meta"] = named_envelope("modern-c", &c_caps);
    let answered = modern_c.request(json!(4), "tools/call", retry);
    assert_eq!(first_text(&answered), "answer: blue", "{answered}");

    // List changes: to the listening modern client (stamped), to the legacy
    // clients as ever, and not to the modern client that does not listen.
    modern_c.send(&json!({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen",
        "params": as_modern("modern-c", &c_caps, json!({"notifications": {"toolsListChanged": true}}))}));
    let ack = modern_c.recv_within(TIMEOUT).expect("acknowledged");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{ack}");
    let added = legacy_b.call_tool(json!(2), "m__add_tool", json!({"name": "fresh"}));
    assert!(added.get("result").is_some(), "{added}");
    let changed = modern_c.recv_within(TIMEOUT).unwrap_or_else(|| panic!("no list change\n{}", gw.daemon_log()));
    assert_eq!(changed["method"], "notifications/tools/list_changed", "{changed}");
    assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "L");
    assert!(wait_until(TIMEOUT, || legacy_a.tool_names().contains(&"m__fresh".to_string())), "the new tool is listed");
    modern_d.gather(Duration::from_millis(200));
    assert!(modern_d.stash.iter().all(|m| m["method"] != "notifications/tools/list_changed"), "{:?}", modern_d.stash);
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

/// The modern fixture over Streamable HTTP, on an ephemeral port; killed when dropped.
struct HttpModern(std::process::Child, String);

impl Drop for HttpModern {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn modern_over_http(gw: &TestGateway) -> HttpModern {
    let port_file = gw.dir.path().join("modern.port");
    let child = std::process::Command::new(deps().python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/modern_server.py"))
        .args(["--http", "0", "--port-file"])
        .arg(&port_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut port = String::new();
    assert!(wait_until(TIMEOUT, || {
        port = std::fs::read_to_string(&port_file).unwrap_or_default();
        port.ends_with('\n')
    }));
    HttpModern(child, format!("http://127.0.0.1:{}/mcp", port.trim()))
}

#[test]
fn a_remote_modern_server_gets_each_request_as_its_own_post_with_its_clients_envelope() {
    let mut gw = TestGateway::new();
    let server = modern_over_http(&gw);
    gw.write_config(&format!("servers:\n  m:\n    url: {:?}\n", server.1));
    gw.start();
    let mut legacy = legacy_client(&gw, "legacy-remote", json!({"elicitation": {}}));
    let mut modern = gw.client();
    let caps = json!({"sampling": {}});
    modern.request(json!(1), "server/discover", as_modern("modern-remote", &caps, json!({})));

    let l = whoami(&legacy.call_tool(json!(1), "m__whoami", json!({})));
    assert_eq!((l["era"].as_str(), l["clientInfo"].as_str()), (Some("modern"), Some("legacy-remote")), "{l}");
    let m = whoami(&modern.request(
        json!(2),
        "tools/call",
        as_modern("modern-remote", &caps, json!({"name": "m__whoami"})),
    ));
    assert_eq!(m["clientInfo"], "modern-remote", "{m}");
    assert_eq!(m["capabilities"], caps, "{m}");
    assert!(gw.daemon_log().contains("speaks MCP 2026-07-28"), "{}", gw.daemon_log());

    // The handshake-era client's question rounds, run by the gateway over HTTP.
    legacy.send(&json!({"jsonrpc": "2.0", "id": "ask", "method": "tools/call",
        "params": {"name": "m__ask", "arguments": {"question": "remote?"}}}));
    let question = loop {
        let m = legacy.recv_within(TIMEOUT).unwrap_or_else(|| panic!("no question\n{}", gw.daemon_log()));
        if m["method"] == "elicitation/create" {
            break m;
        }
    };
    legacy.send(
        &json!({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {"answer": "yes"}}}),
    );
    assert_eq!(first_text(&legacy.response(&json!("ask"))), "answer: yes");
    // Progress comes back on the call's own stream, to its caller.
    legacy.send(&json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
        "params": {"name": "m__slow", "arguments": {"seconds": 0.3}, "_meta": {"progressToken": "p"}}}));
    assert_eq!(first_text(&legacy.response(&json!("slow"))), "slow done");
    assert!(
        legacy.stash.iter().any(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "p")
    );
    // An argument the tool's schema marks `x-mcp-header` goes in an `Mcp-Param-*`
    // header too (the server refuses the call without it), encoded when not plain.
    for region in ["eu-west-1", "Zürich"] {
        let answer = legacy.call_tool(json!(region), "m__region", json!({"region": region}));
        assert_eq!(first_text(&answer), format!("region: {region}"), "{answer}");
    }
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

/// The methods the fixture server `a` has received, through `client`.
fn methods_seen(client: &mut Client, id: u64) -> String {
    first_text(&client.call_tool(json!(id), "a__calls", json!({}))).to_string()
}

#[test]
fn a_servers_era_is_kept_with_its_listing_so_a_new_daemon_does_not_ask_again() {
    let mut gw = TestGateway::new();
    gw.write_config(&format!("servers:\n  a:\n{}", fixture_server("a")));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let first = methods_seen(&mut client, 1);
    assert!(first.contains("server/discover"), "the first start asks: {first}");
    drop(client);
    let path = gw.home.join("cache/catalog.json");
    let mut cache = String::new();
    let on_disk = wait_until(TIMEOUT, || {
        cache = std::fs::read_to_string(&path).unwrap_or_default();
        cache.contains(r#""era":"handshake""#)
    });
    assert!(on_disk, "the listing, with the era, is on disk: {cache}");
    gw.stop();

    gw.start();
    let mut client = gw.client();
    client.initialize();
    let again = methods_seen(&mut client, 2);
    assert!(again.contains("initialize"), "{again}");
    assert!(!again.contains("server/discover"), "a daemon that finds the era on disk does not ask: {again}");
}
