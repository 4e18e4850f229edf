//! The multiplexing rules (DESIGN.md): every response, progress update, server
//! request and notification reaches exactly the right session. Real
//! server-everything and the real Python SDK where they can show it; the fixture
//! server where a behaviour must be produced on demand (log levels, list changes).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

fn everything(extra: &str) -> TestGateway {
    TestGateway::with_servers(&[("everything", format!("{}{extra}", everything_server()))])
}

fn started(mut gw: TestGateway) -> TestGateway {
    gw.start();
    gw
}

/// [`started`] with the daemon in this process (for tests that need nothing of the binary).
fn in_process(mut gw: TestGateway) -> TestGateway {
    gw.start_in_process();
    gw
}

/// Messages with this method among what a client received so far (and within `wait`).
fn drain(client: &mut Client, wait: Duration) -> Vec<Value> {
    let mut all = std::mem::take(&mut client.stash);
    while let Some(m) = client.recv_within(wait) {
        all.push(m);
    }
    all
}

fn with_method<'a>(messages: &'a [Value], method: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["method"] == method).collect()
}

#[test]
fn same_request_id_and_progress_token_in_two_sessions() {
    let gw = started(everything(""));
    let result = run_client_script(&gw, "progress.py", &["--duration", "2", "--steps", "4"]);
    assert_eq!(result["progress"], json!([4, 4]), "each session sees exactly its own 4 updates");
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

#[test]
fn sampling_and_elicitation_reach_their_own_caller_on_a_serialized_backend() {
    let gw = started(everything("    serialize: true\n"));
    // A modern (2026-07-28) client cannot be sent requests: it gets the
    // question as an `input_required` round, and its retry carries the answer.
    for (kind, mode) in
        [("sampling", "legacy"), ("elicitation", "legacy"), ("sampling", "auto"), ("elicitation", "auto")]
    {
        let result = run_client_script(&gw, "server_requests.py", &["--kind", kind, "--sessions", "2", "--mode", mode]);
        assert_eq!(result["asked"], json!([1, 1]), "{kind} ({mode}): each callback asked exactly once: {result}");
    }
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

#[test]
fn sampling_and_elicitation_without_serialize_when_one_session_is_calling() {
    let gw = started(everything(""));
    for kind in ["sampling", "elicitation"] {
        let result = run_client_script(&gw, "server_requests.py", &["--kind", kind, "--sessions", "2", "--sequential"]);
        assert_eq!(result["asked"], json!([1, 1]), "{kind}: {result}");
    }
}

#[test]
fn ambiguous_sampling_is_refused_and_says_why() {
    let gw = started(everything(""));
    let mut busy = gw.client();
    busy.initialize();
    let mut asker = gw.client();
    asker.initialize_with(json!({"sampling": {}}));
    // Long enough that the busy call is surely still running when the asker's
    // question arrives, even on a loaded machine (a 3 s call once ended first,
    // which routed the question to the asker alone and timed the test out).
    // Its first progress says it runs on the backend: the backend's count of
    // requests in flight may be the gateway's own listing, not this call (a
    // faster asker then overtook it, was the only caller, and was asked).
    busy.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"everything__trigger-long-running-operation","arguments":{"duration":10,"steps":10},
        "_meta":{"progressToken":"busy"}}}));
    next_request(&mut busy, "notifications/progress");
    let reply =
        asker.call_tool(json!(1), "everything__trigger-sampling-request", json!({"prompt": "hi", "maxTokens": 5}));
    let text = serde_json::to_string(&reply).unwrap();
    assert!(text.contains("cannot tell which one") && text.contains("serialize: true"), "{reply}");
    assert!(
        with_method(&asker.stash, "sampling/createMessage").is_empty(),
        "nobody is asked when the cause is ambiguous: {:?}",
        asker.stash
    );
    assert!(busy.response(&json!(1)).get("result").is_some());

    // The gateway learnt which tool asks: the same two calls at once now work,
    // and the request goes to the one session whose call can ask.
    busy.send(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
        "name":"everything__trigger-long-running-operation","arguments":{"duration":3,"steps":3},
        "_meta":{"progressToken":"busy again"}}}));
    next_request(&mut busy, "notifications/progress");
    asker.send(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
        "name":"everything__trigger-sampling-request","arguments":{"prompt":"hi","maxTokens":5}}}));
    let request = next_sampling_request(&mut asker);
    answer_sampling(&mut asker, &request, "the asker's answer");
    let reply = asker.response(&json!(2));
    assert!(serde_json::to_string(&reply).unwrap().contains("the asker's answer"), "{reply}");
    assert!(busy.response(&json!(2)).get("result").is_some());
    let extra = status(&gw)["backends"].as_array().unwrap().iter().filter(|b| b["lane"] != 0).count();
    assert_eq!(extra, 0, "no extra instance: the other call does not ask: {}", status(&gw));
}

