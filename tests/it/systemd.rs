//! OS integration on Linux: socket activation and sd_notify through
//! `systemd-socket-activate` with a test-bound notify socket, and a real
//! `systemd --user` manager in a private mount namespace.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Stdio};
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

#[test]
fn a_real_systemd_user_manager_runs_the_units() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/user-manager.sh");
    let gw = TestGateway::new();
    let out = gw
        .command("unshare")
        .args(["-m", "--propagation", "private", "bash"])
        .arg(&script)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd"))
        .arg(gw.dir.path())
        .arg(DAEMON)
        .arg(SHIM)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
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
