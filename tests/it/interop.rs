//! Interop with real MCP parts: server-everything and server-memory from npm (on
//! Node 22), and the Python `mcp` SDK as the client, all pinned and installed by
//! tests/support/deps.sh.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

fn everything_gateway() -> TestGateway {
    TestGateway::with_servers(&[("everything", everything_server())])
}

/// server-everything processes of this test (the entry script is on their command line).
fn everything_count(gw: &TestGateway) -> usize {
    gw.count("server-everything")
}

#[test]
fn five_python_sessions_share_one_server_everything() {
    let mut gw = everything_gateway();
    gw.start();
    let mut child: Child = gw
        .command(deps().python())
        .arg(interop_script("sharing.py"))
        .args(["--shim", SHIM, "--socket", gw.socket.to_str().unwrap(), "--sessions", "5", "--calls", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Watch the process table for the whole run.
    let mut most = 0;
    let status = loop {
        most = most.max(everything_count(&gw));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "sharing.py failed:\n{stdout}\n{stderr}\n{}", gw.daemon_log());
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["sessions"], 5);
    assert_eq!(result["calls"], 500);
    assert_eq!(most, 1, "exactly one server-everything process throughout");
    assert_eq!(everything_count(&gw), 1);
    assert!(gw.stop().success());
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left after SIGTERM: {:?}", gw.processes());
}

#[test]
fn python_client_in_legacy_and_auto_mode() {
    let mut gw = everything_gateway();
    gw.start();
    for (mode, era) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let summary = run_client_script(&gw, "basic.py", &["--mode", mode]);
        assert_eq!(summary["server"], "mcp-gateway", "{mode}: {summary}");
        // auto probes `server/discover`: the gateway answers it (the modern era,
        // in front of a handshake-era server) rather than let the client wait
        // out its 10 s probe timeout.
        assert_eq!(summary["protocolVersion"], era, "{mode}: {summary}");
        assert!(summary["connectSeconds"].as_f64().unwrap() < 5.0, "{mode}: no probe stall: {summary}");
        assert!(summary["tools"].as_u64().unwrap() >= 5, "{mode}: {summary}");
        assert!(summary["echo"].as_str().unwrap().contains("hello"), "{mode}: {summary}");
        assert!(summary["prompts"].as_u64().unwrap() >= 1, "{mode}: {summary}");
        assert!(summary["resources"].as_u64().unwrap() >= 1, "{mode}: {summary}");
    }
    assert_eq!(everything_count(&gw), 1);
}

#[test]
fn daemon_killed_mid_session_the_client_carries_on() {
    let gw = everything_gateway();
    let flag = gw.dir.path().join("restart");
    let mut child = gw
        .command(deps().python())
        .arg(interop_script("daemon_restart.py"))
        .args(["--shim", SHIM, "--socket", gw.socket.to_str().unwrap(), "--pidfile", flag.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.trim() == "READY");
    assert!(ready, "the client never got going:\n{}", gw.daemon_log());
    let daemons = || -> Vec<i32> {
        gw.processes().into_iter().filter(|p| p.cmdline.contains("mcp-gateway serve")).map(|p| p.pid).collect()
    };
    let first = daemons();
    assert_eq!(first.len(), 1, "the shim started one daemon");
    signal(first[0], nix::sys::signal::Signal::SIGKILL);
    std::fs::write(format!("{}.go", flag.display()), b"").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "client failed after the daemon died:\n{rest:?}\n{stderr}\n{}", gw.daemon_log());
    assert!(rest.last().is_some_and(|l| l.contains("\"ok\": true") || l.contains("\"ok\":true")), "{rest:?}");
    let second = daemons();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0], first[0], "a new daemon serves the client");
    let out = gw.command(DAEMON).arg("stop").output().unwrap();
    assert!(out.status.success());
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "{:?}", gw.processes());
}

#[test]
fn sigterm_stops_the_whole_npx_process_tree() {
    let d = deps();
    let mut gw = TestGateway::with_servers(&[(
        "everything",
        format!(
            "    command: npx\n    args: [\"--no-install\", \"@modelcontextprotocol/server-everything\", \"stdio\"]\n    cwd: {:?}\n",
            d.get("MCP_TEST_NPM_DIR")
        ),
    )]);
    gw.extra_env.push(("PATH".into(), d.path()));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "everything__echo", json!({"message": "via npx"}));
    assert!(first_text(&reply).contains("via npx"), "{reply}");
    let tree: Vec<Proc> = gw
        .processes()
        .into_iter()
        .filter(|p| !p.cmdline.contains("mcp-gateway serve") && !p.cmdline.contains("mcp-gateway-connect"))
        .collect();
    assert!(tree.len() >= 2, "npx and node at least: {tree:?}");
    drop(client);
    assert!(gw.stop().success());
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "survived the daemon: {:?}", gw.processes());
    assert!(!gw.socket.exists());
}

