//! Limits on what a client controls (`limits:` in the config): each one holds,
//! is refused with an error that names it, and leaves the daemon and the other
//! sessions working.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use crate::common::*;
use serde_json::json;

fn limited(limits: &str, servers: &[(&str, String)]) -> TestGateway {
    let mut gw = limited_config(limits, servers);
    gw.start();
    gw
}

/// [`limited`] with the daemon in this process.
fn limited_in_process(limits: &str, servers: &[(&str, String)]) -> TestGateway {
    let mut gw = limited_config(limits, servers);
    gw.start_in_process();
    gw
}

fn limited_config(limits: &str, servers: &[(&str, String)]) -> TestGateway {
    let mut yaml = format!("limits:\n{limits}servers:\n");
    for (name, body) in servers {
        yaml.push_str(&format!("  {name}:\n{body}"));
    }
    let gw = TestGateway::new();
    gw.write_config(&yaml);
    gw
}

/// A raw connection to the daemon that has sent its preamble and read the reply.
fn raw_session(gw: &TestGateway) -> (UnixStream, String) {
    let mut stream = UnixStream::connect(&gw.socket).unwrap();
    stream.write_all(b"{\"mcp_gateway_preamble\":1}\n").unwrap();
    let mut reply = String::new();
    BufReader::new(stream.try_clone().unwrap()).read_line(&mut reply).unwrap();
    (stream, reply)
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_the_others_go_on() {
    let gw = limited("  backlog_per_session: 50\n", &[("fx", fixture_server("fx"))]);
    let (mut greedy, reply) = raw_session(&gw);
    assert!(reply.contains("\"accepted\":true") || !reply.contains("error"), "{reply}");
    // Thousands of requests, and not one answer read: the socket buffer fills,
    // then the queue; past 50 messages the session is cut off.
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"greedy","version":"1"}}});
    greedy.write_all(format!("{init}\n").as_bytes()).unwrap();
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string() + "\n";
    let mut sent = 0;
    while sent < 20_000 && greedy.write_all(list.as_bytes()).is_ok() {
        sent += 1;
        if sent % 500 == 0 && gw.daemon_log().contains("limits.backlog_per_session") {
            break;
        }
    }
    assert!(
        wait_until(TIMEOUT, || gw.daemon_log().contains("limits.backlog_per_session")),
        "the reason is logged:\n{}",
        gw.daemon_log()
    );
    // What was written before the cut is readable; then the connection ends.
    greedy.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut rest = Vec::new();
    let _ = greedy.read_to_end(&mut rest);
    assert!(wait_until(TIMEOUT, || status(&gw)["sessions"].as_array().is_some_and(Vec::is_empty)), "{}", status(&gw));
    // Everyone else is served as before.
    let mut other = gw.client();
    other.initialize();
    let reply = other.call_tool(json!(1), "fx__echo", json!({"message": "still here"}));
    assert!(first_text(&reply).contains("still here"), "{reply}");
}

#[test]
fn requests_in_flight_and_sessions_are_bounded_with_errors_that_name_the_limit() {
    let gw = limited("  requests_per_session: 2\n  sessions: 2\n", &[("fx", fixture_server("fx"))]);
    let mut client = gw.client();
    client.initialize();
    for id in ["a", "b"] {
        client.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":2,"message":id}}}));
    }
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 2), "{}", status(&gw));
    let refused = client.call_tool(json!("c"), "fx__echo", json!({"message": "one too many"}));
    assert!(refused["error"]["message"].as_str().unwrap().contains("limits.requests_per_session"), "{refused}");
    assert_eq!(first_text(&client.response(&json!("a"))), "slow done: a");
    assert_eq!(first_text(&client.response(&json!("b"))), "slow done: b");
    let after = client.call_tool(json!("d"), "fx__echo", json!({"message": "room again"}));
    assert!(first_text(&after).contains("room again"), "{after}");

    // Two sessions at most: a third is refused with the reason, and the
    // first two are unaffected.
    let mut second = gw.client();
    second.initialize();
    let (_third, reply) = raw_session(&gw);
    assert!(reply.contains("limits.sessions"), "{reply}");
    let still = second.call_tool(json!(1), "fx__echo", json!({"message": "second"}));
    assert!(first_text(&still).contains("second"), "{still}");
}

#[test]
fn subscriptions_per_session_are_bounded() {
    let gw = limited_in_process("  subscriptions_per_session: 1\n", &[("everything", everything_server())]);
    let mut client = gw.client();
    client.initialize();
    let resources = client.request(json!("r"), "resources/list", json!({}));
    let uris: Vec<_> = resources["result"]["resources"].as_array().unwrap().iter().map(|r| r["uri"].clone()).collect();
    assert!(uris.len() >= 2, "{resources}");
    assert_eq!(client.request(json!("s1"), "resources/subscribe", json!({"uri": uris[0]}))["result"], json!({}));
    let refused = client.request(json!("s2"), "resources/subscribe", json!({"uri": uris[1]}));
    assert!(refused["error"]["message"].as_str().unwrap().contains("limits.subscriptions_per_session"), "{refused}");
    assert_eq!(client.request(json!("u1"), "resources/unsubscribe", json!({"uri": uris[0]}))["result"], json!({}));
    assert_eq!(client.request(json!("s3"), "resources/subscribe", json!({"uri": uris[1]}))["result"], json!({}));
}