/// The next request with this method a client is sent; what else arrives is kept.
fn next_request(client: &mut Client, method: &str) -> Value {
    let mut others = Vec::new();
    let request = loop {
        let m = client.recv_within(TIMEOUT).unwrap_or_else(|| panic!("a {method} request"));
        if m["method"] == method {
            break m;
        }
        others.push(m);
    };
    client.stash.extend(others);
    request
}

fn next_sampling_request(client: &mut Client) -> Value {
    next_request(client, "sampling/createMessage")
}

fn answer_sampling(client: &mut Client, request: &Value, text: &str) {
    client.send(&json!({"jsonrpc":"2.0","id":request["id"],"result":{
        "role":"assistant","content":{"type":"text","text":text},"model":"m"}}));
}

#[test]
fn what_the_gateway_learnt_about_asking_tools_outlives_the_daemon() {
    let mut gw = started(everything(""));
    let alone = run_client_script(&gw, "server_requests.py", &["--kind", "sampling", "--sessions", "1"]);
    assert_eq!(alone["asked"], json!([1]), "{alone}");
    gw.stop();
    gw.start();
    // A new daemon: the first caller holds its question open while a second
    // caller asks too. Known from the listing kept on disk, the tool's calls
    // run on separate instances, and each question reaches its own caller.
    let call = |id: u64| {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name":"everything__trigger-sampling-request","arguments":{"prompt":"hi","maxTokens":5}}})
    };
    let mut first = gw.client();
    first.initialize_with(json!({"sampling": {}}));
    let mut second = gw.client();
    second.initialize_with(json!({"sampling": {}}));
    first.send(&call(1));
    let asked_first = next_sampling_request(&mut first);
    second.send(&call(1));
    let asked_second = next_sampling_request(&mut second);
    answer_sampling(&mut second, &asked_second, "the second's answer");
    answer_sampling(&mut first, &asked_first, "the first's answer");
    let (a, b) = (first.response(&json!(1)), second.response(&json!(1)));
    assert!(serde_json::to_string(&a).unwrap().contains("the first's answer"), "{a}");
    assert!(serde_json::to_string(&b).unwrap().contains("the second's answer"), "{b}");
    // And what it asks for: a client that cannot sample is not offered it.
    let mut plain = gw.client();
    plain.initialize();
    let names = plain.tool_names();
    assert!(!names.iter().any(|t| t == "everything__trigger-sampling-request"), "{names:?}");
}

