//! Careless backends and clients: a server that hangs at start-up must not hold
//! up the others, a repeated request id must not slip past the in-flight limit,
//! and a client that stops reading must not grow the daemon, in messages or bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

/// A started gateway with this config text before its `servers:` entries.
fn gateway_with(head: &str, servers: &[(&str, String)]) -> TestGateway {
    let mut yaml = format!("{head}servers:\n");
    for (name, body) in servers {
        yaml.push_str(&format!("  {name}:\n{body}"));
    }
    let mut gw = TestGateway::new();
    gw.write_config(&yaml);
    gw.start();
    gw
}

/// A raw connection to the daemon that has sent its preamble and read the reply.
fn raw_session(gw: &TestGateway) -> UnixStream {
    let mut stream = UnixStream::connect(&gw.socket).unwrap();
    stream.write_all(b"{\"mcp_gateway_preamble\":1}\n").unwrap();
    let mut reply = String::new();
    BufReader::new(stream.try_clone().unwrap()).read_line(&mut reply).unwrap();
    assert!(reply.contains("\"session\"") && !reply.contains("error"), "{reply}");
    stream
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// The startup timeout of the hung server is 30 s, so anything that waits for it
// takes 30 s; "promptly" below is 10 s, which only an answer that does not wait
// for it meets, on however slow a machine.
const HUNG_STARTUP: &str = "startup_timeout_secs: 30\nlist_wait_secs: 2\n";
const PROMPTLY: Duration = Duration::from_secs(10);

#[test]
fn a_server_that_never_initializes_does_not_hold_up_the_others() {
    let gw = gateway_with(HUNG_STARTUP, &[("hung", fixture_server("hang")), ("fx", fixture_server("fx"))]);
    let mut client = gw.client();
    client.initialize();

    // A call to the healthy server waits for that server only.
    let started = Instant::now();
    let reply = client.call_tool(json!(1), "fx__echo", json!({"message": "not held up"}));
    assert!(first_text(&reply).contains("not held up"), "{reply}");
    assert!(started.elapsed() < PROMPTLY, "the call took {:?}: it waited for the hung server", started.elapsed());

    // The list answers within its bound, with what is known.
    let started = Instant::now();
    let names = client.tool_names();
    assert!(started.elapsed() < PROMPTLY, "tools/list took {:?}", started.elapsed());
    assert!(names.iter().any(|n| n == "fx__echo"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("hung__")), "{names:?}");

    // A second session is not held up either, nor is a call to a name no
    // server has.
    let mut other = gw.client();
    other.initialize();
    let started = Instant::now();
    let reply = other.call_tool(json!("o"), "fx__echo", json!({"message": "other session"}));
    assert!(first_text(&reply).contains("other session"), "{reply}");
    let unknown = other.call_tool(json!("u"), "fx__nope", json!({}));
    assert!(unknown.get("error").is_some(), "{unknown}");
    assert!(started.elapsed() < PROMPTLY, "took {:?}", started.elapsed());
}

#[test]
fn lazy_meta_tools_do_not_wait_for_a_hung_server_either() {
    let head = format!("tools: lazy\n{HUNG_STARTUP}");
    let gw = gateway_with(&head, &[("hung", fixture_server("hang")), ("fx", fixture_server("fx"))]);
    let mut client = gw.client();
    client.initialize();
    let started = Instant::now();
    let reply = client.call_tool(json!(1), "mcpgw_call", json!({"tool": "fx__echo", "arguments": {"message": "lazy"}}));
    assert!(first_text(&reply).contains("lazy"), "{reply}");
    let found = client.call_tool(json!(2), "mcpgw_search", json!({"query": "echo"}));
    assert!(first_text(&found).contains("fx__echo"), "{found}");
    assert!(started.elapsed() < PROMPTLY, "took {:?}", started.elapsed());
}

#[test]
fn a_slow_server_left_out_of_the_list_is_announced_when_it_arrives() {
    let gw =
        gateway_with("list_wait_secs: 1\n", &[("late", fixture_server("slowstart-4")), ("fx", fixture_server("fx"))]);
    let mut client = gw.client();
    client.initialize();
    let names = client.tool_names();
    assert!(names.iter().any(|n| n == "fx__echo"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("late__")), "listed before it answered? {names:?}");
    let announced = wait_until(TIMEOUT, || {
        client.gather(Duration::from_millis(100));
        client.stash.iter().any(|m| m["method"] == "notifications/tools/list_changed")
    });
    assert!(announced, "no list_changed once the slow server was up:\n{}", gw.daemon_log());
    client.stash.clear();
    let names = client.tool_names();
    assert!(names.iter().any(|n| n == "late__echo"), "{names:?}");
    assert!(names.iter().any(|n| n == "fx__echo"), "{names:?}");
}

#[test]
fn a_repeated_request_id_is_refused_and_not_forwarded() {
    let gw = gateway_with("limits:\n  requests_per_session: 20\n", &[("fx", fixture_server("fx"))]);
    let mut client = gw.client();
    client.initialize();
    let slow = |id: Value| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":3,"message":"once"}}});
    let same = json!("same");
    for _ in 0..40 {
        client.send(&slow(same.clone()));
    }
    // 7 and "7" are different ids: both go through.
    client.send(&slow(json!(7)));
    client.send(&slow(json!("7")));
    let mut results = 0;
    let mut refused = 0;
    for _ in 0..40 {
        let answer = client.response(&same);
        if answer.get("result").is_some() {
            results += 1;
        } else {
            assert_eq!(answer["error"]["code"], -32600, "{answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("already in use"), "{answer}");
            refused += 1;
        }
    }
    assert_eq!((results, refused), (1, 39));
    assert_eq!(first_text(&client.response(&json!(7))), "slow done: once");
    assert_eq!(first_text(&client.response(&json!("7"))), "slow done: once");
    // The backend saw three slow calls, not forty-two; and the session goes on.
    let calls = client.call_tool(json!("calls"), "fx__calls", json!({}));
    let seen: Vec<String> = serde_json::from_str(first_text(&calls)).unwrap();
    assert_eq!(seen.iter().filter(|m| *m == "tools/call").count(), 3 + 1, "{seen:?}");
    // The id is free again once its request is answered.
    let again = client.call_tool(same, "fx__echo", json!({"message": "reused after"}));
    assert!(first_text(&again).contains("reused after"), "{again}");
}

#[test]
fn a_client_that_stops_reading_large_answers_is_cut_off_by_bytes() {
    let gw = gateway_with("limits:\n  backlog_bytes_per_session: 8388608\n", &[("fx", fixture_server("fx"))]);
    let pid = gw.daemon.as_ref().unwrap().id();
    let mut bystander = gw.client();
    bystander.initialize();

    let mut greedy = raw_session(&gw);
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"greedy","version":"1"}}});
    greedy.write_all(format!("{init}\n").as_bytes()).unwrap();
    // 2,000 answers of 100 kB, none read: 200 MB if nothing bounds it in bytes
    // (the message bound, 10,000, is nowhere near).
    let mut peak = 0;
    for n in 1..=2000 {
        let call = json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":"fx__big","arguments":{"bytes":100_000}}});
        if greedy.write_all(format!("{call}\n").as_bytes()).is_err() {
            break; // Cut off already.
        }
        if n % 50 == 0 {
            peak = peak.max(vm_rss_kib(pid));
            // Keep no more calls in flight than the backend can answer, so the
            // answers pile up in the daemon, not in the backend's pipe.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let logged = "limits.backlog_bytes_per_session";
    let cut = wait_until(TIMEOUT, || {
        peak = peak.max(vm_rss_kib(pid));
        gw.daemon_log().contains(logged)
    });
    assert!(cut, "the reason is logged:\n{}", gw.daemon_log());
    // The connection ends once what was written before the cut is read.
    greedy.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut rest = Vec::new();
    let _ = greedy.read_to_end(&mut rest);
    assert!(
        wait_until(TIMEOUT, || status(&gw)["sessions"].as_array().is_some_and(|s| s.len() == 1)),
        "{}",
        status(&gw)
    );
    peak = peak.max(vm_rss_kib(pid));
    assert!(peak < 200 * 1024, "the daemon grew to {peak} kB for an unread client");
    // Everyone else is served as before.
    let reply = bystander.call_tool(json!(1), "fx__echo", json!({"message": "still here"}));
    assert!(first_text(&reply).contains("still here"), "{reply}");
}