#[test]
fn a_server_is_started_only_on_first_use_and_its_listing_is_cached() {
    let mut gw = everything_gateway();
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert_eq!(everything_count(&gw), 0, "not started at daemon or session start");
    let names = client.tool_names();
    assert!(names.contains(&"everything__echo".to_string()), "{names:?}");
    assert_eq!(everything_count(&gw), 1, "the first-ever listing starts it");
    drop(client);
    assert!(gw.stop().success());
    assert!(wait_until(TIMEOUT, || everything_count(&gw) == 0));

    gw.start();
    let mut client = gw.client();
    let init = client.initialize();
    assert!(init["result"]["capabilities"]["tools"].is_object());
    assert_eq!(client.tool_names(), names, "same names, from the cache");
    let prompts = client.request(json!("p"), "prompts/list", json!({}));
    assert!(!prompts["result"]["prompts"].as_array().unwrap().is_empty());
    assert_eq!(everything_count(&gw), 0, "listing a known server does not start it");
    let reply = client.call_tool(json!(2), "everything__echo", json!({"message": "now"}));
    assert!(first_text(&reply).contains("now"));
    assert_eq!(everything_count(&gw), 1);
}

#[test]
fn two_real_servers_side_by_side() {
    let d = deps();
    let memory_file = tempfile::NamedTempFile::new().unwrap();
    let mut gw = TestGateway::with_servers(&[
        ("everything", everything_server()),
        (
            "memory",
            format!(
                "    command: {}\n    args: [{:?}]\n    env: {{ MEMORY_FILE_PATH: {:?} }}\n",
                d.node(),
                d.memory_js(),
                memory_file.path().display().to_string()
            ),
        ),
    ]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let names = client.tool_names();
    assert!(names.iter().any(|n| n == "everything__echo"), "{names:?}");
    assert!(names.iter().any(|n| n == "memory__create_entities"), "{names:?}");
    let first_memory = names.iter().position(|n| n.starts_with("memory__")).unwrap();
    assert!(names[..first_memory].iter().all(|n| n.starts_with("everything__")), "config order: {names:?}");

    let created = client.call_tool(
        json!(1),
        "memory__create_entities",
        json!({"entities": [{"name": "gateway", "entityType": "project", "observations": ["shares servers"]}]}),
    );
    assert!(created.get("result").is_some(), "{created}");
    let graph = client.call_tool(json!(2), "memory__read_graph", json!({}));
    assert!(serde_json::to_string(&graph).unwrap().contains("shares servers"), "{graph}");

    // Resources and prompts route to the server that owns them.
    let resources = client.request(json!(3), "resources/list", json!({}));
    let uri = resources["result"]["resources"][0]["uri"].as_str().unwrap().to_string();
    let read = client.request(json!(4), "resources/read", json!({"uri": uri}));
    assert_eq!(read["result"]["contents"][0]["uri"], uri, "{read}");
    let prompts = client.request(json!(5), "prompts/list", json!({}));
    let prompt = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p.get("arguments").is_none_or(|a| a.as_array().is_none_or(|a| a.iter().all(|x| x["required"] != true)))
        })
        .unwrap_or_else(|| panic!("a prompt without required arguments in {prompts}"))
        .clone();
    let got = client.request(json!(6), "prompts/get", json!({"name": prompt["name"]}));
    assert!(got["result"]["messages"].is_array(), "{got}");

    // Completion routes by the prompt's exposed name.
    let completion = client.request(
        json!(7),
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "everything__completable-prompt"},
               "argument": {"name": "department", "value": "Eng"}}),
    );
    assert_eq!(completion["result"]["completion"]["values"], json!(["Engineering"]), "{completion}");

    // A URI that only a template matches goes to the template's server.
    let templates = client.request(json!(8), "resources/templates/list", json!({}));
    let template = templates["result"]["resourceTemplates"][0]["uriTemplate"].as_str().unwrap().to_string();
    let uri = template.split('{').next().unwrap().to_string() + "1";
    let read = client.request(json!(9), "resources/read", json!({"uri": uri}));
    assert_eq!(read["result"]["contents"][0]["uri"], uri, "{template} → {read}");
}

#[test]
fn progress_reaches_only_the_caller_with_its_own_token() {
    let mut gw = everything_gateway();
    gw.start();
    let mut caller = gw.client();
    let mut bystander = gw.client();
    caller.initialize();
    bystander.initialize();
    let names = caller.tool_names();
    let long_running = names
        .iter()
        .find(|n| n.contains("long-running") || n.contains("longRunning"))
        .unwrap_or_else(|| panic!("no long-running tool in {names:?}"))
        .clone();
    // Both sessions use the same progress token; only the caller may see progress.
    bystander.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"everything__echo","arguments":{"message":"b"},"_meta":{"progressToken":"tok"}}}));
    let reply = caller.request(
        json!(1),
        "tools/call",
        json!({"name": long_running, "arguments": {"duration": 1, "steps": 3}, "_meta": {"progressToken": "tok"}}),
    );
    assert!(reply.get("result").is_some(), "{reply}");
    let progress: Vec<&Value> = caller.stash.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(!progress.is_empty(), "caller got progress: {:?}", caller.stash);
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "tok"), "{progress:?}");
    bystander.response(&json!(1));
    while let Some(m) = bystander.recv_within(Duration::from_millis(300)) {
        assert_ne!(m["method"], "notifications/progress", "progress leaked to another session: {m}");
    }
}
