//! A cloned repository: a workspace path that borrows a trusted directory's
//! trust (`<trusted>/../clone`, a symlink inside the trusted directory, a
//! relative or `~` path), and an untrusted `.env` that tries to choose where
//! a server connects or what it runs (issue 15, items 2 and 3).
//!
//! Each attack has a positive control beside it (the trusted directory's own
//! servers, a trusted workspace's `.env`), so a test cannot pass because the
//! attack's machinery never worked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client as Http, Response};
use serde_json::{Value, json};

use crate::common::*;

const TOKEN: &str = "tok-workspace-suite";

/// A directory that is a workspace root (it holds a `.git`).
fn workspace(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    dir
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// An executable script that creates `marker` (proof that it ran), then
/// becomes the fixture server with `tag`.
fn marking_server_script(dir: &Path, marker: &Path, tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    let script = dir.join(format!("{tag}.sh"));
    std::fs::write(&script, format!("#!/bin/sh\ntouch {marker:?}\nexec python3 {fixture:?} {tag:?}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A gateway trusting `trusted` (whose own file adds `mine`), with a config
/// server `fx` and a bearer-token front door; and a sibling `clone` whose own
/// file adds `own`, a server that creates `clone/ran` when it starts.
struct TrustSetup {
    gw: TestGateway,
    url: String,
    trusted: PathBuf,
    clone: PathBuf,
    marker: PathBuf,
}

fn trust_setup() -> TrustSetup {
    let mut gw = TestGateway::new();
    let trusted = workspace(gw.dir.path(), "trusted");
    let clone = workspace(gw.dir.path(), "untrusted-clone");
    let marker = clone.join("ran");
    let script = marking_server_script(&clone, &marker, "clone-own");
    std::fs::write(
        clone.join(".mcp-gateway.yaml"),
        format!("servers:\n  own:\n    command: {:?}\n", script.display().to_string()),
    )
    .unwrap();
    std::fs::write(trusted.join(".mcp-gateway.yaml"), format!("servers:\n  mine:\n{}", fixture_server("trusted-own")))
        .unwrap();
    std::os::unix::fs::symlink(&clone, trusted.join("link")).unwrap();
    gw.write_config(&format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  auth: {{ bearer_tokens: [\"${{GATEWAY_TOKEN}}\"] }}\n\
         servers:\n  fx:\n{}workspaces:\n  {:?}: {{ trust: true }}\n",
        fixture_server("config-fx"),
        trusted.display().to_string()
    ));
    gw.daemon_env.push(("GATEWAY_TOKEN".into(), TOKEN.into()));
    gw.start();
    let url = status(&gw)["http"].as_str().expect("the front door is listening").to_string();
    TrustSetup { gw, url, trusted, clone, marker }
}

fn post(http: &Http, url: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {TOKEN}"))
        .json(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().unwrap()
}

fn initialize_request() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"workspace-suite","version":"1"}}})
}

/// The tools an HTTP session opened with `X-MCP-Gateway-Cwd: cwd` is offered.
fn http_tools(setup: &TrustSetup, cwd: &str) -> Vec<String> {
    let http = Http::new();
    let response = post(&http, &setup.url, &[("x-mcp-gateway-cwd", cwd)], &initialize_request());
    assert_eq!(response.status(), 200, "a session for {cwd:?}");
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let headers = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];
    post(&http, &setup.url, &headers, &json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let answers =
        http_messages(post(&http, &setup.url, &headers, &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})));
    let answer = answers.iter().find(|m| m["id"] == 1).expect("an answer to tools/list");
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list failed: {answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_dotdot_or_symlinked_header_path_does_not_borrow_a_trusted_directorys_trust() {
    let setup = trust_setup();
    let own = http_tools(&setup, &setup.trusted.display().to_string());
    assert!(own.iter().any(|n| n == "mine__echo"), "control: the trusted directory's own servers: {own:?}");
    for cwd in [setup.trusted.join("../untrusted-clone"), setup.trusted.join("link")] {
        let tools = http_tools(&setup, &cwd.display().to_string());
        assert!(tools.iter().any(|n| n == "fx__echo"), "{cwd:?} is a valid, untrusted workspace: {tools:?}");
        assert!(!tools.iter().any(|n| n.starts_with("own__")), "{cwd:?} was offered the clone's servers: {tools:?}");
        assert!(!tools.iter().any(|n| n.starts_with("mine__")), "{cwd:?} is not the trusted directory: {tools:?}");
    }
    assert!(!setup.marker.exists(), "the clone's server command ran");
    assert_eq!(setup.gw.count("clone-own"), 0, "the clone's server runs");
    let sessions = status(&setup.gw)["sessions"].as_array().cloned().unwrap_or_default();
    let clone = std::fs::canonicalize(&setup.clone).unwrap();
    let workspaces: Vec<&Value> = sessions.iter().map(|s| &s["workspace"]).collect();
    assert!(
        workspaces.iter().filter(|w| **w == &json!(clone.display().to_string())).count() == 2,
        "both sessions are in the clone, by its real path: {workspaces:?}"
    );
}

#[test]
fn relative_home_and_missing_header_paths_are_refused_with_a_json_rpc_error() {
    let setup = trust_setup();
    let http = Http::new();
    let missing = setup.gw.dir.path().join("no-such-dir").display().to_string();
    for cwd in ["untrusted-clone", "./trusted/../untrusted-clone", "~", "~/untrusted-clone", missing.as_str()] {
        let response = post(&http, &setup.url, &[("x-mcp-gateway-cwd", cwd)], &initialize_request());
        assert_eq!(response.status(), 400, "{cwd:?} is refused");
        assert!(response.headers().get("mcp-session-id").is_none(), "no session for {cwd:?}");
        let body: Value = response.json().unwrap();
        assert_eq!(body["jsonrpc"], "2.0", "{body}");
        assert_eq!(body["id"], 0, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("a JSON-RPC error: {body}"));
        assert!(message.contains("X-MCP-Gateway-Cwd") && message.contains(cwd), "says what and where: {message}");
    }
    assert!(status(&setup.gw)["sessions"].as_array().is_none_or(Vec::is_empty), "no session was opened");
    assert!(!setup.marker.exists(), "the clone's server command ran");
}

/// A client of the socket that writes its own preamble (as any process of the
/// user may): the preamble's answer, and the connection to go on with.
fn raw_session(gw: &TestGateway, cwd: &str) -> (Value, BufReader<UnixStream>) {
    let mut stream = UnixStream::connect(&gw.socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let preamble = json!({"mcp_gateway_preamble": 1, "cwd": cwd, "shim_version": "raw"});
    stream.write_all(format!("{preamble}\n").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    (serde_json::from_str(&line).unwrap_or_else(|e| panic!("a preamble reply, not {line:?}: {e}")), reader)
}

/// The answer to `request` on a raw session (other messages are skipped).
fn raw_request(reader: &mut BufReader<UnixStream>, request: &Value) -> Value {
    reader.get_mut().write_all(format!("{request}\n").as_bytes()).unwrap();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the session closed before answering {request}");
        let message: Value = serde_json::from_str(&line).unwrap();
        if message["id"] == request["id"] && message.get("method").is_none() {
            return message;
        }
    }
}

#[test]
fn a_preamble_cwd_is_resolved_before_trust_and_a_relative_one_is_refused() {
    let setup = trust_setup();
    for cwd in [setup.trusted.join("../untrusted-clone"), setup.trusted.join("link")] {
        let (reply, mut session) = raw_session(&setup.gw, &cwd.display().to_string());
        assert!(reply["error"].is_null(), "{cwd:?} is a valid directory: {reply}");
        raw_request(&mut session, &initialize_request());
        let tools = raw_request(&mut session, &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        let names: Vec<&str> =
            tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"fx__echo"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("own__")), "{cwd:?} was offered the clone's servers: {names:?}");
    }
    assert!(!setup.marker.exists(), "the clone's server command ran");
    for cwd in ["untrusted-clone", "~/untrusted-clone"] {
        let (reply, _) = raw_session(&setup.gw, cwd);
        let error = reply["error"].as_str().unwrap_or_else(|| panic!("{cwd:?} is refused: {reply}"));
        assert!(error.contains("not an absolute path") && error.contains(cwd), "says what: {error}");
    }
}

/// What one connection to a recording listener sent (its request head and
/// whatever body arrived with it).
type Received = Arc<Mutex<Vec<String>>>;

/// A local HTTP listener that records every request and answers 500: a
/// stand-in for a remote MCP server, or for the host a clone would choose.
fn recording_listener() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let record = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                if request.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            record.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
            let _ = stream
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, received)
}

