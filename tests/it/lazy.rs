//! Lazy discovery and scope protection: the meta-tools, their size, search
//! quality, pass-through of results, allow/deny lists, and installs that change
//! the global config only when confirmed.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

fn started(mut gw: TestGateway) -> TestGateway {
    gw.start();
    gw
}

/// [`started`] with the daemon in this process (for tests that need nothing of the binary).
fn in_process(mut gw: TestGateway) -> TestGateway {
    gw.start_in_process();
    gw
}

fn tools_list_bytes(client: &mut Client) -> (usize, Vec<String>) {
    let reply = client.request(json!("tl"), "tools/list", json!({}));
    let bytes = serde_json::to_vec(&reply["result"]).unwrap().len();
    let names =
        reply["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    (bytes, names)
}

fn meta(client: &mut Client, id: &str, tool: &str, arguments: Value) -> Value {
    client.call_tool(json!(id), tool, arguments)
}

#[test]
fn fifteen_servers_and_300_tools_cost_under_800_tokens_in_lazy_mode() {
    let gw = TestGateway::new();
    let mut yaml = String::from("tools: lazy\nservers:\n");
    for i in 0..15 {
        yaml.push_str(&format!("  svc{i}:\n{}", fixture_server(&format!("many-{i}"))));
    }
    gw.write_config(&yaml);
    let gw = started(gw);
    let mut client = gw.client();
    client.initialize();
    let (bytes, names) = tools_list_bytes(&mut client);
    assert!(names.iter().all(|n| n.starts_with("mcpgw_")), "{names:?}");
    assert!(bytes / 4 < 800, "the meta-tools cost {bytes} bytes, about {} tokens", bytes / 4);
    // Behind them, every tool is reachable.
    let servers = first_text(&meta(&mut client, "s", "mcpgw_servers", json!({}))).to_string();
    assert_eq!(servers.lines().count(), 15, "{servers}");
    assert!(servers.contains("32 tools"), "every tool of the fixture server: {servers}");
    let reply = meta(&mut client, "c", "mcpgw_call", json!({"tool": "svc14__echo", "arguments": {"message": "deep"}}));
    assert_eq!(first_text(&reply), "many-14: deep");
}

#[test]
fn auto_mode_switches_at_the_threshold_and_tells_sessions() {
    let gw = TestGateway::new();
    let servers = format!("servers:\n  a:\n{}", fixture_server("many-a"));
    gw.write_config(&format!("tools: auto\nlazy_threshold_tokens: 100000\n{servers}"));
    let gw = in_process(gw);
    let mut client = gw.client();
    client.initialize();
    let (full_bytes, names) = tools_list_bytes(&mut client);
    assert!(names.contains(&"a__create_record".to_string()), "under the threshold: every tool");
    gw.write_config(&format!("tools: auto\nlazy_threshold_tokens: {}\n{servers}", full_bytes / 8));
    assert!(wait_until(TIMEOUT, || {
        client.gather(Duration::from_millis(20));
        client.stash.iter().any(|m| m["method"] == "notifications/tools/list_changed")
    }));
    let (_, names) = tools_list_bytes(&mut client);
    assert!(names.iter().all(|n| n.starts_with("mcpgw_")), "over the threshold: the meta-tools: {names:?}");
}

#[test]
fn search_finds_the_right_tool_among_real_servers() {
    let d = deps();
    let files = tempfile::tempdir().unwrap();
    let gw = TestGateway::new();
    gw.write_config(&format!(
        "tools: lazy\nservers:\n  everything:\n{}  memory:\n    command: {}\n    args: [{:?}]\n    env: {{ MEMORY_FILE_PATH: {:?} }}\n  fs:\n    command: {}\n    args: [{:?}, {:?}]\n",
        everything_server(),
        d.node(),
        d.memory_js(),
        files.path().join("memory.json").display().to_string(),
        d.node(),
        d.get("MCP_TEST_FILESYSTEM_JS"),
        files.path().display().to_string()
    ));
    let gw = started(gw);
    let mut client = gw.client();
    client.initialize();
    let cases = [
        ("echo a message back", "everything__echo"),
        ("add two numbers", "everything__get-sum"),
        ("read the contents of a file", "fs__read_text_file"),
        ("list the files in a directory", "fs__list_directory"),
        ("create entities in the knowledge graph", "memory__create_entities"),
        ("search nodes in the knowledge graph", "memory__search_nodes"),
        ("long running operation with progress", "everything__trigger-long-running-operation"),
        ("move or rename a file", "fs__move_file"),
        ("tiny image", "everything__get-tiny-image"),
        ("delete relations", "memory__delete_relations"),
    ];
    let mut misses = Vec::new();
    for (i, (query, expected)) in cases.iter().enumerate() {
        let reply = meta(&mut client, &format!("q{i}"), "mcpgw_search", json!({"query": query, "limit": 3}));
        let top: Vec<&str> = first_text(&reply).lines().map(|l| l.split(" — ").next().unwrap_or_default()).collect();
        if !top.contains(expected) {
            misses.push(format!("{query:?}: wanted {expected} in {top:?}"));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn the_call_meta_tool_passes_results_errors_and_progress_through() {
    let gw = TestGateway::new();
    gw.write_config(&format!("tools: lazy\nservers:\n  everything:\n{}", everything_server()));
    let gw = in_process(gw);
    let mut client = gw.client();
    client.initialize();
    // structuredContent comes back exactly as the server sent it.
    let direct = client.call_tool(json!(1), "everything__get-structured-content", json!({"location": "New York"}));
    let via = meta(
        &mut client,
        "m1",
        "mcpgw_call",
        json!({"tool": "everything__get-structured-content", "arguments": {"location": "New York"}}),
    );
    assert_eq!(via["result"], direct["result"], "{via}");
    assert!(via["result"]["structuredContent"].is_object());
    // Progress reaches the caller under its own token.
    let reply = client.request(
        json!("p"),
        "tools/call",
        json!({"name": "mcpgw_call", "arguments": {"tool": "everything__trigger-long-running-operation", "arguments": {"duration": 1, "steps": 2}},
               "_meta": {"progressToken": "mine"}}),
    );
    assert!(reply.get("result").is_some(), "{reply}");
    let progress: Vec<&Value> = client.stash.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(
        !progress.is_empty() && progress.iter().all(|p| p["params"]["progressToken"] == "mine"),
        "{:?}",
        client.stash
    );
    // A wrong name is a tool error with suggestions, so a model can correct itself.
    let wrong = meta(&mut client, "w", "mcpgw_call", json!({"tool": "everything__ecko", "arguments": {}}));
    assert_eq!(wrong["result"]["isError"], true, "{wrong}");
    assert!(first_text(&wrong).contains("`everything__echo`"), "{wrong}");
    let schema = meta(&mut client, "d", "mcpgw_describe", json!({"tool": "everything__echo"}));
    assert!(first_text(&schema).contains("\"inputSchema\""), "{schema}");
    assert!(first_text(&meta(&mut client, "h", "mcpgw_help", json!({}))).contains("mcpgw_search"));
}

#[test]
fn allow_and_deny_lists_hold_in_both_modes() {
    let body = format!("{}    tools: {{ deny: [\"crash\", \"garbage\"] }}\n", fixture_server("filtered"));
    let gw = started(TestGateway::with_servers(&[("fx", body.clone())]));
    let mut client = gw.client();
    client.initialize();
    let names = client.tool_names();
    assert!(names.contains(&"fx__echo".to_string()) && !names.contains(&"fx__crash".to_string()), "{names:?}");
    let reply = client.call_tool(json!(1), "fx__crash", json!({}));
    assert_eq!(reply["error"]["code"], -32602, "denied tools cannot be called: {reply}");
    gw.write_config(&format!("tools: lazy\nservers:\n  fx:\n{body}"));
    assert!(wait_until(TIMEOUT, || {
        client.gather(Duration::from_millis(20));
        client.stash.iter().any(|m| m["method"] == "notifications/tools/list_changed")
    }));
    let reply = meta(&mut client, "m", "mcpgw_call", json!({"tool": "fx__crash", "arguments": {}}));
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert_eq!(gw.count("filtered"), 1, "the backend still runs: nothing crashed it");
    let search = first_text(&meta(&mut client, "s", "mcpgw_search", json!({"query": "crash exit"}))).to_string();
    assert!(!search.contains("fx__crash"), "{search}");
}

#[test]
fn a_global_install_changes_nothing_until_confirmed() {
    let gw = started(TestGateway::with_servers(&[("a", fixture_server("a"))]));
    let config_path = gw.home.join("config.yaml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let mut client = gw.client();
    client.initialize(); // no elicitation: the code path
    let first = meta(&mut client, "i1", "mcpgw_install", json!({"server": "time", "scope": "global"}));
    let text = first_text(&first).to_string();
    assert!(text.contains("Nothing was changed") && text.contains("+   time:"), "{text}");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), original, "unchanged without confirmation");
    let code = text.split("confirm: \"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let wrong =
        meta(&mut client, "i2", "mcpgw_install", json!({"server": "time", "scope": "global", "confirm": "00000000"}));
    assert_eq!(wrong["result"]["isError"], true);
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), original);
    let done = meta(&mut client, "i3", "mcpgw_install", json!({"server": "time", "scope": "global", "confirm": code}));
    assert!(first_text(&done).contains("Installed `time`"), "{done}");
    let after = mcp_gateway::config::Config::load(&config_path).unwrap().unwrap();
    assert_eq!(after.servers.keys().collect::<Vec<_>>(), ["a", "time"], "exactly one entry added");
    assert_eq!(std::fs::read_to_string(gw.home.join("config.yaml.bak")).unwrap(), original, "backup kept");
    let reused = meta(&mut client, "i4", "mcpgw_remove", json!({"server": "time", "scope": "global", "confirm": code}));
    assert_eq!(reused["result"]["isError"], true, "a code is good for one change only");
    // The running gateway picked the change up.
    assert!(wait_until(TIMEOUT, || status(&gw)["servers"].as_array().unwrap().iter().any(|s| s == "time")));
}

#[test]
fn a_client_with_elicitation_confirms_by_answering() {
    let gw = in_process(TestGateway::with_servers(&[("a", fixture_server("a"))]));
    let config_path = gw.home.join("config.yaml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let mut client = gw.client();
    client.initialize_with(json!({"elicitation": {}}));
    for (answer, changed) in
        [(json!({"action": "decline"}), false), (json!({"action": "accept", "content": {"apply": true}}), true)]
    {
        client.send(&json!({"jsonrpc":"2.0","id":"inst","method":"tools/call","params":{"name":"mcpgw_install","arguments":{"server":"memory","scope":"global"}}}));
        let question = loop {
            let m = client.recv_within(TIMEOUT).expect("an elicitation");
            if m["method"] == "elicitation/create" {
                break m;
            }
        };
        assert!(question["params"]["message"].as_str().unwrap().contains("memory"), "{question}");
        client.send(&json!({"jsonrpc": "2.0", "id": question["id"], "result": answer}));
        let reply = client.response(&json!("inst"));
        let now = std::fs::read_to_string(&config_path).unwrap();
        assert_eq!(now != original, changed, "{reply}");
    }
}

#[test]
fn a_workspace_install_writes_the_workspace_file_and_reports_what_is_missing() {
    let mut gw = TestGateway::new();
    let project = gw.dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    gw.write_config(&format!("servers: {{}}\nworkspaces:\n  {:?}: {{ trust: true }}\n", project.display().to_string()));
    gw.start();
    let mut client = gw.client_in(&["--no-autostart"], &project);
    client.initialize();
    let reply = meta(&mut client, "w", "mcpgw_install", json!({"server": "github", "scope": "workspace"}));
    let text = first_text(&reply);
    assert!(text.contains("Installed `github`") && text.contains("GITHUB_TOKEN") && text.contains("not set"), "{text}");
    let file = std::fs::read_to_string(project.join(".mcp-gateway.yaml")).unwrap();
    assert!(file.contains("github:") && file.contains("${GITHUB_TOKEN}"), "{file}");
    let catalog = first_text(&meta(&mut client, "c", "mcpgw_catalog", json!({}))).to_string();
    assert!(catalog.contains("- github [installed]"), "{catalog}");
}

/// In lazy mode too: once the gateway has seen server-everything's
/// trigger-sampling-request ask for sampling from its one call in flight,
/// `mcpgw_search` no longer finds it for a session that declared no
/// sampling, and `mcpgw_call` refuses it there, saying why.
#[test]
fn the_meta_tools_leave_out_a_sampling_tool_for_a_client_without_sampling() {
    const TOOL: &str = "everything__trigger-sampling-request";
    let gw = TestGateway::new();
    gw.write_config(&format!("tools: lazy\nservers:\n  everything:\n{}", everything_server()));
    let gw = in_process(gw);
    let mut plain = gw.client();
    plain.initialize(); // declares no sampling
    let search = |client: &mut Client, id: &str| {
        first_text(&meta(client, id, "mcpgw_search", json!({"query": "sampling request", "limit": 5}))).to_string()
    };
    let found = search(&mut plain, "s1");
    assert!(found.contains(TOOL), "nothing known of it yet: found: {found}");

    let mut sampler = gw.client();
    sampler.initialize_with(json!({"sampling": {}}));
    sampler.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "mcpgw_call",
        "arguments": {"tool": TOOL, "arguments": {"prompt": "hi", "maxTokens": 5}}}}));
    let request = loop {
        let message = sampler.recv_within(Duration::from_secs(30)).expect("a sampling request");
        if message["method"] == "sampling/createMessage" {
            break message;
        }
    };
    sampler.send(&json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "sampled"}, "model": "m"}}));
    let reply = sampler.response(&json!(1));
    assert!(serde_json::to_string(&reply).unwrap().contains("sampled"), "{reply}");

    let found = search(&mut plain, "s2");
    assert!(!found.contains(TOOL), "{found}");
    assert!(search(&mut sampler, "s3").contains(TOOL), "a client that samples still finds it");
    let reply = meta(&mut plain, "c", "mcpgw_call", json!({"tool": TOOL, "arguments": {"prompt": "hi"}}));
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert!(first_text(&reply).contains("did not declare sampling support"), "{reply}");
}
