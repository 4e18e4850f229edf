//! Sharing modes, profiles, workspaces and the credential order: who shares a
//! backend, and where each `${VAR}` comes from, without a credential ever
//! crossing a line or reaching a log.

use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::{Value, json};

/// A directory that is a workspace root (it holds a `.git`), with an optional `.env`.
fn workspace(parent: &Path, name: &str, dotenv: Option<&str>) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    if let Some(text) = dotenv {
        write_private(&dir.join(".env"), text);
    }
    dir
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn client_at(gw: &TestGateway, cwd: &Path) -> Client {
    let mut client = gw.client_in(&["--no-autostart"], cwd);
    client.initialize();
    client
}

fn env_of(client: &mut Client, id: i64, tool: &str, name: &str) -> String {
    first_text(&client.call_tool(json!(id), tool, json!({"name": name}))).to_string()
}

#[test]
fn credential_servers_keep_each_workspaces_token_apart() {
    let suffix = std::process::id();
    let token_a = format!("ghp_alpha_{suffix}_secret");
    let token_b = format!("ghp_bravo_{suffix}_secret");
    let mut gw = TestGateway::with_servers(&[(
        "everything",
        format!("{}    env: {{ GITHUB_TOKEN: \"${{GITHUB_TOKEN}}\" }}\n    share: credential\n", everything_server()),
    )]);
    let root = gw.dir.path().join("projects");
    let project_a = workspace(&root, "alpha", Some(&format!("GITHUB_TOKEN={token_a}\n")));
    let project_b = workspace(&root, "bravo", Some(&format!("GITHUB_TOKEN={token_b}\n")));
    std::fs::create_dir_all(project_a.join("src")).unwrap();
    gw.start();
    let mut a1 = client_at(&gw, &project_a);
    let mut a2 = client_at(&gw, &project_a.join("src"));
    let mut b = client_at(&gw, &project_b);
    for (client, own, other) in
        [(&mut a1, &token_a, &token_b), (&mut a2, &token_a, &token_b), (&mut b, &token_b, &token_a)]
    {
        let reply = client.call_tool(json!(1), "everything__get-env", json!({}));
        let env = first_text(&reply);
        assert!(env.contains(own.as_str()), "its own token: {env}");
        assert!(!env.contains(other.as_str()), "never the other workspace's token");
    }
    assert_eq!(gw.count("server-everything"), 2, "one instance per credential set");
    let status = serde_json::to_string(&status(&gw)).unwrap();
    let log = gw.daemon_log();
    for token in [&token_a, &token_b] {
        assert!(!log.contains(token.as_str()), "a token reached the daemon's log");
        assert!(!status.contains(token.as_str()), "a token reached status");
        let cache = std::fs::read_to_string(gw.home.join("cache/catalog.json")).unwrap_or_default();
        assert!(!cache.contains(token.as_str()), "a token reached the catalog cache");
    }
}

#[test]
fn sharing_modes_decide_how_many_processes_run() {
    let mut gw = TestGateway::with_servers(&[
        ("g", format!("{}    share: global\n", fixture_server("mode-global"))),
        ("w", format!("{}    share: workspace\n", fixture_server("mode-workspace"))),
        ("s", format!("{}    share: session\n", fixture_server("mode-session"))),
    ]);
    let one = workspace(gw.dir.path(), "one", None);
    let two = workspace(gw.dir.path(), "two", None);
    gw.start();
    let mut clients = [client_at(&gw, &one), client_at(&gw, &one), client_at(&gw, &two)];
    for (i, client) in clients.iter_mut().enumerate() {
        for server in ["g", "w", "s"] {
            let reply =
                client.call_tool(json!(format!("{server}{i}")), &format!("{server}__echo"), json!({"message": "x"}));
            assert!(first_text(&reply).ends_with(": x"), "{reply}");
        }
    }
    assert_eq!(gw.count("mode-global"), 1);
    assert_eq!(gw.count("mode-workspace"), 2);
    assert_eq!(gw.count("mode-session"), 3);
    // A session's own instance goes when it is no longer used (idle reaping is
    // what stops it; here the session leaves and the instance idles out).
    let keys: Vec<String> =
        status(&gw)["backends"].as_array().unwrap().iter().map(|b| b["key"].as_str().unwrap().to_string()).collect();
    assert!(keys.iter().any(|k| k == "global"));
    assert!(keys.iter().any(|k| k.starts_with("workspace:") && k.ends_with("/one")), "{keys:?}");
    assert!(keys.iter().filter(|k| k.starts_with("session:")).count() == 3, "{keys:?}");
}

/// Where a variable can be set, lowest first.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Daemon,
    Client,
    Profile,
    GatewayEnv,
    WorkspaceEnv,
}