#[test]
fn concurrent_callers_of_a_tool_that_asks_each_get_their_own_answer() {
    // A short idle timeout, so the extra instances are seen to go.
    let gw = started(everything("    idle_timeout: 2s\n"));
    // Five sampling callers (one more than max_instances: one waits its
    // turn), two for elicitation.
    for (kind, concurrent) in [("sampling", 5), ("elicitation", 2)] {
        // One caller alone: exact, and the gateway learns that the tool asks.
        let alone = run_client_script(&gw, "server_requests.py", &["--kind", kind, "--sessions", "1"]);
        assert_eq!(alone["asked"], json!([1]), "{kind}: {alone}");
        {
            let sessions = concurrent;
            let result =
                run_client_script(&gw, "server_requests.py", &["--kind", kind, "--sessions", &sessions.to_string()]);
            assert_eq!(
                result["asked"],
                json!(vec![1; sessions]),
                "{kind} × {sessions}: each asked exactly once: {result}"
            );
        }
    }
    let lanes = |running: bool| -> Vec<u64> {
        let status = status(&gw);
        let backends = status["backends"].as_array().cloned().unwrap_or_default();
        backends.iter().filter(|b| b["pid"].is_null() != running).filter_map(|b| b["lane"].as_u64()).collect()
    };
    // The instances may be stopped already (2 s idle): the log says where calls ran.
    let log = gw.daemon_log();
    let extra: Vec<&str> = log.lines().filter(|l| l.contains("a call that asks runs on an extra instance")).collect();
    assert!(!extra.is_empty(), "concurrent asking calls ran on extra instances");
    assert!(extra.iter().all(|l| ["lane=1", "lane=2", "lane=3"].iter().any(|lane| l.contains(lane))), "{extra:?}");
    assert!(wait_until(TIMEOUT, || lanes(true).is_empty()), "idle instances stop: {}", status(&gw));
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

#[test]
fn a_server_request_needs_the_callers_capability() {
    let gw = in_process(everything(""));
    let mut client = gw.client();
    client.initialize(); // declares no sampling
    let reply =
        client.call_tool(json!(1), "everything__trigger-sampling-request", json!({"prompt": "hi", "maxTokens": 5}));
    let text = serde_json::to_string(&reply).unwrap();
    assert!(text.contains("did not declare sampling support"), "{reply}");
    assert!(with_method(&client.stash, "sampling/createMessage").is_empty());
}

/// Once the gateway has seen a tool ask for sampling from the one call of it
/// in flight (server-everything's trigger-sampling-request), a session that
/// declared no sampling is told to list again and no longer sees it, and a
/// call of it there fails at once, saying why; the session that can sample
/// keeps it. Before that it is listed to everyone: nothing is hidden on
/// suspicion.
#[test]
fn a_tool_that_asks_for_sampling_is_not_offered_to_a_client_without_sampling() {
    const TOOL: &str = "everything__trigger-sampling-request";
    let gw = in_process(everything(""));
    let mut plain = gw.client();
    plain.initialize(); // declares no sampling
    assert!(plain.tool_names().iter().any(|t| t == TOOL), "nothing known of it yet: listed");
    let mut sampler = gw.client();
    sampler.initialize_with(json!({"sampling": {}}));
    sampler.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name": TOOL, "arguments": {"prompt": "hi", "maxTokens": 5}}}));
    let request = next_sampling_request(&mut sampler);
    answer_sampling(&mut sampler, &request, "the sampler's answer");
    let reply = sampler.response(&json!(1));
    assert!(serde_json::to_string(&reply).unwrap().contains("the sampler's answer"), "{reply}");

    next_request(&mut plain, "notifications/tools/list_changed");
    let listed = plain.tool_names();
    assert!(!listed.iter().any(|t| t == TOOL), "{listed:?}");
    assert!(listed.iter().any(|t| t == "everything__echo"), "the other tools stay: {listed:?}");
    assert!(sampler.tool_names().iter().any(|t| t == TOOL), "a client that samples still sees it");
    let reply = plain.call_tool(json!(2), TOOL, json!({"prompt": "hi", "maxTokens": 5}));
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert!(first_text(&reply).contains("did not declare sampling support"), "{reply}");
    assert!(with_method(&plain.stash, "sampling/createMessage").is_empty());
}

#[test]
fn a_client_that_leaves_with_a_server_request_pending_is_answered_for() {
    let gw = started(everything("    serialize: true\n"));
    let mut leaving = gw.client();
    leaving.initialize_with(json!({"sampling": {}}));
    leaving.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"everything__trigger-sampling-request","arguments":{"prompt":"hi","maxTokens":5}}}));
    // The sampling request arrives under a gateway id, not the backend's.
    let request = loop {
        let m = leaving.recv_within(TIMEOUT).expect("a sampling request");
        if m["method"] == "sampling/createMessage" {
            break m;
        }
    };
    assert!(request["id"].as_str().is_some_and(|id| id.starts_with("mcp-gateway-")), "{request}");
    assert_eq!(status(&gw)["pending"]["server_requests"], 1);
    drop(leaving);
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
    // The backend was answered (with an error) and is free for the next caller.
    let mut next = gw.client();
    next.initialize();
    let reply = next.call_tool(json!(2), "everything__echo", json!({"message": "still serving"}));
    assert!(first_text(&reply).contains("still serving"));
}

