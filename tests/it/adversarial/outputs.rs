//! Everything the gateway prints, read as someone looking for secrets (or for
//! the one line that says why a server died) would read it.

use std::process::Stdio;

use serde_json::json;

use crate::common::*;

/// What `mcp-gateway ARGS…` printed, stdout and stderr together.
fn cli_output(gw: &TestGateway, args: &[&str]) -> String {
    let out = gw.command(DAEMON).args(args).stdin(Stdio::null()).output().expect("run mcp-gateway");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A remote server's URL carries a password (`user:SECRET@`) and a token in
/// its query (`?token=SECRET`). Nothing the gateway prints may show either,
/// whether the server answers (the reachable one) or not (nothing listens at
/// the other): not the client-facing error, not `status --json`, not
/// `servers list`, not `logs SERVER`, not the daemon's debug log. The redacted
/// form must appear, so that the test tells redaction from silence.
#[test]
fn secrets_in_a_remote_url_appear_in_no_output() {
    let (live_port, dead_port) = (free_port(), free_port());
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "servers:\n  remote:\n    url: \"http://user:PASS-live-1@127.0.0.1:{live_port}/mcp?token=TOKEN-live-2&v=1\"\n  \
         dead:\n    url: \"http://user:PASS-dead-3@127.0.0.1:{dead_port}/mcp?token=TOKEN-dead-4\"\n"
    ));
    let _server = everything_over_http(&gw, live_port, "streamableHttp");
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let mut names = Vec::new();
    assert!(
        wait_until(TIMEOUT, || {
            names = client.tool_names();
            names.contains(&"remote__echo".to_string())
        }),
        "{names:?}\n{}",
        gw.daemon_log()
    );
    assert_eq!(first_text(&client.call_tool(json!(1), "remote__echo", json!({"message": "hi"}))), "Echo: hi");
    // The unreachable server: a call names why it is unavailable.
    let refused = client.call_tool(json!(2), "dead__echo", json!({"message": "hi"}));
    let client_error = refused["error"]["message"].as_str().unwrap_or_else(|| panic!("no error in {refused}"));
    let dead_shown = format!("http://***@127.0.0.1:{dead_port}/mcp?token=***");
    assert!(client_error.contains(&dead_shown), "the client is told where the gateway failed to connect: {refused}");

    let outputs = [
        ("the client-facing error", refused.to_string()),
        ("status --json", cli_output(&gw, &["status", "--json"])),
        ("status", cli_output(&gw, &["status"])),
        ("servers list", cli_output(&gw, &["servers", "list"])),
        ("servers list --json", cli_output(&gw, &["servers", "list", "--json"])),
        ("logs remote", cli_output(&gw, &["logs", "remote"])),
        ("logs dead", cli_output(&gw, &["logs", "dead"])),
        ("the daemon log", gw.daemon_log()),
    ];
    for (what, text) in &outputs {
        for secret in ["PASS-live-1", "TOKEN-live-2", "PASS-dead-3", "TOKEN-dead-4"] {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
    let status = &outputs[1].1;
    assert!(status.contains(&dead_shown), "status shows the failed server's redacted URL:\n{status}");
    let log = &outputs[7].1;
    assert!(log.contains(&dead_shown), "the daemon log shows the redacted URL:\n{log}");
    let listing = &outputs[4].1;
    assert!(
        listing.contains(&format!("http://***@127.0.0.1:{live_port}/mcp?token=***&v=***")),
        "servers list shows the redacted URL:\n{listing}"
    );
}

/// Restarts quickly, and the breaker opens after three failures.
const FAST_SUPERVISION: &str = "supervision:\n  backoff_base: 50ms\n  backoff_cap: 200ms\n  breaker_failures: 3\n  breaker_window: 60s\n  breaker_cooldown: 60s\n";

/// A server that writes why it cannot start to stderr and exits at once never
/// answers `initialize`. After its failed starts (until the breaker opens),
/// `mcp-gateway logs SERVER` shows that line, as the README promises; it used
/// to say the server "has not run since the daemon started".
#[test]
fn logs_show_the_stderr_of_a_server_that_crashes_at_start_up() {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "{FAST_SUPERVISION}servers:\n  broken:\n    command: sh\n    \
         args: [\"-c\", \"echo 'fatal: missing API_KEY (start-up crash 5f3a)' >&2; exit 1\"]\n"
    ));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let mut attempt = 0;
    let open = wait_until(TIMEOUT, || {
        attempt += 1;
        client.call_tool(json!(attempt), "broken__anything", json!({}));
        status(&gw)["backends"][0]["state"] == "open"
    });
    assert!(open, "the breaker did not open: {}\n{}", status(&gw), gw.daemon_log());
    let logs = cli_output(&gw, &["logs", "broken"]);
    assert!(logs.contains("fatal: missing API_KEY (start-up crash 5f3a)"), "logs broken:\n{logs}");
    assert!(logs.contains("exit code 1"), "and says how it ended:\n{logs}");
}

fn saw_tools_list_changed(client: &Client) -> bool {
    client.stash.iter().any(|m| m["method"] == "notifications/tools/list_changed")
}

/// A save that truncates the config file before writing it (as many editors
/// and `>` redirections do) must not apply the empty file in between: the
/// servers stay listed and callable while the file is empty, and the rewrite
/// changes nothing a session can see. A file that stays empty is applied in
/// the end (someone meant it), and the log says so.
#[test]
fn a_config_save_that_truncates_first_never_drops_the_servers() {
    let mut gw = TestGateway::new();
    let config = format!("servers:\n  fx:\n{}", fixture_server("truncated"));
    gw.write_config(&config);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert!(client.tool_names().contains(&"fx__echo".to_string()));
    let reloads_before = gw.daemon_log().matches("config reloaded").count();

    // The first half of a save: the file is truncated. Wait until the daemon
    // has seen it (it says it keeps the last good config; before the fix, it
    // reloaded an empty one).
    std::fs::File::create(gw.home.join("config.yaml")).expect("truncate the config");
    assert!(
        wait_until(TIMEOUT, || {
            let log = gw.daemon_log();
            log.contains("the config file is empty") || log.matches("config reloaded").count() > reloads_before
        }),
        "the daemon did not notice the truncation:\n{}",
        gw.daemon_log()
    );
    let names = client.tool_names();
    assert!(names.contains(&"fx__echo".to_string()), "the servers vanished while the file was empty: {names:?}");
    assert_eq!(
        first_text(&client.call_tool(json!(1), "fx__echo", json!({"message": "mid-save"}))),
        "truncated: mid-save"
    );
    assert!(status(&gw)["config_error"].as_str().is_some_and(|e| e.contains("empty")), "{}", status(&gw));

    // The second half: the same config lands. Nothing changed for sessions.
    gw.write_config(&config);
    assert!(wait_until(TIMEOUT, || status(&gw)["config_error"].is_null()), "{}", status(&gw));
    assert!(client.tool_names().contains(&"fx__echo".to_string()));
    assert!(!saw_tools_list_changed(&client), "sessions were told the list changed: {:?}", client.stash);

    // A file that stays empty was meant: it is applied after the settle time.
    std::fs::File::create(gw.home.join("config.yaml")).expect("empty the config");
    assert!(
        wait_until(TIMEOUT, || !client.tool_names().contains(&"fx__echo".to_string())),
        "an empty config that stayed empty was never applied:\n{}",
        gw.daemon_log()
    );
    assert!(gw.daemon_log().contains("has stayed empty"), "{}", gw.daemon_log());
}