/// The value a server sees for `PROBE` when it is set at each of `levels`.
fn probe(levels: &[Level]) -> String {
    let mut config = format!(
        "servers:\n  fx:\n{}    env: {{ PROBE: \"${{PROBE}}\" }}\n    share: credential\n",
        fixture_server("probe")
    );
    if levels.contains(&Level::Profile) {
        config.push_str("profiles:\n  p:\n    env: { PROBE: from-profile }\n");
    }
    let mut gw = TestGateway::new();
    gw.write_config(&config);
    if levels.contains(&Level::Daemon) {
        gw.daemon_env.push(("PROBE".into(), "from-daemon".into()));
    }
    if levels.contains(&Level::GatewayEnv) {
        write_private(&gw.home.join(".env"), "PROBE=from-gateway-env\n");
    }
    let project = workspace(
        gw.dir.path(),
        "project",
        levels.contains(&Level::WorkspaceEnv).then_some("PROBE=from-workspace-env\n"),
    );
    gw.start();
    let mut args = vec!["--no-autostart"];
    if levels.contains(&Level::Profile) {
        args.extend(["--profile", "p"]);
    }
    let client_env: &[(&str, &str)] = if levels.contains(&Level::Client) { &[("PROBE", "from-client")] } else { &[] };
    let mut client = gw.client_full(&args, &project, client_env);
    client.initialize();
    let reply = client.call_tool(json!(1), "fx__env", json!({"name": "PROBE"}));
    match reply.get("error") {
        Some(error) => format!("error: {}", error["message"]),
        None => first_text(&reply).to_string(),
    }
}

#[test]
fn level_5_the_daemons_environment() {
    assert_eq!(probe(&[Level::Daemon]), "from-daemon");
}

#[test]
fn level_4_the_clients_environment_overrides_the_daemons() {
    assert_eq!(probe(&[Level::Daemon, Level::Client]), "from-client");
}

#[test]
fn level_3_the_profile_overrides_the_client() {
    assert_eq!(probe(&[Level::Daemon, Level::Client, Level::Profile]), "from-profile");
}

#[test]
fn level_2_the_gateway_env_overrides_the_profile() {
    assert_eq!(probe(&[Level::Daemon, Level::Client, Level::Profile, Level::GatewayEnv]), "from-gateway-env");
}

#[test]
fn level_1_the_workspace_env_overrides_everything() {
    let all = [Level::Daemon, Level::Client, Level::Profile, Level::GatewayEnv, Level::WorkspaceEnv];
    assert_eq!(probe(&all), "from-workspace-env");
}

#[test]
fn a_missing_variable_is_an_error_naming_it_and_the_server() {
    let answer = probe(&[]);
    assert!(answer.starts_with("error:"), "{answer}");
    assert!(answer.contains("`PROBE`") && answer.contains("`fx`"), "{answer}");
}

#[test]
fn editing_a_workspace_env_takes_effect_on_the_next_call() {
    let mut gw = TestGateway::with_servers(&[(
        "fx",
        format!(
            "{}    env: {{ TOKEN: \"${{TOKEN}}\" }}\n    share: credential\n    idle_timeout: 1s\n",
            fixture_server("edit")
        ),
    )]);
    let project = workspace(gw.dir.path(), "project", Some("TOKEN=first\n"));
    gw.start();
    let mut client = client_at(&gw, &project);
    assert_eq!(env_of(&mut client, 1, "fx__env", "TOKEN"), "first");
    write_private(&project.join(".env"), "TOKEN=second-value\n");
    assert_eq!(env_of(&mut client, 2, "fx__env", "TOKEN"), "second-value");
    // The old instance, no longer used, is reaped when idle; the new one serves on.
    assert!(wait_until(TIMEOUT, || gw.count("fixture_server.py edit") <= 1));
    assert_eq!(env_of(&mut client, 3, "fx__env", "TOKEN"), "second-value");
}

#[test]
fn idle_backends_are_stopped_and_come_back_on_use() {
    let mut gw = TestGateway::with_servers(&[("fx", format!("{}    idle_timeout: 1s\n", fixture_server("idle")))]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    client.call_tool(json!(1), "fx__echo", json!({"message": "x"}));
    assert_eq!(gw.count("fixture_server.py idle"), 1);
    let daemon = gw.daemon.as_ref().expect("daemon").id() as i32;
    assert_eq!(guards_of(daemon).len(), 1, "the backend's process group is guarded");
    assert!(wait_until(TIMEOUT, || gw.count("fixture_server.py idle") == 0), "reaped when idle");
    assert!(gw.daemon_log().contains("stopped an idle backend"));
    assert!(wait_until(TIMEOUT, || guards_of(daemon).is_empty()), "no guard is kept without backends");
    assert_eq!(first_text(&client.call_tool(json!(2), "fx__echo", json!({"message": "back"}))), "idle: back");
    assert_eq!(guards_of(daemon).len(), 1, "a guard again for the backend started again");
}

#[test]
fn a_busy_backend_is_not_reaped() {
    let mut gw = TestGateway::with_servers(&[("fx", format!("{}    idle_timeout: 1s\n", fixture_server("busy")))]);
    gw.start_in_process();
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "fx__slow", json!({"seconds": 3}));
    assert_eq!(first_text(&reply), "slow done: ", "a call longer than the idle timeout completes");
}

