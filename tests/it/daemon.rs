//! The daemon and shim on their own: sockets, config, bad input, cancellation,
//! crashes. Backends here are the stdlib-only fixture server, which can misbehave
//! on demand; interop with real MCP servers and clients lives in tests/it/interop.rs.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

#[test]
fn starts_without_a_config_and_says_where_it_looked() {
    let mut gw = TestGateway::new();
    gw.start();
    let log = gw.daemon_log();
    assert!(log.contains("no config file found"), "{log}");
    assert!(log.contains(&gw.home.join("config.yaml").display().to_string()), "{log}");
    assert!(log.contains("servers:"), "the log shows how to add a server: {log}");
    let mut client = gw.client();
    let init = client.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-gateway");
    assert_eq!(client.tool_names(), Vec::<String>::new());
}

#[test]
fn socket_is_private_and_removed_on_sigterm() {
    let mut gw = TestGateway::new();
    gw.start();
    let dir_mode = std::fs::metadata(gw.socket.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    let sock_mode = std::fs::metadata(&gw.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!((dir_mode, sock_mode), (0o700, 0o600));
    let status = gw.stop();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(!gw.socket.exists(), "socket removed on shutdown");
}

#[test]
fn stale_socket_is_replaced_and_a_live_one_is_an_error() {
    let mut gw = TestGateway::new();
    std::fs::create_dir_all(gw.socket.parent().unwrap()).unwrap();
    // A stale socket file: bound, then its listener gone.
    drop(std::os::unix::net::UnixListener::bind(&gw.socket).unwrap());
    assert!(gw.socket.exists());
    gw.start();
    assert!(gw.daemon_log().contains("stale socket"), "{}", gw.daemon_log());
    gw.stop();

    // A live listener that is not ours.
    let _live = std::os::unix::net::UnixListener::bind(&gw.socket).unwrap();
    let out = gw.command(DAEMON).arg("serve").stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already listening on"), "{stderr}");
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let mut gw = TestGateway::new();
    gw.start();
    let out = gw.command(DAEMON).arg("serve").stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another mcp-gateway daemon"), "{stderr}");
    // The first one is unaffected.
    let mut client = gw.client();
    assert!(client.initialize()["result"].is_object());
}

#[test]
fn config_errors_name_file_line_and_reason() {
    let gw = TestGateway::new();
    gw.write_config("servers:\n  everything:\n    comand: npx\n");
    let out = gw.command(DAEMON).arg("serve").stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:", gw.home.join("config.yaml").display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("comand"), "{stderr}");

    let out = gw.command(DAEMON).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected));

    // The shim reports a daemon that cannot start, with the reason, at once.
    let out = gw.command(SHIM).stdin(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to start") && stderr.contains(&expected), "{stderr}");
}

#[test]
fn toml_config_is_loaded() {
    let mut gw = TestGateway::new();
    let script = format!("{}/tests/fixtures/fixture_server.py", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        gw.home.join("config.toml"),
        format!("[servers.fx]\ncommand = \"python3\"\nargs = [{script:?}, \"toml\"]\n"),
    )
    .unwrap();
    gw.start_in_process();
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "fx__echo", json!({"message": "hi"}));
    assert_eq!(first_text(&reply), "toml: hi");
}

/// Connects to the socket directly and sends a preamble line.
#[test]
fn wrong_preamble_is_refused_with_a_reason() {
    let mut gw = TestGateway::new();
    gw.start();
    let (_s, mut reader) = raw_connection(&gw, &json!({"mcp_gateway_preamble": 99}));
    let reply = read_json(&mut reader);
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("version 99"), "{error}");

    let (_s, mut reader) = raw_connection(&gw, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}));
    let reply = read_json(&mut reader);
    assert!(reply["error"].as_str().unwrap().contains("mcp-gateway-connect"), "{reply}");

    // The daemon still serves.
    let mut client = gw.client();
    assert!(client.initialize()["result"].is_object());
}

