//! The HTTP front door: Streamable HTTP at /mcp, authentication, DNS-rebinding
//! protection, and sessions that are ordinary gateway sessions.

use crate::common::*;
use reqwest::blocking::{Client as Http, Response};
use serde_json::{Value, json};

fn front_door(auth: &str) -> (TestGateway, String) {
    front_door_with(auth, "")
}

/// A front door with `settings` (indented lines) added to its `http:` section.
fn front_door_with(auth: &str, settings: &str) -> (TestGateway, String) {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  auth: {auth}\n{settings}servers:\n  fx:\n{}",
        fixture_server("http")
    ));
    gw.daemon_env.push(("GATEWAY_TOKEN".into(), "tok-123".into()));
    gw.start();
    let url = status(&gw)["http"].as_str().expect("the front door is listening").to_string();
    (gw, url)
}

fn post(http: &Http, url: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut request = http.post(url).header("accept", "application/json, text/event-stream").json(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().unwrap()
}

fn initialize(http: &Http, url: &str, auth: &[(&str, &str)]) -> String {
    initialize_at(http, url, auth, "2025-06-18")
}

fn initialize_at(http: &Http, url: &str, auth: &[(&str, &str)], version: &str) -> String {
    let response = post(
        http,
        url,
        auth,
        &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":version,"capabilities":{},"clientInfo":{"name":"http-test","version":"1"}}}),
    );
    assert_eq!(response.status(), 200);
    let session = response.headers().get("mcp-session-id").expect("a session id").to_str().unwrap().to_string();
    let init = http_messages(response);
    assert_eq!(init[0]["result"]["serverInfo"]["name"], "mcp-gateway");
    session
}

#[test]
fn a_full_session_over_http_with_a_bearer_token() {
    let (gw, url) = front_door("{ bearer_tokens: [\"${GATEWAY_TOKEN}\"] }");
    let http = Http::new();
    let auth = [("authorization", "Bearer tok-123")];
    let session = initialize(&http, &url, &auth);
    let with_session = [auth[0], ("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];
    let accepted = post(&http, &url, &with_session, &json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    assert_eq!(accepted.status(), 202);
    let tools = http_messages(post(&http, &url, &with_session, &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})));
    let names: Vec<&str> = tools.last().unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fx__echo"), "{names:?}");
    // Progress and the answer come back on the POST's own stream.
    let events = http_messages(post(
        &http,
        &url,
        &with_session,
        &json!({"jsonrpc":"2.0","id":"call","method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":0.2,"message":"via http"},"_meta":{"progressToken":"p1"}}}),
    ));
    assert!(
        events.iter().any(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "p1"),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap()["id"], "call");
    assert_eq!(events.last().unwrap()["result"]["content"][0]["text"], "slow done: via http");
    // It is an ordinary gateway session.
    assert_eq!(status(&gw)["sessions"].as_array().unwrap().len(), 1);
    // DELETE ends it.
    let deleted = http.delete(&url).header(auth[0].0, auth[0].1).header("mcp-session-id", &session).send().unwrap();
    assert_eq!(deleted.status(), 204);
    let after = post(&http, &url, &with_session, &json!({"jsonrpc":"2.0","id":2,"method":"ping"}));
    assert_eq!(after.status(), 404);
    assert!(wait_until(TIMEOUT, || status(&gw)["sessions"] == json!([])));
}

#[test]
fn authentication_is_required_and_says_nothing_about_why_it_failed() {
    let (gw, url) =
        front_door("{ bearer_tokens: [\"${GATEWAY_TOKEN}\"], api_keys: [{ token: key-456, profile: null }] }");
    let http = Http::new();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("x-api-key", "wrong")],
        vec![("authorization", "Basic dG9rLTEyMw==")],
    ] {
        let response = post(&http, &url, &headers, &init);
        assert_eq!(response.status(), 401, "{headers:?}");
        assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer realm=\"mcp-gateway\"");
        assert_eq!(response.text().unwrap(), "unauthorized");
    }
    assert_eq!(post(&http, &url, &[("x-api-key", "key-456")], &init).status(), 200, "an API key works");
    assert_eq!(post(&http, &url, &[("authorization", "Bearer tok-123")], &init).status(), 200);
    assert!(!gw.daemon_log().contains("tok-123"), "tokens are never logged");
    // Nothing refused ever reached a backend.
    assert_eq!(gw.count("fixture_server.py http"), 0);
}