#[test]
fn profiles_choose_servers_and_unknown_ones_are_refused() {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "servers:\n  a:\n{}  b:\n{}profiles:\n  only-a:\n    servers: [a]\n",
        fixture_server("a"),
        fixture_server("b")
    ));
    gw.start_in_process();
    let mut everything = gw.client();
    everything.initialize();
    let names = everything.tool_names();
    assert!(names.iter().any(|n| n.starts_with("a__")) && names.iter().any(|n| n.starts_with("b__")));
    let mut narrowed = gw.client_with(&["--no-autostart", "--profile", "only-a"]);
    narrowed.initialize();
    let names = narrowed.tool_names();
    assert!(names.iter().all(|n| n.starts_with("a__")), "{names:?}");
    let reply = narrowed.call_tool(json!(1), "b__echo", json!({}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");

    let out = gw
        .command(SHIM)
        .args(["--no-autostart", "--profile", "nope"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown profile `nope`") && stderr.contains("only-a"), "{stderr}");
}

#[test]
fn a_workspace_mapping_picks_the_profile() {
    let mut gw = TestGateway::new();
    let project = workspace(gw.dir.path(), "acme", None);
    gw.write_config(&format!(
        "servers:\n  a:\n{}  b:\n{}profiles:\n  work:\n    servers: [b]\nworkspaces:\n  {:?}: {{ profile: work }}\n",
        fixture_server("a"),
        fixture_server("b"),
        project.display().to_string()
    ));
    gw.start_in_process();
    let mut inside = client_at(&gw, &project);
    assert!(inside.tool_names().iter().all(|n| n.starts_with("b__")));
    let mut outside = gw.client();
    outside.initialize();
    assert!(outside.tool_names().iter().any(|n| n.starts_with("a__")));
}

#[test]
fn a_trusted_workspace_adds_its_own_servers_and_an_untrusted_one_cannot() {
    let mut gw = TestGateway::new();
    let trusted = workspace(gw.dir.path(), "trusted", None);
    let untrusted = workspace(gw.dir.path(), "untrusted", None);
    let own = format!("servers:\n  local:\n{}", fixture_server("workspace-own"));
    std::fs::write(trusted.join(".mcp-gateway.yaml"), &own).unwrap();
    std::fs::write(untrusted.join(".mcp-gateway.yaml"), &own).unwrap();
    gw.write_config(&format!(
        "servers:\n  a:\n{}workspaces:\n  {:?}: {{ trust: true }}\n",
        fixture_server("a"),
        trusted.display().to_string()
    ));
    gw.start();
    let mut inside = client_at(&gw, &trusted);
    let names = inside.tool_names();
    assert!(names.contains(&"local__echo".to_string()), "{names:?}");
    assert_eq!(first_text(&inside.call_tool(json!(1), "local__echo", json!({"message": "hi"}))), "workspace-own: hi");
    let mut elsewhere = client_at(&gw, &untrusted);
    assert!(!elsewhere.tool_names().iter().any(|n| n.starts_with("local__")));
    assert_eq!(gw.count("workspace-own"), 1, "the untrusted file never ran anything");
    // Every routed request works out the servers again; the warning is said once.
    for id in 2..6 {
        assert_eq!(first_text(&elsewhere.call_tool(json!(id), "a__echo", json!({"message": "x"}))), "a: x");
    }
    assert!(!elsewhere.tool_names().iter().any(|n| n.starts_with("local__")));
    let mut again = client_at(&gw, &untrusted);
    assert!(!again.tool_names().iter().any(|n| n.starts_with("local__")));
    let log = gw.daemon_log();
    assert!(log.contains("trust: true"), "the log says how to trust it");
    let warnings = log.lines().filter(|l| l.contains("ignoring the servers in")).count();
    assert_eq!(warnings, 1, "once per workspace, not per request:\n{log}");
}

#[test]
fn bad_env_files_and_paths_are_reported_and_the_rest_still_applies() {
    let mut gw = TestGateway::with_servers(&[(
        "fx",
        format!("{}    env: {{ PROBE: \"${{PROBE}}\" }}\n    share: credential\n", fixture_server("bad-env")),
    )]);
    let config = std::fs::read_to_string(gw.home.join("config.yaml")).unwrap();
    gw.write_config(&format!("{config}workspaces:\n  \"/no/such/dir\": {{}}\n"));
    let project = workspace(gw.dir.path(), "project", None);
    std::fs::write(project.join(".env"), "GOOD=1\nthis line is broken\n").unwrap();
    std::fs::write(gw.home.join(".env"), "OTHER=1\n").unwrap(); // mode 0644 from the umask: world-readable
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(gw.home.join(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    gw.start();
    let mut client = gw.client_full(&["--no-autostart"], &project, &[("PROBE", "from-client")]);
    client.initialize();
    assert_eq!(env_of(&mut client, 1, "fx__env", "PROBE"), "from-client", "the other sources still apply");
    let log = gw.daemon_log();
    assert!(log.contains(&format!("{}:2:", project.join(".env").display())), "file and line: {log}");
    assert!(log.contains("readable by every user"), "{log}");
    assert!(log.contains("/no/such/dir") && log.contains("does not exist"), "{log}");
}

#[test]
fn status_shows_workspaces_and_profiles_but_no_environment() {
    let mut gw = TestGateway::with_servers(&[("fx", fixture_server("st"))]);
    let project = workspace(gw.dir.path(), "project", None);
    gw.start();
    let mut client = gw.client_full(&["--no-autostart"], &project, &[("SECRET_SHAPED", "hunter2-value")]);
    client.initialize();
    let status = status(&gw);
    let session = &status["sessions"][0];
    assert_eq!(session["workspace"], Value::String(project.display().to_string()));
    assert!(!serde_json::to_string(&status).unwrap().contains("hunter2-value"));
}

#[test]
fn a_per_workspace_filesystem_server_is_given_its_workspace_as_root() {
    let d = deps();
    let mut gw = TestGateway::new();
    let fallback = tempfile::tempdir().unwrap();
    let project = workspace(gw.dir.path(), "project", None);
    let project = std::fs::canonicalize(project).unwrap();
    gw.write_config(&format!(
        "servers:\n  fs:\n    command: {}\n    args: [{:?}, {:?}]\n    share: workspace\n",
        d.node(),
        d.get("MCP_TEST_FILESYSTEM_JS"),
        fallback.path().display().to_string()
    ));
    gw.start();
    let mut client = client_at(&gw, &project);
    // server-filesystem asks for roots once initialized and replaces its
    // directories with them; poll until it has.
    let mut text = String::new();
    assert!(
        wait_until(TIMEOUT, || {
            text = first_text(&client.call_tool(json!("l"), "fs__list_allowed_directories", json!({}))).to_string();
            text.contains(&project.display().to_string())
        }),
        "{text}"
    );
    assert!(with_no(&client.stash, "roots/list"), "the gateway answered roots/list itself");
}

fn with_no(messages: &[Value], method: &str) -> bool {
    messages.iter().all(|m| m["method"] != method)
}

/// A daemon a shim starts keeps the user's session of that terminal's
/// environment, not its private variables: the shared backends inherit the
/// daemon's environment, and another terminal must not read the first one's
/// secret through them (issue 19: server-everything's `get-env`).
#[test]
fn an_autostarted_daemon_keeps_the_terminals_secrets_from_shared_backends() {
    let gw = TestGateway::with_servers(&[("fx", fixture_server("fx"))]);
    let mut first = gw.client_full(&[], gw.dir.path(), &[("TERMINAL_ONE_SECRET", "hunter2-value")]);
    first.initialize();
    assert!(gw.daemon_log().contains("listening"), "the first shim started the daemon: {}", gw.daemon_log());
    let mut second = gw.client_full(&["--no-autostart"], gw.dir.path(), &[]);
    second.initialize();
    let reply = second.call_tool(json!(1), "fx__env", json!({"name": "TERMINAL_ONE_SECRET"}));
    assert_eq!(first_text(&reply), "<unset>", "another terminal reads the first one's variable: {reply}");
    // The first terminal's own calls do not get it either: the server does not name it.
    let reply = first.call_tool(json!(2), "fx__env", json!({"name": "TERMINAL_ONE_SECRET"}));
    assert_eq!(first_text(&reply), "<unset>");
    // What the daemon needs of the session it keeps: the backend found python3 on PATH, in HOME.
    let reply = second.call_tool(json!(3), "fx__env", json!({"name": "HOME"}));
    assert_eq!(first_text(&reply), std::env::var("HOME").unwrap_or_default());
}