#[test]
fn bad_client_input_gets_errors_and_the_session_goes_on() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    let config = std::fs::read_to_string(gw.home.join("config.yaml")).unwrap();
    gw.write_config(&format!("max_message_bytes: 4096\n{config}"));
    gw.start_in_process();
    let mut other = gw.client();
    other.initialize();
    let mut client = gw.client();
    client.initialize();

    let ping = |client: &mut Client, n: i64| {
        let reply = client.request(json!(1000 + n), "ping", json!({}));
        assert_eq!(reply["result"], json!({}), "{reply}");
    };

    client.send_raw(b"{not json\n");
    let reply = client.recv_within(TIMEOUT).unwrap();
    assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (Value::Null, json!(-32700)), "{reply}");
    ping(&mut client, 1);

    client.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"x\":\"\xff\xfe\"}\n");
    let reply = client.recv_within(TIMEOUT).unwrap();
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("UTF-8"), "{reply}");
    ping(&mut client, 2);

    let mut huge = b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\",\"pad\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10_000));
    huge.extend(b"\"}\n");
    client.send_raw(&huge);
    let reply = client.recv_within(TIMEOUT).unwrap();
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("4096"), "{reply}");
    ping(&mut client, 3);

    client.send(&json!({"jsonrpc": "2.0", "id": {"not": "an id"}, "method": "ping"}));
    assert_eq!(client.recv_within(TIMEOUT).unwrap()["error"]["code"], -32600);

    let reply = client.request(json!(7), "no/such/method", json!({}));
    assert_eq!(reply["error"]["code"], -32601, "{reply}");

    let reply = client.call_tool(json!(8), "fx__ecoh", json!({}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("fx__ecoh") && message.contains("did you mean `fx__echo`"), "{message}");

    let reply = client.request(json!(9), "prompts/get", json!({"name": "nope"}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let reply = client.request(json!(10), "resources/read", json!({"uri": "nowhere://x"}));
    assert_eq!(reply["error"]["code"], -32002, "{reply}");
    let reply = client.request(json!(11), "tools/list", json!({"cursor": "bogus"}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");

    let reply = client.request(json!(12), "server/discover", json!({}));
    assert_eq!(reply["error"]["code"], -32601, "{reply}");

    // A batch is answered with a batch.
    client.send(&json!([
        {"jsonrpc": "2.0", "id": "b1", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b2", "method": "tools/call", "params": {"name": "fx__echo", "arguments": {"message": "batched"}}}
    ]));
    let batch = client.recv_within(TIMEOUT).unwrap();
    let batch = batch.as_array().unwrap_or_else(|| panic!("expected a batch reply, got {batch}"));
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0]["id"], "b1");
    assert_eq!(first_text(&batch[1]), "a: batched");

    // Through all of that, the other session saw nothing and still works.
    assert!(other.recv_within(Duration::from_millis(200)).is_none());
    let reply = other.call_tool(json!(1), "fx__echo", json!({"message": "still here"}));
    assert_eq!(first_text(&reply), "a: still here");
}

#[test]
fn ids_come_back_exactly_as_sent() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    gw.start_in_process();
    let mut a = gw.client();
    let mut b = gw.client();
    a.initialize();
    b.initialize();
    // The same ids in two sessions, a number and a string that look alike, all in flight at once.
    for client in [&mut a, &mut b] {
        client.send(&json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":0.3}}}));
        client.send(&json!({"jsonrpc":"2.0","id":"7","method":"tools/call","params":{"name":"fx__echo","arguments":{"message":"string seven"}}}));
        client.send(&json!({"jsonrpc":"2.0","id":7.5,"method":"ping"}));
    }
    for client in [&mut a, &mut b] {
        let number = client.response(&json!(7));
        let string = client.response(&json!("7"));
        let float = client.response(&json!(7.5));
        assert_eq!(first_text(&number), "slow done: ");
        assert_eq!(first_text(&string), "a: string seven");
        assert!(number["id"].is_u64() && string["id"].is_string() && float["id"].is_f64());
        assert!(client.recv_within(Duration::from_millis(100)).is_none(), "nothing extra: {:?}", client.stash);
    }
}

#[test]
fn garbage_from_a_backend_is_dropped_and_the_call_still_works() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "fx__garbage", json!({}));
    assert_eq!(first_text(&reply), "after garbage");
    let log = gw.daemon_log();
    assert!(log.contains("not JSON"), "{log}");
    assert!(log.contains("unknown or cancelled request id"), "{log}");
    let reply = client.call_tool(json!(2), "fx__echo", json!({"message": "ok"}));
    assert_eq!(first_text(&reply), "a: ok");
}

#[test]
fn a_crashed_backend_gives_a_clear_error_and_restarts_on_next_use() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let first_pid = {
        client.call_tool(json!(1), "fx__echo", json!({"message": "up"}));
        gw.processes().into_iter().find(|p| p.cmdline.contains("fixture_server.py")).unwrap().pid
    };
    let reply = client.call_tool(json!(2), "fx__crash", json!({}));
    let message = reply["error"]["message"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(message.contains("`fx`") && message.contains("exit code 3"), "{message}");
    assert!(message.contains("crashing on purpose"), "stderr tail quoted: {message}");
    let reply = client.call_tool(json!(3), "fx__echo", json!({"message": "again"}));
    assert_eq!(first_text(&reply), "a: again");
    let pids: Vec<i32> =
        gw.processes().into_iter().filter(|p| p.cmdline.contains("fixture_server.py")).map(|p| p.pid).collect();
    assert_eq!(pids.len(), 1);
    assert_ne!(pids[0], first_pid);
}

#[test]
fn a_missing_command_is_a_clear_error_not_a_dead_session() {
    let mut gw = TestGateway::with_servers(&[
        ("broken", "    command: /nonexistent/mcp-server\n".to_string()),
        ("fx", fixture_server("a")),
    ]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    // The broken server is left out of the list; the good one is there.
    let names = client.tool_names();
    assert!(names.contains(&"fx__echo".to_string()), "{names:?}");
    assert!(gw.daemon_log().contains("/nonexistent/mcp-server"), "{}", gw.daemon_log());
    let reply = client.call_tool(json!(1), "fx__echo", json!({"message": "fine"}));
    assert_eq!(first_text(&reply), "a: fine");
}

/// The fixture's record of the backend-side ids it was told were cancelled.
fn cancelled_at_backend(client: &mut Client, id: i64) -> Vec<Value> {
    let reply = client.call_tool(json!(id), "fx__cancelled", json!({}));
    serde_json::from_str(first_text(&reply)).unwrap()
}

#[test]
fn cancellation_reaches_the_backend_and_the_late_answer_is_dropped() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    client.send(&json!({"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":1}}}));
    assert!(wait_until(TIMEOUT, || status(&gw)["backends"][0]["in_flight"] == 1));
    client.send(
        &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"test"}}),
    );
    let mut seen = Vec::new();
    assert!(wait_until(TIMEOUT, || {
        seen = cancelled_at_backend(&mut client, 100 + seen.len() as i64);
        !seen.is_empty()
    }));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].is_u64(), "the backend saw the gateway's own id, not the client's: {seen:?}");
    // The slow call finishes at the backend after 1 s; its answer must not reach the client.
    std::thread::sleep(Duration::from_millis(1500));
    while let Some(message) = client.recv_within(Duration::from_millis(100)) {
        assert_ne!(message["id"], "slow", "late answer leaked: {message}");
    }
    let status = status(&gw);
    assert_eq!(status["backends"][0]["in_flight"], 0, "{status}");
}

