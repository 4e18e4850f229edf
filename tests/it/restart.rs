//! Restarts without loss: calls in flight when the daemon dies (SIGKILL, no
//! shutdown code runs) are sent again to the daemon the shims start, when that
//! is safe (reads, lists, calls of tools the server marks read-only or
//! idempotent), and answered with an error that says the daemon restarted
//! otherwise: every call is answered exactly once, none hangs, and nothing is
//! left running.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

/// Sessions calling at once.
pub const SESSIONS: usize = 4;

/// How many times the daemon is killed under them: 3 in the test suite;
/// `MCP_GATEWAY_RESTART_KILLS=1000 cargo test --test it restart:: -- --nocapture`
/// (and `systemd::` for the socket-activated run)
/// for the long run.
pub fn kills() -> usize {
    std::env::var("MCP_GATEWAY_RESTART_KILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(3)
}

fn call(id: &str, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

/// The daemon's pid, once one answers `status`.
fn daemon_pid(gw: &TestGateway) -> Option<i32> {
    let out = gw.command(DAEMON).args(["status", "--json"]).output().ok()?;
    let status: Value = serde_json::from_slice(&out.stdout).ok()?;
    status["pid"].as_i64().map(|pid| pid as i32)
}

/// What [`kill_under_calls`] saw.
pub struct Counts {
    pub sessions: usize,
    pub kills: usize,
    pub replayed: usize,
    pub completed: usize,
    pub lost: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Counts { sessions, kills, replayed, completed, lost } = self;
        write!(
            f,
            "{kills} kills under {sessions} sessions: {replayed} read-only calls sent again and completed, \
             {completed} other calls completed, {lost} answered with the restart error, 0 answered twice"
        )
    }
}

/// The chaos loop, whoever brings the daemon back (the shims' autostart, or
/// systemd's socket activation): `kills` times, every session has a read-only
/// 2 s call and a 2 s call with side effects in flight at the backend when the
/// daemon is SIGKILLed; each must be answered exactly once, the read-only one
/// with its result, the other with its result or the restart error.
pub fn kill_under_calls(gw: &TestGateway, clients: &mut [Client], kills: usize) -> Counts {
    for client in clients.iter_mut() {
        client.initialize();
        // The listing tells the shim that `wait` is read-only.
        assert!(client.tool_names().contains(&"fx__wait".to_string()));
    }
    let sessions = clients.len();
    let (mut replayed, mut lost, mut completed) = (0, 0, 0);
    for round in 0..kills {
        let killed = daemon_pid(gw).expect("a daemon answers status");
        for (n, client) in clients.iter_mut().enumerate() {
            let read = json!({"seconds": 2, "message": format!("{round}/{n}")});
            client.send(&call(&format!("read-{round}-{n}"), "fx__wait", read));
            client.send(&call(&format!("write-{round}-{n}"), "fx__slow", json!({"seconds": 2})));
        }
        // Both calls of every session reached the backend before the kill. (A
        // status probe that fails is asked again; if the daemon really went,
        // the calls never all arrive and the wait says so.)
        let mut failed_probe = None;
        let mut in_flight = || match try_status(gw) {
            Ok(status) => status["backends"]
                .as_array()
                .map_or(0, |b| b.iter().filter_map(|b| b["in_flight"].as_u64()).sum::<u64>()),
            Err(e) => {
                failed_probe = Some(e);
                0
            }
        };
        let arrived = wait_until(TIMEOUT, || in_flight() >= 2 * sessions as u64);
        assert!(arrived, "calls in flight: {:?}; last failed status: {failed_probe:?}", try_status(gw));
        if let Some(e) = failed_probe {
            eprintln!("round {round}: a status probe failed before the kill and was asked again: {e}");
        }
        signal(killed, nix::sys::signal::Signal::SIGKILL);
        for (n, client) in clients.iter_mut().enumerate() {
            let read = client.response(&json!(format!("read-{round}-{n}")));
            assert_eq!(
                first_text(&read),
                format!("waited: {round}/{n}"),
                "a read-only call is sent again and completes: {read}"
            );
            let write = client.response(&json!(format!("write-{round}-{n}")));
            match write.get("error") {
                Some(error) => {
                    let message = error["message"].as_str().unwrap_or_default();
                    assert!(message.contains("daemon restarted"), "the error says why: {write}");
                    lost += 1;
                }
                None => completed += 1,
            }
            replayed += 1;
            // Exactly once: a fresh request is answered, and no second answer
            // to either call came before it on the same connection.
            let ping = client.request(json!(format!("ping-{round}-{n}")), "ping", json!({}));
            assert!(ping.get("result").is_some(), "{ping}");
            let again: Vec<&Value> = client
                .stash
                .iter()
                .filter(|m| m.get("method").is_none())
                .filter(|m| {
                    m["id"] == json!(format!("read-{round}-{n}")) || m["id"] == json!(format!("write-{round}-{n}"))
                })
                .collect();
            assert!(again.is_empty(), "answered twice: {again:?}");
        }
        let deadline = Instant::now() + TIMEOUT;
        while daemon_pid(gw).is_none_or(|pid| pid == killed) {
            assert!(Instant::now() < deadline, "no new daemon after the kill");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(lost + completed, sessions * kills);
    assert!(lost > 0, "a 2 s call in flight at the kill cannot have completed");
    Counts { sessions, kills, replayed, completed, lost }
}

#[test]
fn calls_in_flight_when_the_daemon_is_killed_are_answered_exactly_once() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("restart"))]);
    gw.start();
    // Shims that may start a daemon: the one that notices first brings it back.
    let mut clients: Vec<Client> = (0..SESSIONS).map(|_| gw.client_with(&[])).collect();
    let counts = kill_under_calls(&gw, &mut clients, kills());
    eprintln!("restart (autostart): {counts}");
    // The last daemon (a shim started it) stops, and takes everything with it.
    let stop = gw.command(DAEMON).arg("stop").output().expect("mcp-gateway stop");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    drop(clients);
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left running: {:?}", gw.processes());
}