#[test]
fn localhost_trust_only_when_enabled() {
    let (_gw, url) = front_door("{ localhost: true }");
    let http = Http::new();
    let session = initialize(&http, &url, &[]);
    assert!(!session.is_empty());
    let (_gw2, url2) = front_door("{}");
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    assert_eq!(post(&http, &url2, &[], &init).status(), 401, "no credentials configured: nobody gets in");
}

#[test]
fn bad_origins_and_hosts_are_forbidden() {
    let (_gw, url) = front_door("{ localhost: true }");
    let http = Http::new();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    assert_eq!(post(&http, &url, &[("origin", "http://evil.example")], &init).status(), 403);
    assert_eq!(post(&http, &url, &[("host", "evil.example")], &init).status(), 403);
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_eq!(post(&http, &url, &[("origin", &format!("http://localhost:{port}"))], &init).status(), 200);
}

#[test]
fn the_python_sdk_speaks_to_the_front_door() {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  auth: {{ localhost: true }}\nservers:\n  everything:\n{}",
        everything_server()
    ));
    gw.start();
    let url = status(&gw)["http"].as_str().unwrap().to_string();
    // auto: the modern era (no session; each POST stands alone) when the
    // front door speaks it.
    for (mode, era) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let result = run_script(&gw, "http_client.py", &["--url", &url, "--mode", mode]);
        assert_eq!(result["server"], "mcp-gateway", "{result}");
        assert_eq!(result["protocolVersion"], era, "{mode}: {result}");
        assert!(result["echo"].as_str().unwrap().contains("over http"), "{result}");
        assert_eq!(result["progress"], 2, "progress on the POST stream: {result}");
        assert_eq!(result["slow_error"], false);
    }
}

/// Reads from a raw connection until the server closes it; what it sent.
fn read_to_close(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen);
    seen
}

#[test]
fn limits_hold_against_greedy_and_slow_clients_and_unused_sessions_expire() {
    use std::io::Write;
    let (gw, url) = front_door_with(
        "{ bearer_tokens: [\"${GATEWAY_TOKEN}\"] }",
        "  max_connections: 3\n  max_sessions: 2\n  read_timeout: 2s\n  session_idle_timeout: 1s\n",
    );
    let addr = url.trim_start_matches("http://").trim_end_matches("/mcp").to_string();
    let request = format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n\r\n{{}}");

    // Connections: three idle ones fill the front door; a fourth is closed
    // unanswered, and once they are gone a new one is served.
    let idle: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let mut fourth = std::net::TcpStream::connect(&addr).unwrap();
    let _ = fourth.write_all(request.as_bytes());
    assert_eq!(read_to_close(&mut fourth), b"", "the connection over the limit got no answer");
    drop(idle);
    let mut served = Vec::new();
    assert!(
        wait_until(TIMEOUT, || {
            let mut next = std::net::TcpStream::connect(&addr).unwrap();
            let _ = next.write_all(request.as_bytes());
            served = read_to_close(&mut next);
            !served.is_empty()
        }),
        "a connection under the limit is served"
    );
    assert!(String::from_utf8_lossy(&served).starts_with("HTTP/1.1 401"), "{}", String::from_utf8_lossy(&served));

    // Slow headers: a client that never finishes its request is cut off.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: ").unwrap();
    let started = std::time::Instant::now();
    let answer = read_to_close(&mut slow);
    assert!(started.elapsed() < TIMEOUT, "the slow client was cut off, not left hanging");
    assert!(!String::from_utf8_lossy(&answer).contains("200"), "{}", String::from_utf8_lossy(&answer));

    // Sessions: two at most; unused ones expire, and their ids then get 404.
    let http = Http::builder().pool_max_idle_per_host(0).build().unwrap();
    let auth = [("authorization", "Bearer tok-123")];
    let first = initialize(&http, &url, &auth);
    let _second = initialize(&http, &url, &auth);
    let third = post(
        &http,
        &url,
        &auth,
        &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"third","version":"1"}}}),
    );
    assert_eq!(third.status(), 503, "a third session is refused");
    // (Watched through the daemon's status: a request would be a use.)
    assert!(
        wait_until(TIMEOUT, || status(&gw)["sessions"].as_array().is_some_and(Vec::is_empty)),
        "unused sessions expire, and their gateway sessions end: {}",
        status(&gw)
    );
    let with_first = [auth[0], ("mcp-session-id", first.as_str())];
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    assert_eq!(post(&http, &url, &with_first, &list).status(), 404, "an expired session id is unknown");
    initialize(&http, &url, &auth);
    assert!(gw.daemon_log().contains("closed an HTTP session unused"), "{}", gw.daemon_log());
}

