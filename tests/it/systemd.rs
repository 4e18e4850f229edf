//! OS integration on Linux: socket activation and sd_notify through
//! `systemd-socket-activate` with a test-bound notify socket, and a real
//! `systemd --user` manager in a private mount namespace.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

/// Starts `systemd-socket-activate` for the daemon, with a notify socket the test reads.
fn activate(gw: &TestGateway, socket: &Path, notify: &Path, extra: &[&str]) -> Child {
    let mut args: Vec<String> = vec!["-l".into(), socket.display().to_string(), "--fdname=gateway".into()];
    for var in ["MCP_GATEWAY_HOME", "MCP_GATEWAY_TEST_TAG", "MCP_GATEWAY_LOG"] {
        args.extend(["-E".into(), var.into()]);
    }
    args.extend(["-E".into(), format!("NOTIFY_SOCKET={}", notify.display())]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([DAEMON.to_string(), "serve".to_string()]);
    gw.command("systemd-socket-activate")
        .args(&args)
        .current_dir(gw.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(gw.stderr_path()).unwrap())
        .spawn()
        .unwrap()
}

fn received(notify: &UnixDatagram, until: Duration, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let mut messages = Vec::new();
    let deadline = Instant::now() + until;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !done(&messages) {
        if let Ok(n) = notify.recv(&mut buf) {
            messages.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string));
        }
    }
    messages
}

#[test]
fn socket_activation_and_sd_notify_ready_status_watchdog_stopping() {
    let gw = TestGateway::with_servers(&[("fx", fixture_server("activated"))]);
    let socket = gw.dir.path().join("activated.sock");
    let notify_path = gw.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut activator = activate(&gw, &socket, &notify_path, &["-E", "WATCHDOG_USEC=400000"]);
    assert!(wait_until(TIMEOUT, || socket.exists()));
    let daemons = || gw.processes().iter().filter(|p| p.cmdline.starts_with(DAEMON)).count();
    assert_eq!(daemons(), 0, "nothing runs before the first connect");

    let mut client = gw.client_with(&["--no-autostart", "--socket", socket.to_str().unwrap()]);
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "fx__echo", json!({"message": "hi"}))), "activated: hi");
    let messages = received(&notify, TIMEOUT, |m| {
        m.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3
            && m.iter().any(|l| l.contains("backend(s) running") && l.contains("1 backend"))
    });
    assert_eq!(messages.first().map(String::as_str), Some("READY=1"), "{messages:?}");
    assert!(messages.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3, "{messages:?}");
    assert!(messages.iter().any(|l| l.starts_with("STATUS=") && l.contains("1 session(s)")), "{messages:?}");
    assert!(gw.daemon_log().contains("listening socket passed by the service manager"));

    // SIGHUP: RELOADING=1 (with the monotonic time) then READY=1.
    signal(activator.id() as i32, nix::sys::signal::Signal::SIGHUP);
    let messages = received(&notify, TIMEOUT, |m| {
        m.iter().any(|l| l == "RELOADING=1") && m.iter().skip_while(|l| *l != "RELOADING=1").any(|l| l == "READY=1")
    });
    assert!(messages.iter().any(|l| l.starts_with("MONOTONIC_USEC=")), "{messages:?}");
    let reloading = messages.iter().position(|l| l == "RELOADING=1").unwrap();
    assert!(messages[reloading..].iter().any(|l| l == "READY=1"), "{messages:?}");

    drop(client);
    signal(activator.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let messages = received(&notify, TIMEOUT, |m| m.iter().any(|l| l == "STOPPING=1"));
    assert!(messages.iter().any(|l| l == "STOPPING=1"), "{messages:?}");
    assert!(wait_until(TIMEOUT, || matches!(activator.try_wait(), Ok(Some(s)) if s.success())));
    assert!(wait_until(TIMEOUT, || gw.count("fixture_server.py activated") == 0));
}