/// A planned restart (SIGTERM) drains: a call in flight finishes on the old
/// daemon and is answered with its result, a call sent after the SIGTERM is
/// not started there but reaches the next daemon (the shim starts it), and
/// nothing is left running.
#[test]
fn a_planned_restart_lets_calls_in_flight_finish_and_sends_new_ones_to_the_next_daemon() {
    planned_restart("drain", |client| _ = client.initialize(), |params| params);
}

/// The same for a 2026-07-28 client: no handshake for the shim to replay,
/// every request (the handed-back ones too) carries its own envelope.
#[test]
fn a_planned_restart_hands_a_modern_clients_unstarted_calls_to_the_next_daemon() {
    let discover = |client: &mut Client| {
        let discovered = client.request(json!("discover"), "server/discover", enveloped(json!({}), json!({})));
        assert_eq!(discovered["result"]["resultType"], "complete", "{discovered}");
    };
    planned_restart("drain-modern", discover, |params| enveloped(params, json!({})));
}

/// Drains a daemon under one session opened by `open`, whose requests'
/// params are `era(params)`.
fn planned_restart(tag: &str, open: impl FnOnce(&mut Client), era: impl Fn(Value) -> Value) {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server(tag))]);
    gw.start();
    let mut client = gw.client_with(&[]);
    open(&mut client);
    let call = |id: &str, tool: &str, arguments: Value| {
        let mut message = call(id, tool, arguments);
        message["params"] = era(message["params"].take());
        message
    };
    let tools = client.request(json!("list"), "tools/list", era(json!({})));
    assert!(tools.to_string().contains("fx__wait"), "{tools}");
    let old = daemon_pid(&gw).expect("a daemon answers status");
    // A call with side effects: the shim could not send it again.
    client.send(&call("in-flight", "fx__slow", json!({"seconds": 1, "message": "drained"})));
    let in_flight = || status(&gw)["backends"][0]["in_flight"].as_u64().unwrap_or(0);
    assert!(wait_until(TIMEOUT, || in_flight() >= 1), "{}", status(&gw));
    signal(old, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("shutting down")), "{}", gw.daemon_log());
    client.send(&call("after", "fx__wait", json!({"seconds": 0, "message": "next"})));
    // Also a call with side effects: the old daemon read it but did not start
    // it, and said so, so the shim sends it to the next daemon and it runs
    // (instead of being answered with "may or may not have completed").
    client.send(&call("after-write", "fx__slow", json!({"seconds": 0, "message": "once"})));
    let drained = client.response(&json!("in-flight"));
    assert!(drained.get("result").is_some(), "finished within the grace, not cut off: {drained}");
    assert_eq!(first_text(&drained), "slow done: drained", "finished within the grace, not cut off: {drained}");
    let after = client.response(&json!("after"));
    assert_eq!(first_text(&after), "waited: next", "{after}");
    let after_write = client.response(&json!("after-write"));
    assert_eq!(first_text(&after_write), "slow done: once", "{after_write}");
    assert!(
        client.stash.iter().all(|m| m["method"] != "notifications/mcp-gateway/not-started"),
        "the shim keeps the hand-back to itself: {:?}",
        client.stash
    );
    let new = daemon_pid(&gw).expect("the shim started the next daemon");
    assert_ne!(new, old);
    let stop = gw.command(DAEMON).arg("stop").output().expect("mcp-gateway stop");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    drop(client);
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left running: {:?}", gw.processes());
}

