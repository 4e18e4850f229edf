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

#[test]
fn a_sigkilled_daemon_takes_whole_backend_process_groups_with_it() {
    let mut gw = TestGateway::with_servers(&[("deaf", chain(true)), ("stubborn", chain(false))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "deaf__echo", json!({"message": "x"}))), "linger: x");
    assert_eq!(first_text(&client.call_tool(json!(2), "stubborn__echo", json!({"message": "y"}))), "linger: y");
    let chains = |gw: &TestGateway| {
        gw.processes().into_iter().filter(|p| p.cmdline.contains("fixture_server.py")).collect::<Vec<_>>()
    };
    assert_eq!(chains(&gw).len(), 6, "two chains of sh → sh → server: {:?}", gw.processes());

    let mut daemon = gw.daemon.take().expect("daemon");
    daemon.kill().expect("SIGKILL the daemon"); // No shutdown code runs.
    daemon.wait().expect("reap the daemon");
    drop(client);
    assert!(
        wait_until(Duration::from_secs(15), || chains(&gw).is_empty()),
        "backend processes outlived their SIGKILLed daemon: {:?}",
        chains(&gw)
    );
    assert!(wait_until(common::TIMEOUT, || gw.processes().is_empty()), "left behind: {:?}", gw.processes());
}