#[test]
fn cancelling_one_call_leaves_the_identical_call_of_another_session_alone() {
    let gw = started(everything(""));
    let mut a = gw.client();
    let mut b = gw.client();
    a.initialize();
    b.initialize();
    let call = json!({"jsonrpc":"2.0","id":"same","method":"tools/call","params":{
        "name":"everything__trigger-long-running-operation","arguments":{"duration":6,"steps":3}}});
    a.send(&call);
    b.send(&call);
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 2));
    a.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"same"}}));
    // A's call ends while B's identical call (started with it) is still running:
    // it was ended by the cancellation, not by finishing.
    assert!(wait_until(TIMEOUT, || {
        let backend = &status(&gw)["backends"][0];
        backend["in_flight"] == 1
    }));
    b.gather(Duration::from_millis(1));
    assert!(b.stash.iter().all(|m| m["id"] != "same"), "B's identical call was still running then");
    let reply = b.response(&json!("same"));
    assert!(reply.get("result").is_some(), "{reply}");
    let rest = drain(&mut a, Duration::from_millis(300));
    assert!(rest.iter().all(|m| m["id"] != "same"), "A got an answer after cancelling: {rest:?}");
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

#[test]
fn a_disconnect_mid_call_leaves_no_pending_state() {
    let gw = started(everything(""));
    let mut client = gw.client();
    client.initialize();
    client.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"everything__trigger-long-running-operation","arguments":{"duration":10,"steps":10},
        "_meta":{"progressToken":"p"}}}));
    assert!(wait_until(TIMEOUT, || {
        let s = status(&gw);
        s["backends"][0]["in_flight"] == 1 && s["backends"][0]["progress_routes"] == 1
    }));
    drop(client);
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw) && status(&gw)["sessions"] == json!([])), "{}", status(&gw));
}

#[test]
fn resource_updates_reach_subscribers_only_and_subscribe_is_forwarded_once() {
    let gw = started(everything(""));
    let mut logger = gw.client();
    logger.initialize();
    assert_eq!(logger.request(json!("lvl"), "logging/setLevel", json!({"level": "info"}))["result"], json!({}));
    let mut a = gw.client();
    let mut b = gw.client();
    let mut c = gw.client();
    for client in [&mut a, &mut b, &mut c] {
        client.initialize();
    }
    let resources = a.request(json!("r"), "resources/list", json!({}));
    let uri = resources["result"]["resources"][0]["uri"].clone();
    assert_eq!(a.request(json!("s"), "resources/subscribe", json!({"uri": uri}))["result"], json!({}));
    // Updates start at once for subscribed URIs.
    let toggle = a.call_tool(json!("t1"), "everything__toggle-subscriber-updates", json!({}));
    assert!(toggle.get("result").is_some(), "{toggle}");
    assert!(wait_until(TIMEOUT, || {
        a.gather(Duration::from_millis(50));
        !with_method(&a.stash, "notifications/resources/updated").is_empty()
    }));
    assert!(with_method(&a.stash, "notifications/resources/updated").iter().all(|m| m["params"]["uri"] == uri));
    let b_saw = drain(&mut b, Duration::from_millis(300));
    assert!(with_method(&b_saw, "notifications/resources/updated").is_empty(), "B did not subscribe: {b_saw:?}");
    // A second subscriber and its unsubscribe do not reach the backend; the last one does.
    assert_eq!(c.request(json!("s"), "resources/subscribe", json!({"uri": uri}))["result"], json!({}));
    assert_eq!(c.request(json!("u"), "resources/unsubscribe", json!({"uri": uri}))["result"], json!({}));
    assert_eq!(a.request(json!("u"), "resources/unsubscribe", json!({"uri": uri}))["result"], json!({}));
    a.call_tool(json!("t2"), "everything__toggle-subscriber-updates", json!({}));
    let count = |messages: &[Value], text: &str| {
        messages
            .iter()
            .filter(|m| {
                m["method"] == "notifications/message" && m["params"]["data"].as_str().is_some_and(|d| d.contains(text))
            })
            .count()
    };
    let mut logged = Vec::new();
    assert!(wait_until(TIMEOUT, || {
        logged.extend(drain(&mut logger, Duration::from_millis(50)));
        count(&logged, "Received Unsubscribe Resource request") >= 1
    }));
    logged.extend(drain(&mut logger, Duration::from_millis(300)));
    assert_eq!(count(&logged, "Received Subscribe Resource request"), 1, "{logged:?}");
    assert_eq!(count(&logged, "Received Unsubscribe Resource request"), 1, "{logged:?}");
    assert_eq!(status(&gw)["pending"]["subscriptions"], 0);
}

