//! Remote backends over Streamable HTTP: real server-everything in its
//! streamableHttp mode on loopback.

use crate::common::*;
use serde_json::json;

/// server-everything over Streamable HTTP on `port`, ready to accept.
fn remote_everything(gw: &TestGateway, port: u16) -> OwnedChild {
    everything_over_http(gw, port, "streamableHttp")
}

#[test]
fn a_remote_server_routes_progress_and_sampling_exactly_and_survives_a_restart() {
    let port = free_port();
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "servers:\n  remote:\n    url: \"http://127.0.0.1:{port}/mcp\"\n    headers: {{ X-Test-Token: \"${{REMOTE_TOKEN}}\" }}\n"
    ));
    gw.daemon_env.push(("REMOTE_TOKEN".into(), "remote-secret".into()));
    let server = remote_everything(&gw, port);
    gw.start();
    let mut busy = gw.client();
    let mut asker = gw.client();
    busy.initialize_with(json!({"sampling": {}}));
    asker.initialize_with(json!({"sampling": {}}));
    // The server adds its sampling tools once initialized and says so on its
    // GET stream; the gateway re-lists.
    let mut names = Vec::new();
    assert!(
        wait_until(TIMEOUT, || {
            names = asker.tool_names();
            names.contains(&"remote__trigger-sampling-request".to_string())
        }),
        "{names:?}\n{}",
        gw.daemon_log()
    );
    assert!(names.contains(&"remote__echo".to_string()), "{names:?}");
    assert_eq!(
        first_text(&asker.call_tool(json!(1), "remote__echo", json!({"message": "over the wire"}))),
        "Echo: over the wire"
    );

    // Progress comes back to its caller with its own token.
    busy.send(&json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{
        "name":"remote__trigger-long-running-operation","arguments":{"duration":3,"steps":3},"_meta":{"progressToken":"mine"}}}));
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 1));
    // With another session's call in flight, a sampling request still reaches
    // exactly its caller: it arrives on the caller's own POST stream.
    asker.send(&json!({"jsonrpc":"2.0","id":"ask","method":"tools/call","params":{
        "name":"remote__trigger-sampling-request","arguments":{"prompt":"which?","maxTokens":5}}}));
    let mut seen = Vec::new();
    let request = loop {
        let m = asker
            .recv_within(TIMEOUT)
            .unwrap_or_else(|| panic!("no sampling request; got {seen:?}\n{}", gw.daemon_log()));
        if m["method"] == "sampling/createMessage" {
            break m;
        }
        seen.push(m);
    };
    asker.send(&json!({"jsonrpc":"2.0","id":request["id"],"result":{"role":"assistant","content":{"type":"text","text":"answer-for-asker"},"model":"m"}}));
    let reply = asker.response(&json!("ask"));
    assert!(serde_json::to_string(&reply).unwrap().contains("answer-for-asker"), "{reply}");
    let long = busy.response(&json!("long"));
    assert!(long.get("result").is_some(), "{long}");
    let progress: Vec<_> = busy.stash.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(
        !progress.is_empty() && progress.iter().all(|p| p["params"]["progressToken"] == "mine"),
        "{:?}",
        busy.stash
    );
    assert!(busy.stash.iter().all(|m| m["method"] != "sampling/createMessage"), "the busy session was not asked");

    // The server restarts (and forgets its sessions): the next call still works.
    drop(server);
    let _server = remote_everything(&gw, port);
    let again = asker.call_tool(json!(2), "remote__echo", json!({"message": "after restart"}));
    assert_eq!(first_text(&again), "Echo: after restart", "{again}");
    assert!(gw.daemon_log().contains("initialized again"));
    assert!(!gw.daemon_log().contains("remote-secret"), "header values never reach the log");
}