/// A drain far longer than a new daemon waits for the socket: a terminal that
/// opens while the old daemon still finishes a call is served by the next
/// daemon at once (the old one gave up the socket when it stopped accepting),
/// and the old call still finishes with its result.
#[test]
fn a_new_terminal_is_served_by_the_next_daemon_while_the_old_one_drains() {
    let gw = TestGateway::new();
    gw.write_config(&format!("shutdown_grace_secs: 30\nservers:\n  fx:\n{}", fixture_server("drain")));
    let mut gw = gw;
    gw.start();
    let mut client = gw.client_with(&[]);
    client.initialize();
    let old = daemon_pid(&gw).expect("a daemon answers status");
    client.send(&call("long", "fx__slow", json!({"seconds": 8, "message": "drained late"})));
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"].as_u64() == Some(1)), "{}", status(&gw));
    signal(old, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("shutting down")), "{}", gw.daemon_log());

    let mut newcomer = gw.client_with(&[]);
    newcomer.initialize();
    let reply = newcomer.call_tool(json!(1), "fx__slow", json!({"seconds": 0, "message": "served"}));
    assert_eq!(first_text(&reply), "slow done: served", "{reply}");
    assert!(
        gw.processes().iter().any(|p| p.pid == old),
        "served while the old daemon still drained, not after it exited: {:?}",
        gw.processes()
    );
    let new = daemon_pid(&gw).expect("the next daemon answers status");
    assert_ne!(new, old);
    let drained = client.response(&json!("long"));
    assert_eq!(first_text(&drained), "slow done: drained late", "{drained}");

    let stop = gw.command(DAEMON).arg("stop").output().expect("mcp-gateway stop");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    drop((client, newcomer));
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left running: {:?}", gw.processes());
}

/// While a stopping daemon drains, it still reads its clients: a call in
/// flight that asks its client a question (sampling) gets the answer and
/// finishes, instead of waiting out the grace for an answer nobody reads.
#[test]
fn a_call_that_asks_its_client_during_the_drain_gets_the_answer() {
    let mut gw = TestGateway::with_servers(&[("everything", everything_server())]);
    gw.start();
    let mut client = gw.client_with(&[]);
    client.initialize_with(json!({"sampling": {}}));
    client.send(&call("asks", "everything__trigger-sampling-request", json!({"prompt": "hi", "maxTokens": 5})));
    let question = loop {
        let m = client.recv_within(TIMEOUT).expect("a sampling request");
        if m["method"] == "sampling/createMessage" {
            break m;
        }
    };
    let old = daemon_pid(&gw).expect("a daemon answers status");
    signal(old, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("shutting down")), "{}", gw.daemon_log());
    client.send(&json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "answered while draining"}, "model": "m"}}));
    let reply = client.response(&json!("asks"));
    assert!(serde_json::to_string(&reply).unwrap().contains("answered while draining"), "{reply}");
    // The drained session ends; the shim goes on with the next daemon it starts.
    assert!(wait_until(TIMEOUT, || daemon_pid(&gw).is_some_and(|pid| pid != old)), "{}", gw.daemon_log());
    let stop = gw.command(DAEMON).arg("stop").output().expect("mcp-gateway stop");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    drop(client);
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left running: {:?}", gw.processes());
}

/// A client that cannot be handed back what a draining daemon did not start
/// (here: a connection with no shim, whose preamble does not say it resends)
/// gets an error for such a request, and a batch its answer as one batch;
/// the call in flight still finishes.
#[test]
fn a_client_that_does_not_resend_is_told_a_request_sent_during_the_drain_was_not_started() {
    use std::io::Write;
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("drain"))]);
    gw.start();
    let old = daemon_pid(&gw).expect("a daemon answers status");
    let (stream, mut reader) = raw_connection(&gw, &json!({"mcp_gateway_preamble": 1}));
    assert!(read_json(&mut reader)["error"].is_null(), "the session is accepted");
    let send = |message: Value| (&stream).write_all(&[serde_json::to_vec(&message).unwrap(), b"\n".to_vec()].concat());
    send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}))
    .unwrap();
    assert!(read_json(&mut reader)["result"].is_object());
    send(call("in-flight", "fx__slow", json!({"seconds": 1, "message": "drained"}))).unwrap();
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 1), "{}", status(&gw));
    signal(old, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("shutting down")), "{}", gw.daemon_log());
    send(call("after", "fx__slow", json!({"seconds": 0}))).unwrap();
    send(json!([call("batched", "fx__slow", json!({"seconds": 0}))])).unwrap();
    let mut answers = Vec::new();
    while answers.len() < 3 {
        answers.push(read_json(&mut reader));
    }
    let by_id = |id: &str| answers.iter().find(|a| a["id"] == id).cloned().unwrap_or_else(|| panic!("{answers:?}"));
    assert_eq!(first_text(&by_id("in-flight")), "slow done: drained", "{answers:?}");
    let after = by_id("after");
    assert!(after["error"]["message"].as_str().is_some_and(|m| m.contains("restarting")), "{after}");
    let batch = answers.iter().find(|a| a.is_array()).unwrap_or_else(|| panic!("a batch answer: {answers:?}"));
    assert_eq!(batch[0]["id"], "batched", "{batch}");
    assert!(batch[0]["error"]["message"].as_str().is_some_and(|m| m.contains("restarting")), "{batch}");
    drop((stream, reader));
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left running: {:?}", gw.processes());
}