fn status(gw: &TestGateway) -> Value {
    let out = gw.command(DAEMON).args(["status", "--json"]).output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_disconnecting_session_cancels_its_calls() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    gw.start();
    let mut watcher = gw.client();
    watcher.initialize();
    watcher.call_tool(json!(1), "fx__echo", json!({"message": "warm"}));
    let mut leaving = gw.client();
    leaving.initialize();
    leaving.send(
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__slow","arguments":{"seconds":30}}}),
    );
    // Wait until the call is in flight at the backend, then drop the client.
    let status = || status(&gw);
    assert!(wait_until(TIMEOUT, || status()["backends"][0]["in_flight"] == 1));
    drop(leaving);
    let mut n = 10;
    assert!(wait_until(TIMEOUT, || {
        n += 1;
        !cancelled_at_backend(&mut watcher, n).is_empty()
    }));
    assert!(wait_until(TIMEOUT, || status()["backends"][0]["in_flight"] == 0
        && status()["sessions"].as_array().unwrap().len() == 1));
}

#[test]
fn connections_from_other_users_are_refused() {
    // Socket activation lets the socket live in a directory another user can reach,
    // which is exactly when the SO_PEERCRED check is the only guard. (Reach, not
    // write: the owner's shim refuses a directory others could write to.)
    let gw = TestGateway::new();
    let dir = gw.dir.path().join("open");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(gw.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("gw.sock");
    let mut activator = gw
        .command("systemd-socket-activate")
        .args([
            "-l",
            socket.to_str().unwrap(),
            "--fdname=gateway",
            "-E",
            "MCP_GATEWAY_HOME",
            "-E",
            "MCP_GATEWAY_TEST_TAG",
            DAEMON,
            "serve",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(gw.stderr_path()).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_until(TIMEOUT, || socket.exists()));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = format!(
        "import socket,json; s=socket.socket(socket.AF_UNIX); s.connect({:?}); \
         s.sendall(b'{{\"mcp_gateway_preamble\":1}}\\n'); print(s.makefile().readline())",
        socket.display().to_string()
    );
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.contains("connections from uid 65534 are refused"),
        "stdout {reply} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The owner is served by the same socket-activated daemon.
    let mut client = gw.client_with(&["--no-autostart", "--socket", socket.to_str().unwrap()]);
    assert!(client.initialize()["result"].is_object());
    signal(activator.id() as i32, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_until(TIMEOUT, || matches!(activator.try_wait(), Ok(Some(_)))));
    assert!(gw.daemon_log().contains("listening socket passed by the service manager"), "{}", gw.daemon_log());
}

#[test]
fn concurrent_shims_start_exactly_one_daemon() {
    let gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    let mut clients: Vec<Client> = (0..4).map(|_| gw.client_with(&[])).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let reply = client.initialize();
        assert!(reply["result"].is_object(), "{reply}");
        let reply = client.call_tool(json!(i), "fx__echo", json!({"message": format!("c{i}")}));
        assert_eq!(first_text(&reply), format!("a: c{i}"));
    }
    // The daemons that lost the race exit at once; one serves everybody.
    let daemons = || gw.processes().into_iter().filter(|p| p.cmdline.contains("mcp-gateway serve")).count();
    assert!(wait_until(TIMEOUT, || daemons() == 1), "{:?}", gw.processes());
    assert_eq!(gw.count("fixture_server.py"), 1);
    let log = std::fs::read_to_string(gw.home.join("daemon.log")).unwrap();
    assert!(log.contains("listening"), "autostarted daemon logs to the gateway home: {log}");
    // Stop it through the CLI once the clients are gone (attached shims would
    // start a new one); the backend goes with it.
    for client in clients {
        assert!(client.finish().success());
    }
    let out = gw.command(DAEMON).arg("stop").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(wait_until(TIMEOUT, || gw
        .processes()
        .iter()
        .all(|p| !p.cmdline.contains("mcp-gateway serve") && !p.cmdline.contains("fixture_server"))));
}

#[test]
fn tools_list_paginates() {
    let mut gw = TestGateway::with_servers(&[("a", fixture_server("a")), ("b", fixture_server("b"))]);
    let config = std::fs::read_to_string(gw.home.join("config.yaml")).unwrap();
    gw.write_config(&format!("page_size: 3\n{config}"));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let names = client.tool_names();
    // Every tool of both servers, once, in config order, across pages of 3.
    let per_server = names.iter().filter(|n| n.starts_with("a__")).count();
    assert!(per_server > 3, "{names:?}");
    assert_eq!(names.len(), 2 * per_server, "{names:?}");
    assert_eq!(names.iter().collect::<std::collections::HashSet<_>>().len(), names.len(), "{names:?}");
    assert_eq!(names[0], "a__echo");
    assert_eq!(names[per_server], "b__echo");
    assert_eq!(first_text(&client.call_tool(json!(1), "b__echo", json!({"message": "x"}))), "b: x");
}

#[test]
fn backends_die_with_a_daemon_killed_by_sigkill() {
    // "linger": the fixture ignores the end of its stdin, so only the
    // parent-death signal can stop it.
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("linger"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "fx__echo", json!({"message": "x"}))), "linger: x");
    assert_eq!(gw.count("fixture_server.py"), 1);
    let mut daemon = gw.daemon.take().unwrap();
    daemon.kill().unwrap(); // SIGKILL: no shutdown code runs.
    daemon.wait().unwrap();
    drop(client);
    assert!(
        wait_until(TIMEOUT, || gw.count("fixture_server.py") == 0),
        "backend outlived its daemon: {:?}",
        gw.processes()
    );
}