#[test]
fn each_session_gets_log_messages_at_its_own_level_only() {
    let gw = started(TestGateway::with_servers(&[("fx", fixture_server("a"))]));
    let mut verbose = gw.client();
    let mut terse = gw.client();
    let mut silent = gw.client();
    for client in [&mut verbose, &mut terse, &mut silent] {
        client.initialize();
    }
    verbose.request(json!("l"), "logging/setLevel", json!({"level": "debug"}));
    terse.request(json!("l"), "logging/setLevel", json!({"level": "error"}));
    assert_eq!(terse.request(json!("bad"), "logging/setLevel", json!({"level": "loud"}))["error"]["code"], -32602);
    verbose.call_tool(json!(1), "fx__log", json!({}));
    let levels = |client: &mut Client, n: usize| -> Vec<String> {
        let mut got = Vec::new();
        wait_until(TIMEOUT, || {
            got.extend(drain(client, Duration::from_millis(50)));
            with_method(&got, "notifications/message").len() >= n
        });
        got.extend(drain(client, Duration::from_millis(200)));
        with_method(&got, "notifications/message")
            .iter()
            .map(|m| m["params"]["level"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        levels(&mut verbose, 8),
        ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
    );
    assert_eq!(levels(&mut terse, 4), ["error", "critical", "alert", "emergency"]);
    assert!(levels(&mut silent, 0).is_empty(), "a session that set no level gets no log messages");
    // The backend was set to the most verbose level asked for, once.
    let calls = first_text(&silent.call_tool(json!(2), "fx__calls", json!({}))).to_string();
    assert_eq!(calls.matches("logging/setLevel").count(), 1, "{calls}");
    // When the verbose session leaves, the backend goes back to the terse level.
    drop(verbose);
    assert!(wait_until(TIMEOUT, || {
        first_text(&silent.call_tool(json!(3), "fx__calls", json!({}))).matches("logging/setLevel").count() == 2
    }));
    silent.call_tool(json!(4), "fx__log", json!({}));
    assert_eq!(levels(&mut terse, 4), ["error", "critical", "alert", "emergency"]);
}

#[test]
fn list_changed_reaches_every_session_and_changes_the_list() {
    let gw = in_process(TestGateway::with_servers(&[("fx", fixture_server("a"))]));
    let mut a = gw.client();
    let mut b = gw.client();
    a.initialize();
    b.initialize();
    assert!(!a.tool_names().contains(&"fx__fresh".to_string()));
    a.call_tool(json!(1), "fx__add_tool", json!({"name": "fresh"}));
    for client in [&mut a, &mut b] {
        assert!(wait_until(TIMEOUT, || {
            client.gather(Duration::from_millis(50));
            !with_method(&client.stash, "notifications/tools/list_changed").is_empty()
        }));
        assert!(client.tool_names().contains(&"fx__fresh".to_string()));
    }
    let reply = b.call_tool(json!(2), "fx__fresh", json!({}));
    assert_eq!(first_text(&reply), "fresh called");
}

/// A server that registers its tools one by one says `list_changed` for each
/// (server-everything does at start-up): the gateway re-lists once for the
/// notices that came before that re-listing started, and once more only for
/// those that came while it ran; not once per notice. The last re-listing has
/// every tool.
#[test]
fn a_burst_of_list_changed_is_re_listed_once_not_once_per_notice() {
    let gw = in_process(TestGateway::with_servers(&[("fx", fixture_server("a"))]));
    let mut a = gw.client();
    a.initialize();
    let mut next_id = 100;
    let mut listings = |client: &mut Client| {
        next_id += 1;
        first_text(&client.call_tool(json!(next_id), "fx__calls", json!({}))).matches("\"tools/list\"").count()
    };
    let before = listings(&mut a);
    a.call_tool(json!(1), "fx__add_tool", json!({"name": "burst", "count": 8}));
    assert!(wait_until(TIMEOUT, || a.tool_names().iter().filter(|n| n.starts_with("fx__burst")).count() == 8));
    assert!(wait_until(TIMEOUT, || listings(&mut a) > before), "the burst was re-listed");
    let relisted = listings(&mut a) - before;
    assert!(relisted <= 2, "8 notices made {relisted} re-listings");
}

/// Answers are relayed as the backend wrote them, with only the id changed
/// (the gateway splices the client's id into the line it read): fields in any
/// order, fields no spec has, escapes and number spellings all arrive.
#[test]
fn answers_arrive_as_the_backend_wrote_them_but_for_the_id() {
    let gw = in_process(TestGateway::with_servers(&[("fx", fixture_server("a"))]));
    let mut a = gw.client();
    let mut b = gw.client();
    a.initialize();
    b.initialize();
    let expected = |id: Value| {
        json!({
            "result": {"content": [{"type": "text", "text": "caf\u{e9} \"q\" / \\"}],
                       "x-extra": {"task": {"taskId": "not-a-task"}, "n": 1e3, "big": 18446744073709551615u64}},
            "x-top": [1, 2.5, null, true], "jsonrpc": "2.0", "id": id,
        })
    };
    // Both sessions use the same ids, and string ones too.
    for id in [json!(7), json!("seven"), json!(7)] {
        for client in [&mut a, &mut b] {
            let reply = client.call_tool(id.clone(), "fx__verbatim", json!({}));
            assert_eq!(reply, expected(id.clone()));
        }
    }
    // The gateway kept nothing of it: `x-extra.task` is not a task.
    assert!(wait_until(TIMEOUT, || maps_are_empty(&gw)), "{}", status(&gw));
}

#[test]
fn a_request_that_times_out_is_cancelled_at_the_backend() {
    let gw = TestGateway::with_servers(&[("fx", format!("{}    request_timeout_secs: 1\n", fixture_server("a")))]);
    let gw = started(gw);
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "fx__slow", json!({"seconds": 5}));
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("did not answer within 1 s"), "{reply}");
    let cancelled = first_text(&client.call_tool(json!(2), "fx__cancelled", json!({}))).to_string();
    assert_ne!(cancelled, "[]", "the backend was told");
    assert!(maps_are_empty(&gw));
}

