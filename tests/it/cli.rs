//! The command line against real daemons: status (table and JSON), servers
//! edits taken up by a running daemon, `servers add --test`, restart, logs,
//! doctor and service status.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// Runs `mcp-gateway ARGS` in the test's environment.
fn cli(gw: &TestGateway, args: &[&str]) -> Output {
    gw.command(DAEMON)
        .env("HOME", &gw.home)
        .env("XDG_CONFIG_HOME", gw.home.join(".config"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(gw: &TestGateway, args: &[&str]) -> String {
    let out = cli(gw, args);
    assert!(out.status.success(), "mcp-gateway {args:?} failed: {}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn fixture_command(tag: &str) -> Vec<String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    vec!["python3".into(), script.display().to_string(), tag.into()]
}

fn backend_pid(gw: &TestGateway, server: &str) -> Option<u64> {
    status(gw)["backends"].as_array()?.iter().find(|b| b["server"] == server)?["pid"].as_u64()
}

#[test]
fn status_shows_backends_sessions_and_what_per_terminal_spawning_would_cost() {
    let mut gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha")), ("beta", fixture_server("beta"))]);
    gw.start();
    let never = status(&gw);
    assert_eq!(never["catalog_age_secs"], json!({"alpha": null, "beta": null}), "nothing listed yet: {never}");
    let mut one = gw.client();
    one.initialize();
    // A call waits for its own server only; the listing starts every server once.
    let listing = one.request(json!(0), "tools/list", json!({}));
    assert!(listing["result"]["tools"].as_array().is_some_and(|t| t.len() > 1), "{listing}");
    let answer = one.call_tool(json!(1), "alpha__echo", json!({"message": "hi"}));
    assert_eq!(first_text(&answer), "alpha: hi");
    let mut two = gw.client();
    two.initialize();

    let table = ok(&gw, &["status"]);
    assert!(table.contains("SERVER  KEY     STATE  PID"), "backend columns sized to their content:\n{table}");
    assert!(table.contains("UPTIME  RESTARTS  SESSIONS  IN FLIGHT  LISTED"), "{table}");
    assert!(table.contains("catalog 2 of 2 servers listed, oldest "), "{table}");
    assert!(table.lines().any(|l| l.starts_with("alpha") && l.contains("global") && l.contains("idle")), "{table}");
    assert!(table.contains("ID  CLIENT  PROFILE  WORKSPACE"), "{table}");
    assert!(table.contains("spawned per terminal: 4 processes"), "{table}");
    assert!(!table.contains('\u{1b}'), "no colour when stdout is not a terminal");

    let json: Value = serde_json::from_str(&ok(&gw, &["status", "--json"])).unwrap();
    assert_eq!(json["schema_version"], 1);
    for key in ["version", "pid", "uptime_secs", "rss_kib", "log", "config_path", "backends", "sessions", "totals"] {
        assert!(json.get(key).is_some(), "status JSON lacks {key}: {json:#}");
    }
    let alpha = &json["backends"][0];
    assert_eq!(alpha["server"], "alpha");
    for server in ["alpha", "beta"] {
        let age = json["catalog_age_secs"][server].as_u64();
        assert!(age.is_some_and(|age| age < 60), "listed just now: {}", json["catalog_age_secs"]);
    }
    assert_eq!(alpha["processes"], 1, "one python process: {alpha}");
    assert!(alpha["tree_rss_kib"].as_u64().is_some_and(|k| k > 1000), "{alpha}");
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s["client"] == "test" && s["servers"] == 2), "{sessions:?}");
    let totals = &json["totals"];
    // Listing the tools started both servers once; two terminals would have started each twice.
    assert_eq!(totals["backend_processes"], 2, "{totals}");
    assert_eq!(totals["per_terminal"]["processes"], 4, "{totals}");
    assert_eq!(totals["per_terminal"]["unmeasured"], 0, "{totals}");
    let backend_rss = totals["backend_rss_kib"].as_u64().unwrap();
    let per_terminal_rss = totals["per_terminal"]["rss_kib"].as_u64().unwrap();
    assert!(per_terminal_rss >= 2 * backend_rss * 9 / 10, "about twice the shared cost: {totals}");
    assert_eq!(json["log"]["file"], gw.stderr_path().display().to_string(), "the daemon knows where it logs");
    let mut schema: Value = serde_json::from_str(include_str!("../golden/status-schema.json")).unwrap();
    // No server here needs a login: `logins` is checked by
    // remote::a_remote_server_that_wants_a_login_says_which_command_to_run.
    assert_eq!(json["logins"], serde_json::json!([]), "{json:#}");
    schema.as_object_mut().unwrap().remove("logins");
    conforms(&json, &schema, "status");
}

/// Checks that `value` has every field `schema` names, of one of the types it
/// allows (`"number|null"`; `[item]` for arrays, objects nested): scripts can
/// rely on these. New fields may appear; removing or retyping one is a
/// `schema_version` bump and an edit of tests/golden/status-schema.json.
pub(crate) fn conforms(value: &Value, schema: &Value, path: &str) {
    match schema {
        Value::String(types) => {
            let kind = match value {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            assert!(types.split('|').any(|t| t == kind), "{path} is {kind}, the schema says {types}: {value}");
        }
        Value::Array(item) => {
            let items = value.as_array().unwrap_or_else(|| panic!("{path} is not an array: {value}"));
            assert!(!items.is_empty(), "{path}: the test should have something to check");
            for (i, v) in items.iter().enumerate() {
                conforms(v, &item[0], &format!("{path}[{i}]"));
            }
        }
        Value::Object(fields) => {
            for (key, field) in fields {
                let v = value.get(key).unwrap_or_else(|| panic!("{path}.{key} is missing: {value}"));
                conforms(v, field, &format!("{path}.{key}"));
            }
        }
        other => panic!("bad schema at {path}: {other}"),
    }
}

#[test]
fn servers_edits_are_taken_up_by_the_running_daemon() {
    let mut gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha"))]);
    gw.start();
    let tools_now = |gw: &TestGateway| {
        let mut client = gw.client();
        client.initialize();
        client.tool_names()
    };
    let mut add = vec!["servers", "add", "beta", "--"];
    let command = fixture_command("beta");
    add.extend(command.iter().map(String::as_str));
    let out = ok(&gw, &add);
    assert!(out.contains("added `beta`") && out.contains("the running daemon applied it"), "{out}");
    // Listed through the daemon (which started it as on a first use), so
    // its catalog entry is there before any client asked.
    assert!(out.contains("listed `beta` (") && out.contains("tool(s)) for the catalog"), "{out}");
    assert!(status(&gw)["catalog_age_secs"]["beta"].is_u64(), "{}", status(&gw));
    assert!(wait_until(Duration::from_secs(10), || tools_now(&gw).contains(&"beta__echo".to_string())));

    let listed: Value = serde_json::from_str(&ok(&gw, &["servers", "list", "--json"])).unwrap();
    let names: Vec<&str> = listed["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta"]);

    ok(&gw, &["servers", "disable", "beta"]);
    assert!(wait_until(Duration::from_secs(10), || !tools_now(&gw).contains(&"beta__echo".to_string())));
    let table = ok(&gw, &["servers", "list"]);
    assert!(table.lines().any(|l| l.starts_with("beta") && l.contains(" no ")), "{table}");
    assert!(ok(&gw, &["servers", "disable", "beta"]).contains("already disabled"));
    ok(&gw, &["servers", "enable", "beta"]);
    assert!(wait_until(Duration::from_secs(10), || tools_now(&gw).contains(&"beta__echo".to_string())));

    ok(&gw, &["servers", "remove", "beta"]);
    let config = std::fs::read_to_string(gw.home.join("config.yaml")).unwrap();
    assert!(!config.contains("beta") && config.contains("alpha"), "{config}");
    assert!(gw.home.join("config.yaml.bak").exists(), "the previous version is kept");
    assert!(wait_until(Duration::from_secs(10), || !tools_now(&gw).contains(&"beta__echo".to_string())));

    // From the catalog, by name; an unknown name without a command is explained.
    // (Not listed now: the catalog's memory is an npx package to download.)
    assert!(ok(&gw, &["servers", "add", "memory", "--no-prefetch"]).contains("added `memory`"));
    let config = std::fs::read_to_string(gw.home.join("config.yaml")).unwrap();
    assert!(config.contains("@modelcontextprotocol/server-memory"), "{config}");
    let out = cli(&gw, &["servers", "add", "no-such-thing"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not in the catalog") && stderr(&out).contains("memory"), "{}", stderr(&out));
    let out = cli(&gw, &["servers", "add", "x", "--env", "NOEQUALS", "--", "true"]);
    assert!(stderr(&out).contains("expected NAME=VALUE"), "{}", stderr(&out));
}

#[test]
fn servers_add_test_starts_the_server_before_writing() {
    let gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha"))]);
    let mut add = vec!["servers", "add", "beta", "--test", "--"];
    let command = fixture_command("beta");
    add.extend(command.iter().map(String::as_str));
    let out = ok(&gw, &add);
    assert!(out.contains("`beta` started and lists") && out.contains("echo"), "{out}");
    assert!(std::fs::read_to_string(gw.home.join("config.yaml")).unwrap().contains("beta"));

    let mut add = vec!["servers", "add", "broken", "--test", "--"];
    let command = fixture_command("crash-on-start");
    add.extend(command.iter().map(String::as_str));
    let out = cli(&gw, &add);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("did not start") && err.contains("refusing to start"), "the server's stderr is quoted: {err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!std::fs::read_to_string(gw.home.join("config.yaml")).unwrap().contains("broken"));
    assert!(wait_until(Duration::from_secs(5), || gw.count("fixture_server.py") == 0), "the probe leaves no process");
}

#[test]
fn restart_replaces_the_instance_and_logs_show_and_follow_its_stderr() {
    let mut gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha"))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    client.call_tool(json!(1), "alpha__echo", json!({"message": "stderr:hello from alpha"}));
    let first = backend_pid(&gw, "alpha").expect("alpha runs");
    let logs = ok(&gw, &["logs", "alpha"]);
    assert!(logs.contains("hello from alpha") && logs.contains("alpha (global"), "{logs}");

    // Follow: a new line shows up without asking again.
    let mut follower = gw
        .command(DAEMON)
        .args(["logs", "alpha", "-f", "-n", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = channel();
    let reader = BufReader::new(follower.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok_and(|l| l.starts_with("== alpha")), "the header first");
    client.call_tool(json!(2), "alpha__echo", json!({"message": "stderr:second line"}));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).ok().as_deref(), Some("second line"));
    let _ = follower.kill();
    let _ = follower.wait();

    let out = ok(&gw, &["restart", "alpha"]);
    assert!(out.contains("stopped 1 instance"), "{out}");
    assert!(wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!("/proc/{first}")).exists()));
    let answer = client.call_tool(json!(3), "alpha__echo", json!({"message": "again"}));
    assert_eq!(first_text(&answer), "alpha: again", "the next call starts a fresh instance");
    assert!(backend_pid(&gw, "alpha").is_some_and(|pid| pid != first));

    // A crashed instance's last words stay readable.
    client.call_tool(json!(4), "alpha__crash", json!({}));
    assert!(wait_until(Duration::from_secs(10), || ok(&gw, &["logs", "alpha"]).contains("crashing on purpose")));

    let out = cli(&gw, &["restart", "nope"]);
    assert!(!out.status.success() && stderr(&out).contains("no server named `nope`"), "{}", stderr(&out));
}

#[test]
fn logs_without_a_server_show_the_daemon_log() {
    let mut gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha"))]);
    gw.start();
    let out = ok(&gw, &["logs", "-n", "200"]);
    assert!(out.contains("listening"), "{out}");
    gw.stop();
    // With no daemon: the file the shim's autostart writes, or a clear word that there is none.
    let out = cli(&gw, &["logs"]);
    assert!(stderr(&out).contains("no daemon is running"), "{}", stderr(&out));
}

#[test]
fn doctor_finds_what_is_broken_and_says_what_to_do() {
    let mut gw = TestGateway::with_servers(&[
        ("alpha", fixture_server("alpha")),
        ("ghost", "    command: /nonexistent/mcp-ghost\n".to_string()),
    ]);
    gw.start();
    let out = cli(&gw, &["doctor"]);
    assert!(!out.status.success(), "a missing command is a problem");
    let text = stdout(&out);
    assert!(text.contains("`ghost`: `/nonexistent/mcp-ghost` is not on PATH"), "{text}");
    assert!(text.contains("→ install it, or give its absolute path"), "{text}");
    assert!(text.contains("`alpha`: python3 →"), "{text}");
    assert!(text.contains("daemon") && text.contains("running (pid"), "{text}");
    let report: Value = serde_json::from_str(&stdout(&cli(&gw, &["doctor", "--json"]))).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["checks"].as_array().unwrap().iter().any(|c| c["level"] == "error" && c["topic"] == "server"));

    gw.write_config("servers:\n  alpha:\n    command: python3\n");
    let out = cli(&gw, &["doctor"]);
    assert!(out.status.success(), "warnings alone pass: {}", stdout(&out));
    gw.write_config("servers:\n  alpha: [not, a, map]\n");
    let out = cli(&gw, &["doctor"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("config.yaml"), "the broken file is named: {}", stdout(&out));
}

#[test]
fn service_status_reports_what_is_not_installed() {
    let gw = TestGateway::new();
    let out = cli(&gw, &["service", "status"]);
    assert_eq!(out.status.code(), Some(3), "not installed: {}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("not installed") && text.contains("mcp-gateway.socket"), "{text}");
    assert!(text.contains("nothing listening"), "{text}");
}

/// Issue 19: a client whose environment differs (Codex and the TypeScript SDK
/// filter theirs) can autostart a second daemon on another socket. `status`
/// and `doctor` look at every socket a client could find and name the other
/// daemon, its pid and the fix.
#[test]
fn a_second_daemon_on_another_socket_is_reported() {
    let mut first = TestGateway::new();
    first.start();
    let mut second = TestGateway::new();
    let runtime = second.dir.path().join("xdg");
    second.socket = runtime.join("mcp-gateway").join("gateway.sock");
    second.start();
    let second_pid = second.daemon.as_ref().unwrap().id();

    // Alone: nothing to report (the second daemon's runtime directory is not seen).
    let alone = cli(&first, &["status", "--json"]);
    let alone: Value = serde_json::from_str(&stdout(&alone)).unwrap();
    let others = alone["other_daemons"].as_array().cloned().unwrap_or_default();
    assert!(!others.iter().any(|o| o["pid"] == second_pid), "{alone}");

    // A terminal whose XDG_RUNTIME_DIR finds the second daemon's socket.
    let with = |args: &[&str]| {
        first.command(DAEMON).env("HOME", &first.home).env("XDG_RUNTIME_DIR", &runtime).args(args).output().unwrap()
    };
    let report: Value = serde_json::from_str(&stdout(&with(&["status", "--json"]))).unwrap();
    let others = report["other_daemons"].as_array().cloned().unwrap_or_default();
    assert!(
        others.iter().any(|o| o["pid"] == second_pid && o["socket"] == second.socket.display().to_string()),
        "{report}"
    );
    let text = stdout(&with(&["status"]));
    assert!(text.contains(&format!("pid {second_pid} on {}", second.socket.display())), "{text}");
    assert!(text.contains("mcp-gateway stop --socket") && text.contains("mcp-gateway setup CLIENT"), "{text}");

    let doctor = with(&["doctor"]);
    let text = stdout(&doctor);
    assert!(text.contains("another mcp-gateway daemon") && text.contains(&format!("pid {second_pid}")), "{text}");
    let report: Value = serde_json::from_str(&stdout(&with(&["doctor", "--json"]))).unwrap();
    assert!(
        report["checks"].as_array().unwrap().iter().any(|c| c["level"] == "warn"
            && c["topic"] == "daemon"
            && c["message"].as_str().unwrap().contains(&second.socket.display().to_string())),
        "{report}"
    );
}

/// A daemon on a socket no lookup finds (given with `--socket`) records it in
/// the gateway home, so `status` still names it; its record goes when it stops.
#[test]
fn a_second_daemon_on_a_socket_given_by_hand_is_found_through_its_record() {
    let mut first = TestGateway::new();
    first.start();
    let mut second = TestGateway::new();
    second.home = first.home.clone();
    second.start();
    let second_pid = second.daemon.as_ref().unwrap().id();
    let others = |gw: &TestGateway| {
        let report: Value = serde_json::from_str(&stdout(&cli(gw, &["status", "--json"]))).unwrap();
        report["other_daemons"].as_array().cloned().unwrap_or_default()
    };
    // The record is written just after the socket accepts connections.
    let found = wait_until(Duration::from_secs(10), || {
        others(&first).iter().any(|o| o["pid"] == second_pid && o["socket"] == second.socket.display().to_string())
    });
    assert!(found, "{:?}", others(&first));
    assert!(!others(&second).iter().any(|o| o["pid"] == second_pid), "a daemon is not its own second");
    assert!(second.stop().success());
    assert!(!others(&first).iter().any(|o| o["pid"] == second_pid), "its record went with it");
    let records = std::fs::read_dir(first.home.join("daemons")).unwrap().count();
    assert_eq!(records, 1, "only the first daemon's record is left");
}

/// With no daemon running, `servers add` lists the new server in its own
/// process into the catalog on disk (and stops it): the daemon that starts
/// later answers `tools/list` from it.
#[test]
fn servers_add_prefetches_the_listing_in_process_when_no_daemon_runs() {
    let mut gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha"))]);
    let mut add = vec!["servers", "add", "beta", "--"];
    let command = fixture_command("beta");
    add.extend(command.iter().map(String::as_str));
    let out = ok(&gw, &add);
    assert!(out.contains("listed `beta` (") && out.contains("tool(s)) for the catalog"), "{out}");
    let cache = std::fs::read_to_string(gw.home.join("cache/catalog.json")).unwrap_or_default();
    assert!(cache.contains("\"beta\"") && cache.contains("echo"), "{cache}");
    assert!(wait_until(TIMEOUT, || gw.count("fixture_server.py") == 0), "left running: {:?}", gw.processes());
    // The daemon started now has it from the file, and starts nothing for it.
    gw.start();
    let json = status(&gw);
    assert!(json["catalog_age_secs"]["beta"].is_u64(), "{json}");
    let mut client = gw.client();
    client.initialize();
    assert!(client.tool_names().contains(&"beta__echo".to_string()));
    assert_eq!(gw.count("fixture_server.py beta"), 0, "listed from the catalog on disk");
}

/// An edit reloads the daemon on the socket `--socket` names (not only the
/// default one); with none there it says which socket it asked, and names a
/// daemon of this user that runs on another.
#[test]
fn edits_reload_the_daemon_on_the_socket_given_and_name_the_socket_otherwise() {
    let mut gw = TestGateway::with_servers(&[("alpha", fixture_server("alpha"))]);
    gw.start();
    let elsewhere = gw.dir.path().join("elsewhere.sock");
    let socket = gw.socket.display().to_string();
    let run = |args: &[&str]| {
        let out = gw.command(DAEMON).env("MCP_GATEWAY_SOCKET", &elsewhere).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let out = run(&["servers", "disable", "alpha", "--socket", &socket]);
    assert!(out.contains("the running daemon applied it") && !out.contains("no daemon"), "{out}");
    let out = run(&["servers", "enable", "alpha"]);
    assert!(out.contains(&format!("no daemon runs on {}", elsewhere.display())), "{out}");
    assert!(out.contains(&format!("a daemon runs on {socket}")), "{out}");
}