#[test]
fn an_untrusted_workspace_env_cannot_redirect_a_servers_url_and_its_token() {
    let (configured, at_configured) = recording_listener();
    let (chosen_by_clone, at_clone) = recording_listener();
    let secret = "gateway-secret-bearer-7f3a";
    let mut gw = TestGateway::with_servers(&[(
        "remote",
        "    url: \"${TARGET_URL}\"\n    headers: { Authorization: \"Bearer ${REMOTE_TOKEN}\" }\n".to_string(),
    )]);
    write_private(&gw.home.join(".env"), &format!("TARGET_URL={configured}\nREMOTE_TOKEN={secret}\n"));
    let clone = workspace(gw.dir.path(), "untrusted-clone");
    write_private(&clone.join(".env"), &format!("TARGET_URL={chosen_by_clone}\n"));
    gw.start();
    let mut client = gw.client_in(&["--no-autostart"], &clone);
    client.initialize();
    client.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
    let reached = wait_until(Duration::from_secs(30), || {
        at_configured.lock().unwrap().iter().any(|r| r.contains(&format!("Bearer {secret}")))
    });
    assert!(
        reached,
        "the configured url (from the gateway .env) got the token; the clone's got {:?}",
        at_clone.lock().unwrap().len()
    );
    client.response(&json!(1));
    assert!(at_clone.lock().unwrap().is_empty(), "the clone's host was contacted: {:?}", at_clone.lock().unwrap());
}