#[test]
fn a_globally_shared_filesystem_server_keeps_its_directories() {
    let d = deps();
    let shared = tempfile::tempdir().unwrap();
    let elsewhere_a = tempfile::tempdir().unwrap();
    let elsewhere_b = tempfile::tempdir().unwrap();
    let shared_dir = std::fs::canonicalize(shared.path()).unwrap().display().to_string();
    let gw = started(TestGateway::with_servers(&[(
        "fs",
        format!("    command: {}\n    args: [{:?}, {:?}]\n", d.node(), d.get("MCP_TEST_FILESYSTEM_JS"), shared_dir),
    )]));
    let roots = json!({"roots": {"listChanged": true}});
    let mut a = gw.client_in(&["--no-autostart"], elsewhere_a.path());
    let mut b = gw.client_in(&["--no-autostart"], elsewhere_b.path());
    a.initialize_with(roots.clone());
    b.initialize_with(roots);
    a.send(&json!({"jsonrpc":"2.0","method":"notifications/roots/list_changed"}));
    for client in [&mut a, &mut b] {
        let reply = client.call_tool(json!(1), "fs__list_allowed_directories", json!({}));
        let text = first_text(&reply);
        assert!(text.contains(&shared_dir), "{text}");
        assert!(!text.contains(&elsewhere_a.path().display().to_string()), "{text}");
        assert!(!text.contains(&elsewhere_b.path().display().to_string()), "{text}");
        assert!(with_method(&client.stash, "roots/list").is_empty(), "the shared server never asks for roots");
    }
}

/// A server with `projects:` (what `import` writes for Claude Code's
/// project-only servers) is offered to sessions working in or under one of
/// those directories, and to no other.
#[test]
fn a_project_only_server_is_offered_only_in_its_project() {
    let project = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let inside = project.path().join("src");
    std::fs::create_dir_all(&inside).unwrap();
    let dir = std::fs::canonicalize(project.path()).unwrap().display().to_string();
    let gw = started(TestGateway::with_servers(&[
        ("everywhere", fixture_server("everywhere")),
        ("mine", format!("{}    projects: [{dir:?}]\n", fixture_server("mine"))),
    ]));
    let servers_seen = |cwd: &std::path::Path| {
        let mut client = gw.client_in(&["--no-autostart"], cwd);
        client.initialize();
        let mut servers: Vec<String> =
            client.tool_names().iter().filter_map(|t| Some(t.split_once("__")?.0.to_string())).collect();
        servers.dedup();
        servers
    };
    assert_eq!(servers_seen(project.path()), ["everywhere", "mine"]);
    assert_eq!(servers_seen(&inside), ["everywhere", "mine"], "a directory under the project is in it");
    assert_eq!(servers_seen(elsewhere.path()), ["everywhere"]);
}

