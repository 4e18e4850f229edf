//! Self-healing: restarts with backoff, the circuit breaker, health pings, and
//! no backend process left behind.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

const FAST_SUPERVISION: &str = "supervision:\n  backoff_base: 100ms\n  backoff_cap: 1s\n  breaker_failures: 4\n  breaker_window: 60s\n  breaker_cooldown: 2s\n";

fn error_message(reply: &Value) -> String {
    reply["error"]["message"].as_str().unwrap_or_else(|| panic!("expected an error: {reply}")).to_string()
}

#[test]
fn a_server_that_never_starts_backs_off_then_opens_the_breaker_then_recovers_after_a_fix() {
    let gw = TestGateway::new();
    gw.write_config(&format!("{FAST_SUPERVISION}servers:\n  bad:\n{}", fixture_server("crash-on-start")));
    let mut gw = gw;
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let call = |client: &mut Client, id: usize| {
        error_message(&client.call_tool(json!(id), "bad__echo", json!({"message": "x"})))
    };

    // The first failure names the server, the exit status and the last stderr lines.
    let first = call(&mut client, 1);
    assert!(first.contains("`bad`") && first.contains("exit code 7") && first.contains("refusing to start"), "{first}");
    // Failures in a row back off, then the breaker opens and calls fail fast.
    let mut seen_backoff = false;
    let mut opened = None;
    for id in 2..400 {
        let message = call(&mut client, id);
        seen_backoff |= message.contains("the next attempt is in");
        if message.contains("refused for now") {
            opened = Some(message);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let opened = opened.expect("the breaker opened");
    assert!(seen_backoff, "failures in a row were spaced out first");
    assert!(opened.contains("retried in") && opened.contains("refusing to start"), "{opened}");
    let row = status(&gw)["backends"][0].clone();
    assert_eq!(row["state"], "open", "{row}");
    assert!(row["next_retry_secs"].as_f64().is_some_and(|s| s > 0.0), "{row}");
    assert!(row["restarts"].as_u64().unwrap() >= 3, "{row}");

    // The fix: a config edit. The new definition starts at once.
    gw.write_config(&format!("{FAST_SUPERVISION}servers:\n  bad:\n{}", fixture_server("fixed")));
    assert!(wait_until(TIMEOUT, || {
        let reply = client.call_tool(json!("fixed"), "bad__echo", json!({"message": "ok"}));
        reply.get("result").is_some_and(|_| first_text(&reply) == "fixed: ok")
    }));
}

#[test]
fn a_backend_killed_mid_call_fails_that_call_and_serves_the_next() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("victim"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    client.send(&json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":30}}}));
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 1));
    let pid = status(&gw)["backends"][0]["pid"].as_i64().unwrap() as i32;
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    let reply = client.response(&json!("long"));
    let message = error_message(&reply);
    assert!(message.contains("`fx`") && message.contains("SIGKILL"), "{message}");
    let next = client.call_tool(json!(2), "fx__echo", json!({"message": "again"}));
    assert_eq!(first_text(&next), "victim: again");
    assert_eq!(status(&gw)["backends"][0]["restarts"], 1);
}

#[test]
fn an_idle_backend_that_stops_answering_pings_is_restarted() {
    let gw = TestGateway::new();
    gw.write_config(&format!(
        "supervision:\n  health_interval: 200ms\n  health_timeout: 300ms\nservers:\n  fx:\n{}",
        fixture_server("deaf")
    ));
    let mut gw = gw;
    gw.start();
    let mut client = gw.client();
    client.initialize();
    client.call_tool(json!(1), "fx__echo", json!({"message": "x"}));
    let first_pid = status(&gw)["backends"][0]["pid"].clone();
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("did not answer a health ping")), "{}", gw.daemon_log());
    assert!(wait_until(TIMEOUT, || gw.count("fixture_server.py deaf") == 0), "the wedged instance was killed");
    assert_eq!(first_text(&client.call_tool(json!(2), "fx__echo", json!({"message": "y"}))), "deaf: y");
    assert_ne!(status(&gw)["backends"][0]["pid"], first_pid);
}

