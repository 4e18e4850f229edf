//! Backends that outlive their daemon: process chains whose members ignore the
//! end of their stdin and SIGTERM, left behind by a daemon killed with SIGKILL.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::{self, TestGateway, first_text, wait_until};

/// A backend that is `sh` → `sh` → the fixture server, where the server (and
/// with `trap_term` the inner shell too) ignores SIGTERM, and the server
/// ignores the end of its stdin (`linger`): only SIGKILL stops it.
fn chain(trap_term: bool) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    let trap = if trap_term { "trap \\\"\\\" TERM; " } else { "" };
    // The trailing `; true` keeps each shell from exec'ing its last command,
    // so the chain really is three processes deep.
    let inner = format!("{trap}python3 {} linger; true", script.display());
    format!("    command: sh\n    args: [\"-c\", \"sh -c '{inner}'; true\"]\n")
}

/// The test's processes of the chains (each of their three runs the fixture).
fn chains(gw: &TestGateway) -> Vec<common::Proc> {
    gw.processes().into_iter().filter(|p| p.cmdline.contains("fixture_server.py")).collect()
}

/// SIGKILLs the daemon (no shutdown code runs) and lets its client go: what
/// takes the chains down from here is their guard.
fn kill_daemon(gw: &mut TestGateway, client: common::Client) {
    let mut daemon = gw.daemon.take().expect("daemon");
    daemon.kill().expect("SIGKILL the daemon");
    daemon.wait().expect("reap the daemon");
    drop(client);
}

#[test]
fn a_sigkilled_daemon_takes_whole_backend_process_groups_with_it() {
    let mut gw = TestGateway::with_servers(&[("deaf", chain(true)), ("stubborn", chain(false))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "deaf__echo", json!({"message": "x"}))), "linger: x");
    assert_eq!(first_text(&client.call_tool(json!(2), "stubborn__echo", json!({"message": "y"}))), "linger: y");
    assert_eq!(chains(&gw).len(), 6, "two chains of sh → sh → server: {:?}", gw.processes());
    // One guard for both backends' groups (a process of its own session: not
    // among the test's tagged processes, so found as the daemon's child).
    let guards = common::guards_of(gw.daemon.as_ref().expect("daemon").id() as i32);
    assert_eq!(guards.len(), 1, "one guard for the daemon's backends: {guards:?}");

    kill_daemon(&mut gw, client);
    assert!(
        wait_until(Duration::from_secs(15), || chains(&gw).is_empty()),
        "backend processes outlived their SIGKILLed daemon: {:?}",
        chains(&gw)
    );
    assert!(wait_until(common::TIMEOUT, || gw.processes().is_empty()), "left behind: {:?}", gw.processes());
    let guard = format!("/proc/{}", guards[0]);
    assert!(
        wait_until(common::TIMEOUT, || !std::path::Path::new(&guard).exists()
            || std::fs::read_to_string(format!("{guard}/stat")).is_ok_and(|stat| stat.contains(") Z"))),
        "the guard outlived its work"
    );
}

/// A guard killed by hand is replaced by the next backend's start, and the new
/// one is told every group that still exists, the earlier backend's included.
#[test]
fn a_guard_that_is_gone_is_replaced_and_told_every_group() {
    let mut gw = TestGateway::with_servers(&[("one", chain(false)), ("two", chain(false))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "one__echo", json!({"message": "x"}))), "linger: x");
    let daemon_pid = gw.daemon.as_ref().expect("daemon").id() as i32;
    let first = common::guards_of(daemon_pid);
    assert_eq!(first.len(), 1, "{first:?}");
    common::signal(first[0], nix::sys::signal::Signal::SIGKILL);
    assert!(
        wait_until(common::TIMEOUT, || common::guards_of(daemon_pid).is_empty()),
        "the killed guard was not reaped"
    );

    assert_eq!(first_text(&client.call_tool(json!(2), "two__echo", json!({"message": "y"}))), "linger: y");
    let second = common::guards_of(daemon_pid);
    assert_eq!(second.len(), 1, "a new guard for the new backend: {second:?}");
    assert_eq!(chains(&gw).len(), 6, "{:?}", gw.processes());
    kill_daemon(&mut gw, client);
    assert!(
        wait_until(Duration::from_secs(15), || chains(&gw).is_empty()),
        "the new guard did not take the first backend's group down: {:?}",
        chains(&gw)
    );
}