/// Each session is shown names its client can take with its own prefix in
/// front (DESIGN.md: 64 counting the prefix): Claude Code (`mcp__gateway__`,
/// 14 characters) gets the whole `<server>__echo` of 50, a client the gateway
/// does not know the shortened 46 every client got before, and so does Claude
/// Code under the entry `mcp-gateway` (its shim says so with `--entry`).
/// Either name calls the one tool from either session.
#[test]
fn each_client_is_shown_names_that_fit_behind_its_own_prefix() {
    const SERVER: &str = "fixture-server-whose-name-is-long-for-a-tool";
    let full = format!("{SERVER}__echo");
    assert_eq!(full.len(), 50);
    let gw = in_process(TestGateway::with_servers(&[(SERVER, fixture_server("long"))]));
    let echo_name = |client: &mut Client| {
        let names = client.tool_names();
        names.into_iter().find(|n| n.starts_with(&SERVER[..16]) && n.contains("__echo")).expect("the echo tool")
    };
    let mut claude = gw.client();
    claude.initialize_as("claude-code", json!({}));
    let mut other = gw.client();
    other.initialize_as("some-other-client", json!({}));
    let mut renamed = gw.client_with(&["--no-autostart", "--entry", "mcp-gateway"]);
    renamed.initialize_as("claude-code", json!({}));

    let claude_name = echo_name(&mut claude);
    let other_name = echo_name(&mut other);
    assert_eq!(claude_name, full, "behind `mcp__gateway__` the whole name fits");
    assert!(other_name.len() <= 46 && other_name != full, "{other_name}");
    assert!(other_name.starts_with(&format!("{}__echo_", &SERVER[..31])), "readable: {other_name}");
    assert_eq!(echo_name(&mut renamed), other_name, "`mcp__mcp-gateway__` leaves 46");
    assert_eq!(echo_name(&mut other), other_name, "the same name every time");

    let call = |client: &mut Client, name: &str, id: &str| {
        let response = client.call_tool(json!(id), name, json!({"message": id}));
        assert!(first_text(&response).contains(id), "{name} from call {id}: {response}");
    };
    call(&mut claude, &claude_name, "a");
    call(&mut claude, &other_name, "b");
    call(&mut other, &other_name, "c");
    call(&mut renamed, &other_name, "d");
    // A name a session was not shown and that is not the default is unknown to it.
    let response = other.call_tool(json!("e"), &full, json!({"message": "e"}));
    assert_eq!(response["error"]["code"], -32602, "{response}");
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn randomized_interleaving_routes_every_answer_exactly_once_and_leaves_no_state() {
    const SESSIONS: usize = 6;
    const REQUESTS: usize = 150;
    let seed = std::env::var("MCP_GATEWAY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234_u64);
    let mut rng = Rng(seed);
    let gw = started(TestGateway::with_servers(&[("fx", fixture_server("r"))]));
    let mut clients: Vec<Option<Client>> = (0..SESSIONS)
        .map(|_| {
            let mut c = gw.client();
            c.initialize();
            Some(c)
        })
        .collect();
    // Per session: id (JSON text) → the message it expects back.
    let mut expected: Vec<HashMap<String, String>> = vec![HashMap::new(); SESSIONS];
    let mut cancelled: Vec<HashSet<String>> = vec![HashSet::new(); SESSIONS];
    let mut tokens: Vec<HashSet<String>> = vec![HashSet::new(); SESSIONS];
    let leavers: HashSet<usize> = [1, 4].into();
    for step in 0..REQUESTS {
        for s in 0..SESSIONS {
            let Some(client) = clients[s].as_mut() else { continue };
            if leavers.contains(&s) && step == REQUESTS / 2 {
                clients[s] = None; // disconnects with calls in flight
                continue;
            }
            // Ids collide across sessions on purpose: numbers and look-alike strings.
            let n = step as u64;
            let id = if rng.below(2) == 0 { json!(n) } else { json!(n.to_string()) };
            let message = format!("s{s}-q{step}");
            let slow = rng.below(4) == 0;
            let mut params = if slow {
                json!({"name": "fx__slow", "arguments": {"seconds": 0.05 * rng.below(4) as f64, "message": message}})
            } else {
                json!({"name": "fx__echo", "arguments": {"message": message}})
            };
            if slow && rng.below(2) == 0 {
                // The same token in every session that uses one.
                params["_meta"] = json!({"progressToken": "tok"});
                tokens[s].insert(id.to_string());
            }
            client.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}));
            expected[s].insert(id.to_string(), message);
            if slow && rng.below(3) == 0 {
                client.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId": id}}));
                cancelled[s].insert(id.to_string());
            }
        }
    }
    for s in 0..SESSIONS {
        let Some(client) = clients[s].as_mut() else { continue };
        let mut answered: HashMap<String, usize> = HashMap::new();
        let must_answer: HashSet<&String> = expected[s].keys().filter(|id| !cancelled[s].contains(*id)).collect();
        let deadline = Instant::now() + TIMEOUT;
        while must_answer.iter().any(|id| !answered.contains_key(*id)) && Instant::now() < deadline {
            let Some(message) = client.recv_within(Duration::from_millis(200)) else { continue };
            if message["method"] == "notifications/progress" {
                assert_eq!(message["params"]["progressToken"], "tok", "session {s}: token restored");
                continue;
            }
            let id = message["id"].to_string();
            let want =
                expected[s].get(&id).unwrap_or_else(|| panic!("session {s} got an answer to {id} it never sent"));
            let text = first_text(&message);
            // Ids repeat within a session (step n as number and as string differ),
            // so the text tells which request this answers.
            assert!(text.ends_with(want.as_str()), "session {s}, id {id}: wanted {want}, got {text}");
            *answered.entry(id).or_default() += 1;
        }
        for id in &must_answer {
            assert_eq!(answered.get(*id), Some(&1), "session {s}: id {id} answered {:?} times", answered.get(*id));
        }
        for (id, n) in &answered {
            assert_eq!(*n, 1, "session {s}: id {id} answered {n} times");
        }
    }
    drop(clients);
    assert!(
        wait_until(TIMEOUT, || maps_are_empty(&gw) && status(&gw)["sessions"] == json!([])),
        "state left behind: {}",
        status(&gw)
    );
}