/// server-everything in its `sse` mode speaks only the 2024-11-05 HTTP+SSE
/// transport: a POST to its stream URL is a 404, so the gateway opens the
/// event stream, learns the endpoint and talks through that, sampling included.
#[test]
fn a_server_of_the_2024_11_05_http_sse_era_is_reached_through_its_event_stream() {
    let port = free_port();
    let mut gw = TestGateway::new();
    gw.write_config(&format!("servers:\n  old:\n    url: \"http://127.0.0.1:{port}/sse\"\n"));
    let server = everything_over_http(&gw, port, "sse");
    gw.start();
    let mut client = gw.client();
    client.initialize_with(json!({"sampling": {}}));
    let reply = client.call_tool(json!(1), "old__echo", json!({"message": "through the old transport"}));
    assert_eq!(first_text(&reply), "Echo: through the old transport", "{reply}\n{}", gw.daemon_log());
    assert!(gw.daemon_log().contains("2024-11-05 HTTP+SSE"), "{}", gw.daemon_log());

    // A server request on the one shared stream reaches the only caller.
    let mut names = Vec::new();
    assert!(
        wait_until(TIMEOUT, || {
            names = client.tool_names();
            names.contains(&"old__trigger-sampling-request".to_string())
        }),
        "{names:?}"
    );
    client.send(&json!({"jsonrpc":"2.0","id":"ask","method":"tools/call","params":{
        "name":"old__trigger-sampling-request","arguments":{"prompt":"which?","maxTokens":5}}}));
    let request = loop {
        let m = client.recv_within(TIMEOUT).unwrap_or_else(|| panic!("no sampling request\n{}", gw.daemon_log()));
        if m["method"] == "sampling/createMessage" {
            break m;
        }
    };
    client.send(&json!({"jsonrpc":"2.0","id":request["id"],"result":{"role":"assistant","content":{"type":"text","text":"old-answer"},"model":"m"}}));
    let reply = client.response(&json!("ask"));
    assert!(serde_json::to_string(&reply).unwrap().contains("old-answer"), "{reply}");

    // The stream is the session: when the server goes away the instance ends,
    // and the next call after the server is back opens a new stream.
    drop(server);
    assert!(
        wait_until(TIMEOUT, || !matches!(status(&gw)["backends"][0]["state"].as_str(), Some("idle" | "busy"))),
        "{}",
        status(&gw)
    );
    let _server = everything_over_http(&gw, port, "sse");
    let mut reply = json!(null);
    assert!(
        wait_until(TIMEOUT, || {
            reply = client.call_tool(json!("again"), "old__echo", json!({"message": "back"}));
            reply.get("result").is_some()
        }),
        "{reply}\n{}",
        gw.daemon_log()
    );
    assert_eq!(first_text(&reply), "Echo: back");
}

#[test]
fn a_remote_server_that_wants_a_login_says_which_command_to_run() {
    let port = free_port();
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "servers:\n  remote:\n    url: \"http://127.0.0.1:{port}/mcp\"\n  \
         modern:\n    url: \"http://127.0.0.1:{port}/mcp\"\n    protocol: modern\n"
    ));
    let fixture = format!("{}/tests/fixtures/unauthorized_server.py", env!("CARGO_MANIFEST_DIR"));
    let child = gw
        .command(deps().python())
        .args([fixture.as_str(), &port.to_string()])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn the 401 server");
    let _server = OwnedChild(child);
    assert!(wait_until(TIMEOUT, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert!(client.tool_names().iter().all(|n| !n.starts_with("remote__")));
    let reply = client.call_tool(json!(1), "remote__anything", json!({}));
    let text = serde_json::to_string(&reply).unwrap();
    assert!(
        text.contains("needs a login") && text.contains("run `mcp-gateway auth login remote`"),
        "{reply}\n{}",
        gw.daemon_log()
    );
    assert!(!text.contains("answered `initialize` with an error"), "{reply}");
    // A tool error the model can relay, not a protocol failure.
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert!(reply.get("error").is_none(), "{reply}");

    // status and doctor name the server and the command.
    let status = gw.command(DAEMON).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let logins = status["logins"].as_array().unwrap();
    let remote = logins.iter().find(|l| l["server"] == "remote").unwrap_or_else(|| panic!("{status}"));
    assert_eq!(remote, &json!({"server": "remote", "state": "logged_out", "login": "mcp-gateway auth login remote"}));
    let schema: serde_json::Value = serde_json::from_str(include_str!("../golden/status-schema.json")).unwrap();
    crate::cli::conforms(&status["logins"], &schema["logins"], "status.logins");
    let table = gw.command(DAEMON).arg("status").output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("Logins needed") && table.contains("mcp-gateway auth login remote"), "{table}");
    let doctor = gw.command(DAEMON).arg("doctor").output().unwrap();
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.contains("`remote` needs a login") && doctor.contains("mcp-gateway auth login remote"), "{doctor}");
    // A server told to speak the 2026 era says the same, not that it is of another era.
    let reply = client.call_tool(json!(2), "modern__anything", json!({}));
    let text = serde_json::to_string(&reply).unwrap();
    assert!(text.contains("run `mcp-gateway auth login modern`"), "{reply}\n{}", gw.daemon_log());
    assert_eq!(reply["result"]["isError"], true, "{reply}");

    let status = gw.command(DAEMON).args(["auth", "status", "--json"]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["servers"][0]["state"], "logged_out", "{status}");
    assert_eq!(status["servers"][0]["login"], "mcp-gateway auth login remote", "{status}");
    assert_eq!(status["servers"][1]["server"], "modern", "{status}");
    // Logging out of nothing is not an error.
    let logout = gw.command(DAEMON).args(["auth", "logout", "remote"]).output().unwrap();
    assert!(String::from_utf8_lossy(&logout.stdout).contains("no login to forget"), "{logout:?}");
}