#[test]
fn fifty_sessions_three_backends_and_sigterm_leave_no_process_behind() {
    let d = deps();
    let mut gw = TestGateway::with_servers(&[
        ("fx", fixture_server("orphan-check")),
        ("everything", everything_server()),
        (
            "viaNpx",
            format!(
                "    command: npx\n    args: [\"--no-install\", \"@modelcontextprotocol/server-everything\", \"stdio\"]\n    cwd: {:?}\n",
                d.get("MCP_TEST_NPM_DIR")
            ),
        ),
    ]);
    gw.extra_env.push(("PATH".into(), d.path()));
    gw.start();
    let mut clients: Vec<Client> = (0..50).map(|_| gw.client()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.initialize();
        let tool = ["fx__echo", "everything__echo", "viaNpx__echo"][i % 3];
        let reply = client.call_tool(json!(i), tool, json!({"message": format!("m{i}")}));
        assert!(first_text(&reply).contains(&format!("m{i}")), "{reply}");
    }
    let backends: Vec<Proc> = gw
        .processes()
        .into_iter()
        .filter(|p| !p.cmdline.contains("mcp-gateway serve") && !p.cmdline.contains("mcp-gateway-connect"))
        .collect();
    let ps = std::process::Command::new("sh")
        .args(["-c", "ps -eo pid,ppid,stat,cmd | grep -i -e everything -e npm | grep -v grep"])
        .output()
        .unwrap();
    assert!(
        backends.len() >= 4,
        "fixture, node, npx and its node at least: {backends:?}\n{}",
        String::from_utf8_lossy(&ps.stdout)
    );
    assert_eq!(status(&gw)["sessions"].as_array().unwrap().len(), 50);
    assert!(gw.stop().success());
    drop(clients);
    assert!(
        wait_until(TIMEOUT, || gw.processes().iter().all(|p| p.cmdline.contains("mcp-gateway-connect"))),
        "left behind: {:?}",
        gw.processes()
    );
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "{:?}", gw.processes());
}

/// A caller that gives up while its backend is still starting (it cancels, or
/// disconnects) must not leave that process running unowned: the next caller
/// would start a second one, and the first would live as long as the daemon.
#[test]
fn a_start_abandoned_by_its_caller_leaves_no_process_behind() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fixture_server.py");
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "servers:\n  slow:\n    command: sh\n    args: [\"-c\", \"sleep 1; exec python3 {script} slowstart\"]\n"
    ));
    gw.start();
    for (n, leave) in ["cancel", "disconnect"].into_iter().enumerate() {
        let mut first = gw.client();
        first.initialize();
        first.send(&json!({"jsonrpc":"2.0","id":"start","method":"tools/call","params":{"name":"slow__echo","arguments":{"message":"x"}}}));
        assert!(wait_until(TIMEOUT, || gw.count("slowstart") >= 1), "the start began");
        match leave {
            "cancel" => {
                first.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"start"}}))
            }
            _ => drop(first),
        }
        // The start belongs to the server's first listing, which may go on when its caller
        // leaves (a slow server is listed for every session once it answers): it must end
        // stopped, or as the one instance the pool tracks, never as a process nobody owns.
        let tracked = || status(&gw)["backends"].as_array()?.iter().find(|b| b["server"] == "slow")?["pid"].as_i64();
        let owned = || {
            let running: Vec<i64> =
                gw.processes().iter().filter(|p| p.cmdline.contains("slowstart")).map(|p| i64::from(p.pid)).collect();
            running.is_empty() || (running.len() == 1 && tracked() == Some(running[0]))
        };
        assert!(wait_until(TIMEOUT, owned), "{leave}: an abandoned start nobody owns: {:?}", gw.processes());
        let mut second = gw.client();
        second.initialize();
        let reply = second.call_tool(json!(n), "slow__echo", json!({"message": "served"}));
        assert!(first_text(&reply).contains("served"), "{leave}: {reply}");
        assert_eq!(gw.count("slowstart"), 1, "{leave}: one instance: {:?}", gw.processes());
        // Stop it for the next round (its listing is cached: the next call starts anew).
        let pid = status(&gw)["backends"][0]["pid"].as_i64().unwrap();
        signal(pid as i32, nix::sys::signal::Signal::SIGKILL);
        assert!(wait_until(TIMEOUT, || gw.count("slowstart") == 0));
    }
}