#[test]
fn a_task_belongs_to_its_creator_and_its_questions_reach_it() {
    let gw = started(everything(""));
    let mut owner = gw.client();
    let mut other = gw.client();
    owner.initialize_with(json!({"elicitation": {}}));
    other.initialize_with(json!({"elicitation": {}}));
    owner.tool_names();
    // Once a backend offering tasks is known, sessions are offered tasks too.
    let mut late = gw.client();
    assert!(late.initialize()["result"]["capabilities"]["tasks"].is_object());

    let created = owner.request(
        json!(1),
        "tools/call",
        json!({"name": "everything__simulate-research-query", "arguments": {"topic": "jaguar", "ambiguous": true},
               "task": {"ttl": 60000}}),
    );
    let task = created["result"]["task"]["taskId"].as_str().unwrap_or_else(|| panic!("{created}")).to_string();
    let foreign = other.request(json!(2), "tasks/get", json!({"taskId": task}));
    assert_eq!(foreign["error"]["code"], -32602, "another session cannot see the task: {foreign}");
    assert_eq!(other.request(json!(3), "tasks/list", json!({}))["result"]["tasks"], json!([]));
    let listed = owner.request(json!(4), "tasks/list", json!({}));
    assert_eq!(listed["result"]["tasks"][0]["taskId"], task, "{listed}");

    // With another session's call in flight, only the related task says who is asked.
    other.send(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{
        "name":"everything__trigger-long-running-operation","arguments":{"duration":3,"steps":3}}}));
    owner.send(&json!({"jsonrpc":"2.0","id":6,"method":"tasks/result","params":{"taskId": task}}));
    let question = next_request(&mut owner, "elicitation/create");
    let choice = question["params"]["requestedSchema"]["properties"]["interpretation"]["oneOf"][0]["const"].clone();
    owner.send(
        &json!({"jsonrpc":"2.0","id":question["id"],"result":{"action":"accept","content":{"interpretation":choice}}}),
    );
    let result = owner.response(&json!(6));
    let text = serde_json::to_string(&result).unwrap();
    assert!(text.contains("After receiving clarification"), "{result}");
    assert!(other.response(&json!(5)).get("result").is_some());
    assert!(with_method(&other.stash, "elicitation/create").is_empty(), "the other session was not asked");
    assert!(wait_until(TIMEOUT, || status(&gw)["pending"]["tasks"] == 0 && maps_are_empty(&gw)), "{}", status(&gw));
}
