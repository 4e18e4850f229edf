//! Hot configuration: edits to the config file apply to running sessions
//! without interrupting them, and a broken edit changes nothing.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

fn config_with(servers: &[(&str, String)]) -> String {
    let mut yaml = String::from("servers:\n");
    for (name, body) in servers {
        yaml.push_str(&format!("  {name}:\n{body}"));
    }
    yaml
}

/// Writes the config the way editors do: a new file renamed over the old one.
fn save(gw: &TestGateway, text: &str) {
    let tmp = gw.home.join(".config.yaml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, gw.home.join("config.yaml")).unwrap();
}

fn saw_list_changed(client: &mut Client) -> bool {
    client.gather(Duration::from_millis(20));
    client.stash.iter().any(|m| m["method"] == "notifications/tools/list_changed")
}

#[test]
fn a_server_added_mid_session_is_usable_within_two_seconds_and_removal_drains() {
    let mut gw = TestGateway::with_servers(&[("a", fixture_server("a"))]);
    gw.start();
    let mut one = gw.client();
    let mut two = gw.client();
    one.initialize();
    two.initialize();
    assert!(!one.tool_names().contains(&"b__echo".to_string()));

    save(&gw, &config_with(&[("a", fixture_server("a")), ("b", fixture_server("b"))]));
    let written = Instant::now();
    let mut n = 0;
    let usable = wait_until(Duration::from_secs(2), || {
        n += 1;
        let reply = one.call_tool(json!(format!("try{n}")), "b__echo", json!({"message": "new"}));
        reply.get("result").is_some()
    });
    assert!(usable, "b__echo not usable {:?} after the write:\n{}", written.elapsed(), gw.daemon_log());
    assert!(wait_until(TIMEOUT, || saw_list_changed(&mut two)), "the other session is told");
    assert!(two.tool_names().contains(&"b__echo".to_string()));

    // Removing b: the call in flight completes, the next one gets a clear error.
    two.send(&json!({"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"b__slow","arguments":{"seconds":1,"message":"drained"}}}));
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["server"] == "b" && b["in_flight"] == 1)));
    save(&gw, &config_with(&[("a", fixture_server("a"))]));
    assert_eq!(first_text(&two.response(&json!("slow"))), "slow done: drained");
    assert!(wait_until(TIMEOUT, || {
        let reply = one.call_tool(json!("gone"), "b__echo", json!({"message": "x"}));
        reply["error"]["message"].as_str().is_some_and(|m| m.contains("Unknown tool: `b__echo`"))
    }));
    assert!(wait_until(TIMEOUT, || gw.count("fixture_server.py b") == 0), "b stopped after draining");
    // Nothing was interrupted: both sessions still work.
    for (client, id) in [(&mut one, 1), (&mut two, 2)] {
        assert_eq!(first_text(&client.call_tool(json!(id), "a__echo", json!({"message": "still"}))), "a: still");
    }
}

#[test]
fn a_changed_definition_gets_a_new_instance_while_the_old_one_drains() {
    let mut gw = TestGateway::with_servers(&[("s", fixture_server("old-def"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    client.send(&json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{"name":"s__slow","arguments":{"seconds":1,"message":"old"}}}));
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 1));
    save(&gw, &config_with(&[("s", fixture_server("new-def"))]));
    assert!(wait_until(TIMEOUT, || {
        first_text(&client.call_tool(
            json!(format!("e{}", Instant::now().elapsed().as_nanos())),
            "s__echo",
            json!({"message": "x"}),
        )) == "new-def: x"
    }));
    assert_eq!(first_text(&client.response(&json!("long"))), "slow done: old");
    assert!(wait_until(TIMEOUT, || gw.count("old-def") == 0), "the old instance stopped");
    assert_eq!(gw.count("new-def"), 1);
}

#[test]
fn a_broken_edit_keeps_the_last_good_config_and_says_why() {
    let mut gw = TestGateway::with_servers(&[("a", fixture_server("a"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    save(&gw, "servers:\n  a:\n    command: [unclosed\n");
    let path = gw.home.join("config.yaml").display().to_string();
    let mut status_error = Value::Null;
    assert!(
        wait_until(TIMEOUT, || {
            status_error = status(&gw)["config_error"].clone();
            status_error.as_str().is_some_and(|e| e.starts_with(&format!("{path}:3:")))
        }),
        "{status_error}"
    );
    assert_eq!(first_text(&client.call_tool(json!(1), "a__echo", json!({"message": "ok"}))), "a: ok");
    assert!(gw.daemon_log().contains("the last good one stays in force"));
    save(&gw, &config_with(&[("a", fixture_server("a"))]));
    assert!(wait_until(TIMEOUT, || status(&gw)["config_error"].is_null()));
}

#[test]
fn sighup_reloads_too() {
    let mut gw = TestGateway::with_servers(&[("a", fixture_server("a"))]);
    // The watcher may apply the edit first; SIGHUP must be handled either way.
    gw.start();
    let mut client = gw.client();
    client.initialize();
    save(&gw, &config_with(&[("a", fixture_server("a")), ("c", fixture_server("c"))]));
    signal(gw.daemon.as_ref().unwrap().id() as i32, nix::sys::signal::Signal::SIGHUP);
    assert!(wait_until(TIMEOUT, || client.tool_names().contains(&"c__echo".to_string())));
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("SIGHUP received")));
}