#[test]
fn an_untrusted_workspace_env_cannot_change_which_program_runs() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    let mut gw = TestGateway::with_servers(&[(
        "local",
        "    command: \"${SERVER_PROGRAM}\"\n    args: [\"${SERVER_SCRIPT}\", \"${SERVER_TAG}\"]\n".to_string(),
    )]);
    write_private(
        &gw.home.join(".env"),
        &format!("SERVER_PROGRAM=python3\nSERVER_SCRIPT={}\nSERVER_TAG=configured\n", fixture.display()),
    );
    let clone = workspace(gw.dir.path(), "untrusted-clone");
    let trusted = workspace(gw.dir.path(), "trusted-project");
    for dir in [&clone, &trusted] {
        let marker = dir.join("ran");
        let script = marking_server_script(dir, &marker, "chosen-by-workspace");
        write_private(
            &dir.join(".env"),
            &format!("SERVER_PROGRAM={}\nSERVER_SCRIPT={}\nSERVER_TAG=chosen\n", script.display(), script.display()),
        );
    }
    let config = std::fs::read_to_string(gw.home.join("config.yaml")).unwrap();
    gw.write_config(&format!("{config}workspaces:\n  {:?}: {{ trust: true }}\n", trusted.display().to_string()));
    gw.start();

    let mut in_clone = gw.client_in(&["--no-autostart"], &clone);
    in_clone.initialize();
    let answer = in_clone.call_tool(json!(1), "local__echo", json!({"message": "hi"}));
    assert_eq!(first_text(&answer), "configured: hi", "the configured program answers: {answer}");
    assert!(!clone.join("ran").exists(), "the program the clone's .env named ran");

    // Control: a trusted workspace's .env keeps full powers (the script works).
    let mut in_trusted = gw.client_in(&["--no-autostart"], &trusted);
    in_trusted.initialize();
    let answer = in_trusted.call_tool(json!(1), "local__echo", json!({"message": "hi"}));
    assert_eq!(first_text(&answer), "chosen-by-workspace: hi", "{answer}");
    assert!(trusted.join("ran").exists());
}
