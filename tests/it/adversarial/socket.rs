//! Another user on the same machine: a squatted socket directory, a listener of
//! another uid, a planted symlink; and what the socket's clients do when the
//! daemon goes away (a refused preamble, an outage, a deliberate stop).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::{self, DAEMON, SHIM, TestGateway, wait_until};

/// The uid the tests act as when they play the other user.
const NOBODY: u32 = 65534;

/// A listener run by another user: records every connection and every byte
/// it is sent (a squatter collecting preambles, which carry the client's
/// environment).
const SQUATTER: &str = r#"
import socket, sys
path, log = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(16)
open(log + ".ready", "w").close()
while True:
    conn, _ = server.accept()
    with open(log, "ab") as f:
        f.write(b"connected\n")
    conn.settimeout(5)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            with open(log, "ab") as f:
                f.write(data)
    except OSError:
        pass
    conn.close()
"#;

/// A temporary directory other users can traverse (the test's own are 0700).
fn shared_base() -> tempfile::TempDir {
    let base = tempfile::Builder::new().prefix("mcpgw-adv-").tempdir().expect("tempdir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod base");
    base
}

/// A directory owned by the other user, as if they had created it first.
fn squatted_dir(base: &Path) -> PathBuf {
    let dir = base.join("squatted");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    nix::unistd::chown(&dir, Some(NOBODY.into()), Some(NOBODY.into())).expect("chown");
    dir
}