/// Reads an SSE body until a line starting with `prefix`; returns that line.
fn read_until_line(response: &mut Response, prefix: &str) -> String {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(response);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended before `{prefix}`");
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
    }
}

#[test]
fn a_request_stream_that_drops_is_resumed_with_last_event_id() {
    let (_gw, url) = front_door("{ bearer_tokens: [\"${GATEWAY_TOKEN}\"] }");
    let http = Http::new();
    let auth = [("authorization", "Bearer tok-123")];
    let session = initialize_at(&http, &url, &auth, "2025-11-25");
    let with_session = [auth[0], ("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-11-25")];
    post(&http, &url, &with_session, &json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    // A 2025-11-25 client is given the stream's event id first (priming)...
    let mut call = post(
        &http,
        &url,
        &with_session,
        &json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":1.0,"message":"resumed"},"_meta":{"progressToken":"p"}}}),
    );
    let priming = read_until_line(&mut call, "id:");
    assert!(priming.ends_with("-0"), "the first event is the priming one: {priming}");
    // ...and its connection drops mid-call, which does not cancel the call.
    drop(call);
    let last_event_id = priming.trim_start_matches("id:").trim().to_string();
    let resumed = http
        .get(&url)
        .header(auth[0].0, auth[0].1)
        .header("mcp-session-id", &session)
        .header("accept", "text/event-stream")
        .header("last-event-id", &last_event_id)
        .send()
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let events = http_messages(resumed);
    let answer = events.last().expect("the rest of the stream");
    assert_eq!(answer["id"], "long", "{events:?}");
    assert_eq!(answer["result"]["content"][0]["text"], "slow done: resumed", "{events:?}");
    assert!(events.iter().any(|m| m["params"]["progressToken"] == "p"), "progress is part of the stream: {events:?}");
}

/// Reads SSE `data:` messages from a response until one satisfies `done`.
fn read_messages_until(response: &mut Response, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(response);
    let mut seen = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended; saw {seen:?}");
        if let Some(data) = line.strip_prefix("data:").map(str::trim).filter(|d| !d.is_empty()) {
            let message: Value = serde_json::from_str(data).unwrap();
            let stop = done(&message);
            seen.push(message);
            if stop {
                return seen;
            }
        }
    }
}