/// A stand-in for the daemon of an older release: it answers the preamble as
/// version 0.0.1, logs each control command it gets, and exits on `stop`.
const OLD_DAEMON: &str = r#"
import json, os, socket, sys
path, log = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(16)
while True:
    conn, _ = server.accept()
    stream = conn.makefile("rwb")
    line = stream.readline()
    if not line:  # a probe that only connected
        conn.close()
        continue
    preamble = json.loads(line)
    with open(log, "a") as f:
        f.write(f"{preamble.get('control')}\n")
    stream.write(json.dumps({"mcp_gateway_preamble": 1, "gateway_version": "0.0.1"}).encode() + b"\n")
    stream.flush()
    conn.close()
    if preamble.get("control") == "stop":
        os.unlink(path)
        sys.exit(0)
"#;

#[test]
fn a_shim_replaces_a_daemon_older_than_itself() {
    let gw = TestGateway::with_servers(&[("fx", fixture_server("a"))]);
    let log = gw.dir.path().join("old-daemon.log");
    let mut old = std::process::Command::new("python3")
        .args(["-c", OLD_DAEMON])
        .arg(&gw.socket)
        .arg(&log)
        .envs(gw.env())
        .spawn()
        .unwrap();
    assert!(wait_until(TIMEOUT, || std::os::unix::net::UnixStream::connect(&gw.socket).is_ok()));

    let mut client = gw.client_with(&[]);
    let reply = client.initialize();
    assert!(reply["result"].is_object(), "{reply}");
    let reply = client.call_tool(json!(1), "fx__echo", json!({"message": "new"}));
    assert_eq!(first_text(&reply), "a: new", "served by a current daemon");
    assert!(wait_until(TIMEOUT, || matches!(old.try_wait(), Ok(Some(_)))), "the old daemon was stopped");
    let asked = std::fs::read_to_string(&log).unwrap();
    assert_eq!(asked.lines().collect::<Vec<_>>(), ["None", "stop"], "one session attempt, then `stop`: {asked}");
    assert_eq!(status(&gw)["version"], env!("CARGO_PKG_VERSION"));

    assert!(client.finish().success());
    let out = gw.command(DAEMON).arg("stop").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_daemon_runs_on_one_worker_thread_unless_told_otherwise() {
    // One is the default (BENCHMARKS.md: cheaper per call than one per core).
    let mut gw = TestGateway::new();
    gw.start();
    assert_eq!(status(&gw)["worker_threads"], 1);
    gw.stop();

    let mut gw = TestGateway::new();
    gw.daemon_env.push(("MCP_GATEWAY_WORKER_THREADS".into(), "3".into()));
    gw.start();
    assert_eq!(status(&gw)["worker_threads"], 3);
    let mut client = gw.client();
    assert!(client.initialize()["result"].is_object());
    gw.stop();

    // A number that is not one is refused, with the option it is for.
    let gw = TestGateway::new();
    let out = gw
        .command(DAEMON)
        .env("MCP_GATEWAY_WORKER_THREADS", "none")
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--worker-threads") && stderr.contains("none"), "{stderr}");
}