/// Runs the squatter as uid 65534 on `socket`; waits until it listens.
fn squat(socket: &Path, log: &Path) -> KillOnDrop {
    let child = Command::new("setpriv")
        .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into()])
        // The system's Python: the test's own may live where uid 65534 cannot go.
        .args(["/usr/bin/python3", "-c", SQUATTER])
        .arg(socket)
        .arg(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("setpriv python3");
    let guard = KillOnDrop(child);
    let mut ready = log.as_os_str().to_os_string();
    ready.push(".ready");
    let ready = PathBuf::from(ready);
    assert!(wait_until(Duration::from_secs(10), || ready.exists()), "the squatter did not start listening");
    guard
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A socket bound by the other user, moved into a private directory of this
/// user's (only `SO_PEERCRED` can tell): the socket, the squatter's log, and
/// the squatter.
fn foreign_listener_in_own_dir(gw: &TestGateway, base: &Path) -> (PathBuf, PathBuf, KillOnDrop) {
    let squatted = squatted_dir(base);
    let log = squatted.join("received");
    let squatter = squat(&squatted.join("gateway.sock"), &log);
    let ours = gw.dir.path().join("ours");
    std::fs::create_dir(&ours).expect("mkdir");
    std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let socket = ours.join("gateway.sock");
    std::fs::rename(squatted.join("gateway.sock"), &socket).expect("move the squatter's socket");
    (socket, log, squatter)
}

/// The squatter saw a connection (that is how its uid was learnt) and no byte.
/// It reads until the client hangs up, which it has by now.
fn assert_connected_and_got_nothing(log: &Path) {
    let received = || String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    assert!(wait_until(Duration::from_secs(10), || received().starts_with("connected\n")), "{}", received());
    assert_eq!(received().replace("connected\n", ""), "", "the squatter got bytes");
}

/// Runs a shim (autostart allowed) on `socket` with a secret in its
/// environment and an `initialize` on its stdin; returns its exit status and stderr.
fn run_shim(gw: &TestGateway, socket: &Path) -> (std::process::ExitStatus, String) {
    let stderr = gw.dir.path().join("squatted-shim.stderr");
    let mut child = gw
        .command(SHIM)
        .env("MCP_GATEWAY_SOCKET", socket)
        .env("MCP_GATEWAY_CONNECT_TIMEOUT", "3")
        .env("SQUAT_PROBE_SECRET", "sk-live-do-not-leak")
        .current_dir(gw.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr"))
        .spawn()
        .expect("spawn shim");
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let _ = child.stdin.as_mut().expect("stdin").write_all(format!("{initialize}\n").as_bytes());
    let mut status = None;
    let exited = wait_until(Duration::from_secs(20), || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "the shim did not give up: {}", std::fs::read_to_string(&stderr).unwrap_or_default());
    (status.expect("exited"), std::fs::read_to_string(&stderr).unwrap_or_default())
}

#[test]
fn a_shim_sends_nothing_into_a_socket_directory_another_user_owns() {
    let gw = TestGateway::new();
    let base = shared_base();
    let dir = squatted_dir(base.path());
    let socket = dir.join("gateway.sock");
    let log = dir.join("received");
    let _squatter = squat(&socket, &log);

    let (status, stderr) = run_shim(&gw, &socket);
    assert!(!status.success(), "the shim must fail: {stderr}");
    assert!(stderr.contains(&format!("owned by uid {NOBODY}")), "says what is wrong: {stderr}");
    assert!(stderr.contains("Remove it") && stderr.contains("XDG_RUNTIME_DIR"), "says how to fix it: {stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    let received = std::fs::read(&log).unwrap_or_default();
    assert!(received.is_empty(), "the squatter got: {}", String::from_utf8_lossy(&received));
    assert!(!gw.home.join("daemon.log").exists(), "no daemon was autostarted into the squatted directory");
    assert_eq!(gw.count(" serve"), 0, "no daemon was autostarted: {:?}", gw.processes());
}

#[test]
fn a_shim_sends_nothing_to_a_listener_of_another_uid_in_its_own_directory() {
    // The directory is the user's and private, but the socket in it was bound
    // by another uid (moved there): only SO_PEERCRED tells.
    let gw = TestGateway::new();
    let base = shared_base();
    let (socket, log, _squatter) = foreign_listener_in_own_dir(&gw, base.path());

    let (status, stderr) = run_shim(&gw, &socket);
    assert!(!status.success(), "the shim must fail: {stderr}");
    assert!(stderr.contains(&format!("runs as uid {NOBODY}")), "says what is wrong: {stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_connected_and_got_nothing(&log);
    assert_eq!(gw.count(" serve"), 0, "no daemon was autostarted: {:?}", gw.processes());
}

#[test]
fn control_commands_send_nothing_to_a_listener_of_another_uid() {
    // `mcp-gateway status`, `stop`, `doctor`: a squatter could fake their answers
    // (a clean status, a healthy doctor), so they refuse it as the shim does.
    let gw = TestGateway::new();
    let base = shared_base();
    let (socket, log, _squatter) = foreign_listener_in_own_dir(&gw, base.path());

    for command in [&["status"][..], &["stop"], &["doctor"]] {
        let out = gw.command(DAEMON).env("MCP_GATEWAY_SOCKET", &socket).args(command).output().expect("run");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{command:?} must fail: {said}");
        assert!(said.contains(&format!("runs as uid {NOBODY}")), "{command:?} says what is wrong: {said}");
    }
    assert_connected_and_got_nothing(&log);
}

#[test]
fn the_daemon_refuses_a_symlink_planted_for_its_socket_directory() {
    let gw = TestGateway::new();
    let target = gw.dir.path().join("elsewhere");
    std::fs::create_dir(&target).expect("mkdir");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Named like the gateway's own directory, which the daemon tightens to 0700.
    let link = gw.dir.path().join("mcp-gateway-planted");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let socket = link.join("gateway.sock");

    let stderr_path = gw.dir.path().join("planted.stderr");
    let mut daemon = gw
        .command(DAEMON)
        .env("MCP_GATEWAY_SOCKET", &socket)
        .arg("serve")
        .current_dir(gw.dir.path())
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr"))
        .spawn()
        .expect("run the daemon");
    let mut status = None;
    let exited = wait_until(Duration::from_secs(20), || {
        status = daemon.try_wait().expect("wait");
        status.is_some()
    });
    if !exited {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(exited, "the daemon listened through the planted symlink: {stderr}");
    assert!(!status.expect("exited").success(), "the daemon must refuse: {stderr}");
    assert!(stderr.contains("is a symbolic link") && stderr.contains(&link.display().to_string()), "{stderr}");
    let mode = std::fs::metadata(&target).expect("target").mode() & 0o7777;
    assert_eq!(mode, 0o755, "the symlink's target was not chmodded");
    assert_eq!(std::fs::read_dir(&target).expect("target").count(), 0, "nothing was created in the target");
}

#[test]
fn a_refused_preamble_names_the_position_never_the_value() {
    let mut gw = TestGateway::new();
    gw.start();
    let secret = "sk-live-preamble-SECRET-4242";
    let stream = std::os::unix::net::UnixStream::connect(&gw.socket).expect("connect");
    stream.set_read_timeout(Some(common::TIMEOUT)).expect("timeout");
    let preamble = format!("{{\"mcp_gateway_preamble\":1,\"client_pid\":\"{secret}\"}}\n");
    (&stream).write_all(preamble.as_bytes()).expect("send");
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).expect("reply");
    assert!(!reply.contains(secret), "the reply quotes the secret: {reply}");
    assert!(reply.contains("line 1 column"), "the reply names the position: {reply}");
    assert!(wait_until(common::TIMEOUT, || gw.daemon_log().contains("refused a connection")), "{}", gw.daemon_log());
    let log = gw.daemon_log();
    assert!(!log.contains(secret), "the daemon log quotes the secret:\n{log}");
    assert!(log.contains("line 1 column"), "the log names the position:\n{log}");
}

#[test]
fn a_shim_that_gives_up_answers_the_request_it_had_queued() {
    let mut gw = TestGateway::with_servers(&[("fx", common::fixture_server("a"))]);
    gw.extra_env.push(("MCP_GATEWAY_CONNECT_TIMEOUT".into(), "2".into()));
    gw.start();
    let mut client = gw.client(); // --no-autostart
    client.initialize();
    let mut daemon = gw.daemon.take().expect("daemon");
    daemon.kill().expect("kill");
    daemon.wait().expect("reap");
    let stderrs = || {
        std::fs::read_dir(gw.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("shim-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>()
    };
    assert!(wait_until(common::TIMEOUT, || stderrs().contains("reconnecting")), "{}", stderrs());
    // Queued: there is no connection to send it on.
    let answer = client.request(json!(5), "tools/list", json!({}));
    assert_eq!(answer["id"], json!(5));
    let message = answer["error"]["message"].as_str().unwrap_or_else(|| panic!("an error: {answer}"));
    assert!(message.contains("could not reconnect") && message.contains("not sent"), "{message}");
    let mut status = None;
    assert!(wait_until(common::TIMEOUT, || {
        status = client.child.try_wait().expect("wait");
        status.is_some()
    }));
    assert!(!status.expect("exited").success(), "it gave up: {}", stderrs());
}

#[test]
fn stop_means_stop_for_running_autostart_shims() {
    let mut gw = TestGateway::with_servers(&[("fx", common::fixture_server("a"))]);
    gw.start();
    let mut client = gw.client_with(&[]); // autostart allowed
    client.initialize();
    assert_eq!(common::first_text(&client.call_tool(json!(1), "fx__echo", json!({"message": "x"}))), "a: x");

    let stop = gw.command(DAEMON).arg("stop").output().expect("mcp-gateway stop");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let mut old = gw.daemon.take().expect("daemon");
    old.wait().expect("reap the stopped daemon");

    // The next call is answered, with how to start the gateway, and nothing
    // brought the daemon back.
    let answer = client.call_tool(json!(2), "fx__echo", json!({"message": "y"}));
    let message = answer["error"]["message"].as_str().unwrap_or_else(|| panic!("an error: {answer}"));
    assert!(message.contains("mcp-gateway stop") && message.contains("mcp-gateway serve"), "{message}");
    assert!(std::os::unix::net::UnixStream::connect(&gw.socket).is_err(), "a daemon was started again");
    assert_eq!(gw.count(" serve"), 0, "a daemon was started again: {:?}", gw.processes());

    // Started again deliberately: the same shim carries on.
    gw.start();
    assert_eq!(common::first_text(&client.call_tool(json!(3), "fx__echo", json!({"message": "z"}))), "a: z");
}