#[test]
fn a_socket_activated_daemon_exits_when_idle_and_comes_back_on_connect() {
    let gw = TestGateway::new();
    gw.write_config(&format!(
        "idle_exit: 1s\nservers:\n  fx:\n{}    idle_timeout: 500ms\n",
        fixture_server("idle-exit")
    ));
    let socket = gw.dir.path().join("idle.sock");
    let notify_path = gw.dir.path().join("notify.sock");
    let _notify = UnixDatagram::bind(&notify_path).unwrap();
    let mut activator = activate(&gw, &socket, &notify_path, &[]);
    assert!(wait_until(TIMEOUT, || socket.exists()));
    let mut client = gw.client_with(&["--no-autostart", "--socket", socket.to_str().unwrap()]);
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "fx__echo", json!({"message": "x"}))), "idle-exit: x");
    assert!(client.finish().success());
    // No session, and the backend idles out: the daemon exits 0 by itself.
    assert!(wait_until(TIMEOUT, || matches!(activator.try_wait(), Ok(Some(s)) if s.success())), "{}", gw.daemon_log());
    assert!(gw.daemon_log().contains("exiting until the next connect"));
}

/// `tests/systemd/user-manager.sh` under a private mount namespace, for `gw`.
fn user_manager(gw: &TestGateway) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = gw.command("unshare");
    command
        .args(["-m", "--propagation", "private", "bash"])
        .arg(root.join("tests/systemd/user-manager.sh"))
        .arg(root.join("systemd"))
        .arg(gw.dir.path())
        .arg(DAEMON)
        .arg(SHIM)
        .arg(root.join("tests/fixtures/fixture_server.py"));
    command
}

#[test]
fn a_real_systemd_user_manager_runs_the_units() {
    let gw = TestGateway::new();
    let out = user_manager(&gw).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "harness failed:\n{stdout}\n{stderr}");
    for check in [
        "verify: clean",
        "socket: active",
        "service: active",
        "status: 1 session(s)",
        "echo: ok",
        "watchdog: restarted",
        "stop: no backend left",
        "install: socket enabled, active",
        "service status: installed, enabled, active",
        "installed: echo ok",
        "uninstall: removed, socket inactive, status exit 3",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(check)), "missing `{check}`:\n{stdout}\n{stderr}");
    }
}

/// The chaos test of `restart::` with systemd bringing the daemon back: the
/// socket unit keeps the listener while the daemon is SIGKILLed under calls in
/// flight, and the next connect (or `Restart=on-failure`) starts a new one.
#[test]
fn calls_in_flight_when_a_socket_activated_daemon_is_killed_are_answered_exactly_once() {
    let mut gw = TestGateway::new();
    let mut manager = user_manager(&gw).arg("hold").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(manager.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("hold: ") {
        line.clear();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "the harness ended before the socket was up: {}", gw.daemon_log());
    }
    // Shims and `status` reach the daemon through systemd's socket only.
    gw.extra_env.push(("MCP_GATEWAY_SOCKET".into(), line["hold: ".len()..].trim().to_string()));
    let mut clients: Vec<Client> = (0..crate::restart::SESSIONS).map(|_| gw.client_with(&["--no-autostart"])).collect();
    let counts = crate::restart::kill_under_calls(&gw, &mut clients, crate::restart::kills());
    eprintln!("restart (socket activation): {counts}");
    drop(clients);
    // Closing its stdin lets the harness stop the units and check for leftovers.
    drop(manager.stdin.take());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(manager.wait().unwrap().success(), "harness failed:\n{rest}\n{}", gw.daemon_log());
    eprintln!("{rest}");
    assert!(rest.lines().any(|l| l.starts_with("stop: no backend left")), "{rest}");
    // Every restart was one of the test's kills (none the watchdog's, say):
    // a daemon gone under the test unasked would close a probe unanswered.
    let starts = format!("daemon starts: {}", counts.kills + 1);
    assert!(rest.lines().any(|l| l == starts), "expected `{starts}`:\n{rest}");
    assert!(wait_until(TIMEOUT, || gw.processes().is_empty()), "left running: {:?}", gw.processes());
}