#[test]
fn modern_clients_post_without_a_session_and_keep_their_own_ids() {
    let (_gw, url) = front_door("{ bearer_tokens: [\"${GATEWAY_TOKEN}\"] }");
    let http = Http::new();
    let modern = [("authorization", "Bearer tok-123"), ("mcp-protocol-version", "2026-07-28")];
    let envelope = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": {"name": "h", "version": "1"}});
    let request = |id: Value, method: &str, mut params: Value| {
        params["_meta"] = envelope.clone();
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    };

    // What a 2026-07-28 client sends: the routing headers with every request.
    let post_at = |version: &str, body: &Value| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("authorization", "Bearer tok-123")
            .header("mcp-protocol-version", version)
            .json(body);
        for (k, v) in routing_headers(body) {
            request = request.header(k, v);
        }
        request.send().unwrap()
    };
    let modern_post = |body: &Value| post_at("2026-07-28", body);

    // An answer that is all there is comes as JSON.
    let discovered = modern_post(&request(json!(1), "server/discover", json!({})));
    assert_eq!(discovered.headers()["content-type"], "application/json");
    assert!(http_messages(discovered)[0]["result"]["supportedVersions"].to_string().contains("2026-07-28"));

    // The revision's refusals, each with its status.
    let mut mismatched = request(json!(2), "tools/list", json!({}));
    mismatched["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2025-11-25".into();
    let refused = modern_post(&mismatched);
    assert_eq!(refused.status(), 400);
    assert_eq!(http_messages(refused)[0]["error"]["code"], -32020);
    let unrouted = post(&http, &url, &modern, &request(json!(3), "tools/list", json!({})));
    assert_eq!(unrouted.status(), 400, "no Mcp-Method header");
    assert_eq!(http_messages(unrouted)[0]["error"]["code"], -32020);
    for removed in ["initialize", "ping", "logging/setLevel", "resources/subscribe"] {
        let refused = modern_post(&request(json!(4), removed, json!({"uri": "x", "level": "info"})));
        assert_eq!(refused.status(), 404, "{removed}");
        assert_eq!(http_messages(refused)[0]["error"]["code"], -32601, "{removed}");
    }
    let mut future = request(json!(5), "tools/list", json!({}));
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01".into();
    let too_new = post_at("2099-01-01", &future);
    assert_eq!(too_new.status(), 400);
    let error = &http_messages(too_new)[0]["error"];
    assert_eq!(error["code"], -32022, "{error}");
    assert_eq!(error["data"]["requested"], "2099-01-01", "{error}");
    assert!(error["data"]["supported"].to_string().contains("2026-07-28"), "{error}");
    let mut no_capabilities = request(json!(6), "tools/list", json!({}));
    no_capabilities["params"]["_meta"].as_object_mut().unwrap().remove("io.modelcontextprotocol/clientCapabilities");
    let refused = modern_post(&no_capabilities);
    assert_eq!(refused.status(), 400);
    assert_eq!(http_messages(refused)[0]["error"]["code"], -32602);

    // Two clients, the same id at once: each gets its own answer under it.
    let (a, b) = std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let call = request(
                json!(7),
                "tools/call",
                json!({"name": "fx__slow", "arguments": {"seconds": 0.5, "message": "a"}}),
            );
            http_messages(modern_post(&call))
        });
        let call = request(json!(7), "tools/call", json!({"name": "fx__echo", "arguments": {"message": "b"}}));
        let b = http_messages(modern_post(&call));
        (slow.join().unwrap(), b)
    });
    assert_eq!(a.last().unwrap()["id"], 7);
    assert_eq!(first_text(a.last().unwrap()), "slow done: a", "{a:?}");
    assert_eq!(b.last().unwrap()["id"], 7);
    assert!(first_text(b.last().unwrap()).contains('b'), "{b:?}");

    // A listen stream, over its own POST, with the client's own id on every frame.
    let listen = request(json!("L"), "subscriptions/listen", json!({"notifications": {"toolsListChanged": true}}));
    let mut stream = modern_post(&listen);
    let ack = read_messages_until(&mut stream, |m| m["method"] == "notifications/subscriptions/acknowledged");
    assert_eq!(ack.last().unwrap()["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "L", "{ack:?}");
    let added = http_messages(modern_post(&request(
        json!(8),
        "tools/call",
        json!({"name": "fx__add_tool", "arguments": {"name": "extra"}}),
    )));
    assert!(added.last().unwrap().get("result").is_some(), "{added:?}");
    let changed = read_messages_until(&mut stream, |m| m["method"] == "notifications/tools/list_changed");
    assert_eq!(changed.last().unwrap()["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "L");
}

/// Over HTTP a client names its entry with `X-MCP-Gateway-Entry`, as the
/// shim's `--entry`: Claude Code under `gateway` gets the whole 50-character
/// name, under `mcp-gateway` the 46 that `mcp__mcp-gateway__` leaves.
#[test]
fn an_http_client_names_its_entry_and_gets_names_that_fit_behind_it() {
    const SERVER: &str = "fixture-server-whose-name-is-long-for-a-tool";
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  auth: {{ bearer_tokens: [\"${{GATEWAY_TOKEN}}\"] }}\nservers:\n  {SERVER}:\n{}",
        fixture_server("http-entry")
    ));
    gw.daemon_env.push(("GATEWAY_TOKEN".into(), "tok-123".into()));
    gw.start();
    let url = status(&gw)["http"].as_str().expect("the front door is listening").to_string();
    let http = Http::new();
    let echo_name = |entry: Option<&str>| {
        let mut headers = vec![("authorization", "Bearer tok-123")];
        headers.extend(entry.map(|e| ("x-mcp-gateway-entry", e)));
        let init = post(
            &http,
            &url,
            &headers,
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",
                "capabilities":{},"clientInfo":{"name":"claude-code","version":"1"}}}),
        );
        let session = init.headers().get("mcp-session-id").expect("a session id").to_str().unwrap().to_string();
        headers.extend([("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")]);
        let tools = http_messages(post(&http, &url, &headers, &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})));
        let names = tools.last().unwrap()["result"]["tools"].as_array().unwrap().clone();
        let names: Vec<String> = names.iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
        names.into_iter().find(|n| n.contains("__echo")).expect("the echo tool")
    };
    assert_eq!(echo_name(None), format!("{SERVER}__echo"));
    let short = echo_name(Some("mcp-gateway"));
    assert!(short.len() <= 46 && short.starts_with(&SERVER[..31]), "{short}");
}