/// A backend that proved itself (it served a call) and then crashed restarts
/// at once, like after its first crash, however many crashes came before: the
/// backoff (2 s here) is for starts that come to nothing. Before, the second
/// crash of a working server made the next call fail with "backing off".
#[test]
fn a_crash_after_a_healthy_run_restarts_at_once_again() {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "supervision:\n  backoff_base: 2s\n  backoff_cap: 10s\n  breaker_failures: 10\nservers:\n  fx:\n{}",
        fixture_server("healthy")
    ));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    for round in 0..3 {
        let reply = client.call_tool(json!(format!("echo-{round}")), "fx__echo", json!({"message": "up"}));
        assert_eq!(first_text(&reply), "healthy: up", "round {round}: {reply}");
        let crashed = client.call_tool(json!(format!("crash-{round}")), "fx__crash", json!({}));
        assert!(crashed.get("error").is_some(), "{crashed}");
        // The exit is recorded (so the next call is no race with it) before asking again.
        assert!(
            wait_until(TIMEOUT, || {
                let backend = &status(&gw)["backends"][0];
                backend["pid"].is_null() && backend["last_exit"].as_str().is_some_and(|e| e.contains("exit code 3"))
            }),
            "{}",
            status(&gw)
        );
        let state = status(&gw)["backends"][0]["state"].clone();
        assert_ne!(state, "backing off", "round {round}: {}", status(&gw));
    }
    let reply = client.call_tool(json!("last"), "fx__echo", json!({"message": "again"}));
    assert_eq!(first_text(&reply), "healthy: again", "{reply}");
}

/// A start that another session waits for goes on when the session that
/// triggered it leaves: the waiting one is served by that one start, not
/// by a second (issue 19: the second client paid the start twice).
#[test]
fn a_start_another_session_waits_for_goes_on_when_its_caller_leaves() {
    let mut gw = TestGateway::with_servers(&[("slow", fixture_server("slowstart-2"))]);
    gw.start();
    let slow = |gw: &TestGateway| {
        status(gw)["backends"].as_array().unwrap().iter().find(|b| b["server"] == "slow").cloned().unwrap()
    };
    // Listed once and stopped: the next call starts it on the call's own path
    // (a first listing's start is the listing's, whoever asked).
    let mut warm = gw.client();
    warm.initialize();
    let reply = warm.call_tool(json!(0), "slow__echo", json!({"message": "warm"}));
    assert!(first_text(&reply).contains("warm"), "{reply}");
    drop(warm);
    let pid = slow(&gw)["pid"].as_i64().unwrap();
    signal(pid as i32, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_until(TIMEOUT, || gw.count("slowstart") == 0));
    let before = slow(&gw)["restarts"].as_u64().unwrap();

    let mut first = gw.client();
    first.initialize();
    first.send(&json!({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"slow__echo","arguments":{"message":"first"}}}));
    assert!(wait_until(TIMEOUT, || gw.count("slowstart") >= 1), "the start began");
    let mut second = gw.client();
    second.initialize();
    second.send(&json!({"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"slow__echo","arguments":{"message":"second"}}}));
    // The caller that triggered the start leaves while it is under way.
    drop(first);
    let reply = second.response(&json!("b"));
    assert!(first_text(&reply).contains("second"), "{reply}");
    let after = slow(&gw);
    assert_eq!(after["restarts"].as_u64().unwrap(), before + 1, "one start served the waiting session: {after:#}");
    assert_eq!(gw.count("slowstart"), 1, "{:?}", gw.processes());
}
