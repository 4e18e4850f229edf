//! OAuth end to end against a local authorization server
//! (`tests/fixtures/oauth_server.py`: discovery, dynamic registration,
//! PKCE, rotating single-use refresh tokens, RFC 7009 revocation, and a
//! protected MCP server with an `echo` tool and an `admin` tool that needs
//! one more scope), the daemon as its one OAuth client: a login asked of a
//! client through URL-mode elicitation, step-up to more scopes and its retry
//! limit, logout that revokes, a daemon killed mid-login, and a refresh in
//! backoff.

use std::process::{Output, Stdio};

use crate::common::*;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The local authorization server and protected MCP server on `port`,
/// issuing `ttl`-second access tokens, ready to accept.
fn oauth_server(gw: &TestGateway, port: u16, ttl: u64) -> OwnedChild {
    oauth_server_with(gw, port, ttl, &[])
}

/// The same, with more of the fixture's arguments (`--client ID=URI`).
fn oauth_server_with(gw: &TestGateway, port: u16, ttl: u64, extra: &[&str]) -> OwnedChild {
    let child = gw
        .command(deps().python())
        .args([&format!("{ROOT}/tests/fixtures/oauth_server.py"), &port.to_string(), "--ttl", &ttl.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the OAuth fixture");
    let server = OwnedChild(child);
    assert!(
        wait_until(TIMEOUT, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "the OAuth fixture did not start listening on {port}"
    );
    server
}

/// What the authorization server saw (counts, never token values).
fn seen(port: u16) -> Value {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/stats"))
        .and_then(|r| r.json())
        .expect("the fixture's stats")
}

/// A gateway whose one server, `remote`, is the fixture on `port`.
fn gateway(port: u16) -> TestGateway {
    let gw = TestGateway::new();
    gw.write_config(&format!("servers:\n  remote:\n    url: \"http://127.0.0.1:{port}/mcp\"\n"));
    gw
}

/// A running daemon logged in (`auth login`) to the fixture's server, whose
/// tokens live `ttl` seconds, and a client whose first call went through.
/// (Bind `_server` by name: the fixture stops when it is dropped.)
struct LoggedIn {
    port: u16,
    gw: TestGateway,
    _server: OwnedChild,
    client: Client,
}

/// A running daemon for the fixture's server (tokens living `ttl` seconds),
/// not logged in yet: its port, the daemon, and the fixture.
fn serving(ttl: u64) -> (u16, TestGateway, OwnedChild) {
    let port = free_port();
    let mut gw = gateway(port);
    let server = oauth_server(&gw, port, ttl);
    gw.start();
    (port, gw, server)
}

/// A plain client (one that cannot open URLs) whose first call needs the
/// login: it is told so, as a tool error.
fn told_to_log_in(gw: &TestGateway) -> (Client, Value) {
    let mut plain = gw.client();
    plain.initialize();
    let reply = plain.call_tool(json!(1), "remote__echo", json!({"message": "hi"}));
    assert_eq!(reply["result"]["isError"], true, "{reply}\n{}", gw.daemon_log());
    (plain, reply)
}

fn logged_in(ttl: u64) -> LoggedIn {
    let (port, gw, server) = serving(ttl);
    let login = auth(&gw, &["login", "remote"]);
    assert!(login.status.success(), "{}\n{}", String::from_utf8_lossy(&login.stderr), gw.daemon_log());
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "remote__echo", json!({"message": "logged in"}));
    assert_eq!(first_text(&reply), "Echo: logged in", "{reply}\n{}", gw.daemon_log());
    LoggedIn { port, gw, _server: server, client }
}

/// The "browser": follows the authorization server's immediate redirect to
/// the daemon's loopback callback.
fn browser() -> String {
    format!("{} {ROOT}/tests/fixtures/browser_follow.py", deps().python())
}

/// `mcp-gateway auth ARGS…` with the redirect follower as the browser.
fn auth(gw: &TestGateway, args: &[&str]) -> Output {
    gw.command(DAEMON).arg("auth").args(args).env("MCP_GATEWAY_BROWSER", browser()).output().expect("run auth")
}

fn auth_status(gw: &TestGateway) -> Value {
    let out = auth(gw, &["status", "remote", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("auth status --json")["servers"][0].clone()
}

fn credential_files(gw: &TestGateway) -> usize {
    std::fs::read_dir(gw.home.join("oauth"))
        .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

#[test]
fn a_client_that_opens_urls_logs_in_through_url_elicitation_and_others_hear_the_command() {
    let (port, gw, _server) = serving(3600);

    // A client that cannot open URLs hears the command, as a tool error.
    let (mut plain, reply) = told_to_log_in(&gw);
    assert!(first_text(&reply).contains("run `mcp-gateway auth login remote`"), "{reply}");

    // Those that declared `elicitation.url` are sent to the login, which the
    // daemon finishes; they are told when, and their next calls go through.
    // Two such sessions at once share one login: one URL, opened once.
    let browser = browser();
    let args = ["--tool-prefix", "", "--browser", &browser, "--tool", "remote__echo", "--sessions", "2"];
    let result = run_client_script(&gw, "url_login.py", &args);
    assert_eq!(result["texts"], json!(["Echo: after the login 0", "Echo: after the login 1"]), "{result}");
    assert_eq!(result["elicitation_ids"].as_array().map(Vec::len), Some(1), "{result}");
    assert_eq!(result["url_host"], format!("127.0.0.1:{port}"), "{result}");
    assert_eq!(seen(port)["logins"], 1, "{}", seen(port));
    assert_eq!(auth_status(&gw)["state"], "logged_in");

    // The login is every session's: the plain client's next call goes through.
    let reply = plain.call_tool(json!(2), "remote__echo", json!({"message": "shared"}));
    assert_eq!(first_text(&reply), "Echo: shared", "{reply}\n{}", gw.daemon_log());
    assert_eq!(seen(port)["logins"], 1, "no second login");
}

#[test]
fn a_2026_client_that_opens_urls_is_asked_within_its_call_and_the_call_goes_on() {
    let (port, gw, _server) = serving(3600);
    // The server has asked for a login (a 401) before the client calls.
    told_to_log_in(&gw);

    let browser = browser();
    let args = ["--tool-prefix", "", "--browser", &browser, "--tool", "remote__echo", "--mode", "auto"];
    let result = run_client_script(&gw, "url_login.py", &args);
    assert_eq!(result["text"], "Echo: in one call", "{result}");
    assert_eq!(result["asked"], json!([["url", format!("127.0.0.1:{port}")]]), "{result}");
    assert_eq!(seen(port)["logins"], 1);
}

#[test]
fn logout_revokes_at_the_authorization_server_then_forgets() {
    let LoggedIn { port, gw, mut client, _server } = logged_in(3600);
    assert_eq!(credential_files(&gw), 1);

    let logout = auth(&gw, &["logout", "remote"]);
    let said = String::from_utf8_lossy(&logout.stdout);
    assert!(logout.status.success() && said.contains("revoked"), "{said}{}", String::from_utf8_lossy(&logout.stderr));
    // The authorization server saw both tokens revoked, the refresh token first.
    let revocations = &seen(port)["revocations"];
    assert_eq!(
        revocations,
        &json!([{"hint": "refresh_token", "known": true}, {"hint": "access_token", "known": true}]),
        "{revocations}"
    );
    assert_eq!(credential_files(&gw), 0, "the store file is gone");
    assert_eq!(auth_status(&gw)["state"], "logged_out");
    let logins = status(&gw)["logins"].clone();
    assert_eq!(logins, json!([{"server": "remote", "state": "logged_out", "login": "mcp-gateway auth login remote"}]));

    // The next call is refused by the server: a login is needed, and said so.
    let reply = client.call_tool(json!(2), "remote__echo", json!({"message": "after logout"}));
    assert_eq!(reply["result"]["isError"], true, "{reply}\n{}", gw.daemon_log());
    assert!(first_text(&reply).contains("mcp-gateway auth login remote"), "{reply}");
    let logins = status(&gw)["logins"].clone();
    assert_eq!(logins, json!([{"server": "remote", "state": "logged_out", "login": "mcp-gateway auth login remote"}]));
    assert!(!gw.daemon_log().contains("access_token\":"), "no token material in the log");
}

/// Sets the fixture's controls (`token_status`, `withhold`).
fn control(port: u16, controls: Value) {
    let client = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}/control");
    client.post(url).json(&controls).send().expect("the fixture's control").error_for_status().unwrap();
}

/// Makes the fixture's token endpoint answer `status` (`null`: normally again).
fn token_endpoint(port: u16, status: Value) {
    control(port, json!({ "token_status": status }));
}

#[test]
fn a_401_while_the_authorization_server_is_down_keeps_the_login_and_says_wait() {
    // Two-second tokens: they expire while the authorization server is down.
    let LoggedIn { port, gw, mut client, _server } = logged_in(2);

    token_endpoint(port, json!(503));
    assert!(wait_until(TIMEOUT, || auth_status(&gw)["expires_in_secs"] == 0), "{}", auth_status(&gw));
    let reply = client.call_tool(json!(2), "remote__echo", json!({"message": "down"}));
    let text = serde_json::to_string(&reply).unwrap();
    assert!(text.contains("could not refresh it") && text.contains("login is kept"), "{reply}\n{}", gw.daemon_log());
    assert!(!text.contains("auth login"), "a refresh that cannot reach the server is no login: {reply}");
    assert_eq!(auth_status(&gw)["state"], "logged_in", "the tokens are kept");
    assert_eq!(status(&gw)["logins"], json!([]), "status names no login needed");

    // Back up: a later call refreshes (once its backoff pause is over) and
    // goes through, with no second login.
    token_endpoint(port, Value::Null);
    let mut n = 10;
    let mut reply = json!(null);
    assert!(
        wait_until(TIMEOUT, || {
            n += 1;
            reply = client.call_tool(json!(n), "remote__echo", json!({"message": "back"}));
            reply["result"]["content"][0]["text"] == "Echo: back"
        }),
        "{reply}\n{}",
        gw.daemon_log()
    );
    let stats = seen(port);
    assert_eq!((stats["logins"].as_u64(), stats["invalid_grant"].as_u64()), (Some(1), Some(0)), "{stats}");
    assert!(stats["token_failures_served"].as_u64() >= Some(1), "{stats}");
}

/// The credential file's bytes (the tokens of the last login).
fn credential(gw: &TestGateway) -> Vec<u8> {
    let dir = gw.home.join("oauth");
    let file = std::fs::read_dir(&dir).expect("the token store").flatten().next().expect("a credential").path();
    std::fs::read(file).expect("the credential")
}

#[test]
fn a_second_login_at_once_is_refused_and_a_daemon_killed_mid_login_keeps_the_last_good_token() {
    let LoggedIn { port, mut gw, mut client, _server } = logged_in(3600);
    let good = credential(&gw);

    // A login whose browser never comes back: it waits for its callback.
    let waiting = gw
        .command(DAEMON)
        .args(["auth", "login", "remote"])
        .env("MCP_GATEWAY_BROWSER", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn auth login");
    assert!(
        wait_until(TIMEOUT, || gw.daemon_log().matches("login: waiting for the browser").count() == 2),
        "{}",
        gw.daemon_log()
    );
    // A second login at once is refused, clearly; sessions go on meanwhile.
    let second = auth(&gw, &["login", "remote"]);
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success() && said.contains("a login to `remote` is already under way"), "{said}");
    assert_eq!(first_text(&client.call_tool(json!(2), "remote__echo", json!({"message": "b"}))), "Echo: b");

    // The daemon is killed while the login waits: the command says so.
    let mut daemon = gw.daemon.take().expect("the daemon");
    daemon.kill().expect("SIGKILL the daemon");
    daemon.wait().expect("reap the daemon");
    let out = waiting.wait_with_output().expect("auth login's end");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("the daemon stopped before the login to `remote` finished")
            && said.contains("tokens of an earlier login, if any, are kept")
            && said.contains("run `mcp-gateway auth login remote` again"),
        "{said}"
    );
    assert_eq!(credential(&gw), good, "the last good token is kept as it was");

    // A new daemon uses it (no new login), and a later login works.
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(3), "remote__echo", json!({"message": "c"}));
    assert_eq!(first_text(&reply), "Echo: c", "{reply}\n{}", gw.daemon_log());
    assert_eq!(seen(port)["logins"], 1);
    let again = auth(&gw, &["login", "remote"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(seen(port)["logins"], 2);
    assert_ne!(credential(&gw), good, "the new login's tokens replaced the old");
}

/// `url_login.py` calling `tool` with the redirect follower as its browser,
/// and `extra` arguments.
fn url_client(gw: &TestGateway, tool: &str, extra: &[&str]) -> Value {
    let browser = browser();
    let mut args = vec!["--tool-prefix", "", "--browser", &browser, "--tool", tool];
    args.extend_from_slice(extra);
    run_client_script(gw, "url_login.py", &args)
}

#[test]
fn a_403_for_more_scopes_sends_a_client_that_opens_urls_to_a_login_asking_for_the_union() {
    let LoggedIn { port, gw, mut client, _server } = logged_in(3600);

    // A client that cannot open URLs hears the command, and why.
    let reply = client.call_tool(json!(2), "remote__admin", json!({"message": "plain"}));
    assert_eq!(reply["result"]["isError"], true, "{reply}\n{}", gw.daemon_log());
    let text = first_text(&reply);
    assert!(text.contains("403 insufficient_scope") && text.contains("run `mcp-gateway auth login remote`"), "{reply}");
    assert_eq!(auth_status(&gw)["wanted_scopes"], "mcp mcp:admin", "auth status says more scopes are wanted");

    // A 2025-11-25 client that opens URLs: -32042, the daemon's login,
    // notifications/elicitation/complete, and its call again goes through.
    let result = url_client(&gw, "remote__admin", &[]);
    assert_eq!(result["texts"], json!(["Admin: after the login 0"]), "{result}\n{}", gw.daemon_log());
    let stats = seen(port);
    assert_eq!(stats["asked_scopes"], json!(["mcp", "mcp mcp:admin"]), "the step-up asks for the union: {stats}");
    assert_eq!(stats["logins"], 2, "{stats}");
    let status = auth_status(&gw);
    assert_eq!(status["scopes"], "mcp mcp:admin", "{status}");
    assert_eq!(status["wanted_scopes"], Value::Null, "nothing more is wanted: {status}");

    // The login is everyone's: the plain client's call goes through now.
    let reply = client.call_tool(json!(3), "remote__admin", json!({"message": "shared"}));
    assert_eq!(first_text(&reply), "Admin: shared", "{reply}\n{}", gw.daemon_log());
}

#[test]
fn a_2026_client_that_logs_in_within_its_call_gets_the_tools_answer_in_that_call() {
    let LoggedIn { port, gw, _server, .. } = logged_in(3600);

    // Step-up: one URL round within the call, then the tool's own answer.
    let result = url_client(&gw, "remote__admin", &["--mode", "auto"]);
    assert_eq!(result["text"], "Admin: in one call", "{result}\n{}", gw.daemon_log());
    assert_eq!(result["asked"], json!([["url", format!("127.0.0.1:{port}")]]), "{result}");
    let stats = seen(port);
    assert_eq!(stats["asked_scopes"], json!(["mcp", "mcp mcp:admin"]), "{stats}");
    assert_eq!(stats["insufficient_scope"], 1, "refused once, then sent again after the login: {stats}");

    // A login that lapsed (logged out): the same, the call sent again.
    let logout = auth(&gw, &["logout", "remote"]);
    assert!(logout.status.success(), "{}", String::from_utf8_lossy(&logout.stderr));
    let result = url_client(&gw, "remote__echo", &["--mode", "auto"]);
    assert_eq!(result["text"], "Echo: in one call", "{result}\n{}", gw.daemon_log());
    assert_eq!(seen(port)["logins"], 3);
}

#[test]
fn a_server_that_still_refuses_after_the_step_up_gets_one_login_and_a_clear_error() {
    let LoggedIn { port, gw, mut client, _server } = logged_in(3600);
    // The authorization server grants fewer scopes than asked.
    control(port, json!({ "withhold": ["mcp:admin"] }));
    let says_why = |text: &str| {
        text.contains("asks for scopes `mcp mcp:admin`")
            && text.contains("granted `mcp`, not `mcp:admin`")
            && text.contains("grant fewer scopes than asked")
    };

    // A 2026 client: one URL round, one login, the call sent once more, and
    // its refusal is the answer.
    let result = url_client(&gw, "remote__admin", &["--mode", "auto", "--expect-refusal"]);
    assert!(says_why(result["refusal"].as_str().unwrap_or_default()), "{result}\n{}", gw.daemon_log());
    assert_eq!(result["asked"].as_array().map(Vec::len), Some(1), "one login asked: {result}");
    let stats = seen(port);
    assert_eq!(stats["asked_scopes"], json!(["mcp", "mcp mcp:admin"]), "{stats}");
    assert_eq!(stats["insufficient_scope"], 2, "refused before the login and once after: {stats}");

    // Later calls hear the same at once: no login is asked again, of a
    // client that opens URLs or of one that does not.
    let result = url_client(&gw, "remote__admin", &["--expect-refusal"]);
    assert!(says_why(result["refusal"].as_str().unwrap_or_default()), "{result}");
    let reply = client.call_tool(json!(2), "remote__admin", json!({"message": "plain"}));
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert!(says_why(first_text(&reply)), "{reply}");
    let stats = seen(port);
    assert_eq!((stats["logins"].as_u64(), stats["asked_scopes"].as_array().map(Vec::len)), (Some(2), Some(2)));
    assert_eq!(auth_status(&gw)["wanted_scopes"], "mcp mcp:admin", "auth status says more scopes are wanted");

    // The tools the login covers work as ever.
    let reply = client.call_tool(json!(3), "remote__echo", json!({"message": "still"}));
    assert_eq!(first_text(&reply), "Echo: still", "{reply}");
}

/// The pre-registered public client of the fixture's authorization server
/// (`--client`), registered with the one redirect URI `uri`.
const APP: &str = "gateway-app";

/// A fixture on a port of its own that knows [`APP`] with `uri`, and the
/// config lines of a server `name` using that client on it.
fn pre_registered(gw: &TestGateway, name: &str, uri: &str) -> (u16, OwnedChild, String) {
    let port = free_port();
    let server = oauth_server_with(gw, port, 3600, &["--client", &format!("{APP}={uri}")]);
    let config = format!(
        "  {name}:\n    url: \"http://127.0.0.1:{port}/mcp\"\n    oauth: {{ client_id: {APP}, redirect_uri: \"{uri}\" }}\n"
    );
    (port, server, config)
}

#[test]
fn a_pre_registered_client_logs_in_on_its_fixed_redirect_uri() {
    let fixed = free_port();
    let uri = format!("http://127.0.0.1:{fixed}/oauth/done");
    let mut gw = TestGateway::new();
    let (port, _server, config) = pre_registered(&gw, "remote", &uri);
    gw.write_config(&format!("servers:\n{config}"));
    gw.start();

    // The fixture refuses any redirect URI but the registered one, so the
    // login below fails unless the gateway sends exactly that.
    let no_redirects =
        reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let refused = url::Url::parse_with_params(
        &format!("http://127.0.0.1:{port}/authorize"),
        [
            ("client_id", APP),
            ("redirect_uri", &format!("http://127.0.0.1:{fixed}/callback")),
            ("code_challenge_method", "S256"),
            ("code_challenge", "x"),
            ("state", "s"),
            ("resource", &format!("http://127.0.0.1:{port}/mcp")),
        ],
    )
    .unwrap();
    let other = no_redirects.get(refused).send().unwrap();
    assert_eq!(other.status(), 400);

    let login = auth(&gw, &["login", "remote"]);
    assert!(login.status.success(), "{}\n{}", String::from_utf8_lossy(&login.stderr), gw.daemon_log());
    let stats = seen(port);
    assert_eq!(
        (stats["logins"].as_u64(), stats["registrations"].as_u64(), stats["redirect_mismatch"].as_u64()),
        (Some(1), Some(0), Some(1)),
        "one login, no registration, no mismatch but the test's own: {stats}"
    );
    assert_eq!(auth_status(&gw)["registration"], "pre_registered");
    assert_eq!(auth_status(&gw)["tokens_in"], "files", "the default store");
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "remote__echo", json!({"message": "fixed"}));
    assert_eq!(first_text(&reply), "Echo: fixed", "{reply}\n{}", gw.daemon_log());
}

#[test]
fn a_busy_fixed_redirect_port_and_a_second_login_on_it_are_clear_errors() {
    let fixed = free_port();
    let uri = format!("http://127.0.0.1:{fixed}/callback");
    let mut gw = TestGateway::new();
    let (_, _a, first) = pre_registered(&gw, "first", &uri);
    let (_, _b, second) = pre_registered(&gw, "second", &uri);
    gw.write_config(&format!("servers:\n{first}{second}"));
    gw.start();

    // Another program holds the port: the login says which port, for which
    // server, at once (no wait for a callback that cannot come).
    let holder = std::net::TcpListener::bind(("127.0.0.1", fixed)).expect("hold the port");
    let busy = auth(&gw, &["login", "first"]);
    let said = String::from_utf8_lossy(&busy.stderr);
    assert!(!busy.status.success(), "{said}");
    assert!(
        said.contains(&format!("127.0.0.1:{fixed}")) && said.contains("`first`") && said.contains("in use"),
        "{said}"
    );
    drop(holder);

    // A login to `first` waits on the port; one to `second` hears whose it is.
    let waiting = gw
        .command(DAEMON)
        .args(["auth", "login", "first"])
        .env("MCP_GATEWAY_BROWSER", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn auth login");
    assert!(wait_until(TIMEOUT, || gw.daemon_log().contains("login: waiting for the browser")), "{}", gw.daemon_log());
    let second = auth(&gw, &["login", "second"]);
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(said.contains(&format!("port {fixed}")) && said.contains("the login to `first` under way"), "{said}");
    // A daemon told to stop does not wait for the person: the login ends
    // with why, and the daemon stops.
    let stop = gw.command(DAEMON).arg("stop").output().expect("mcp-gateway stop");
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let ended = waiting.wait_with_output().expect("the waiting login ends");
    let said = String::from_utf8_lossy(&ended.stderr);
    assert!(!ended.status.success() && said.contains("the daemon is stopping"), "{said}");
    let mut daemon = gw.daemon.take().expect("the daemon");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while daemon.try_wait().expect("the daemon's state").is_none() {
        assert!(std::time::Instant::now() < deadline, "the daemon did not stop: {}", gw.daemon_log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A gateway whose `servers:` are client-credentials servers (name → the
/// fixture's port and the `.env` variable holding its secret), with the
/// gateway `.env` given.
fn machine_gateway(servers: &[(&str, u16, &str)], env: &str) -> TestGateway {
    let mut yaml = String::from("servers:\n");
    for (name, port, secret) in servers {
        yaml.push_str(&format!(
            "  {name}:\n    url: \"http://127.0.0.1:{port}/mcp\"\n    oauth: {{ grant: client_credentials, \
             client_id: svc, client_secret: \"${{{secret}}}\" }}\n"
        ));
    }
    let gw = TestGateway::new();
    gw.write_config(&yaml);
    let env_file = gw.home.join(".env");
    std::fs::write(&env_file, env).expect("write .env");
    std::fs::set_permissions(&env_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod .env");
    gw
}

#[test]
fn a_client_credentials_server_needs_no_login_and_gets_a_new_token_on_expiry_and_on_a_401() {
    let port = free_port();
    // A secret that must be form-encoded in the Basic header.
    let mut gw = machine_gateway(&[("remote", port, "SVC_SECRET")], "SVC_SECRET=s3cr&t:+x\n");
    let _server = oauth_server_with(&gw, port, 3, &["--machine", "svc=s3cr&t:+x"]);
    gw.start();

    // No login: the first call fetches a token with the client credentials.
    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "remote__echo", json!({"message": "no login"}));
    assert_eq!(first_text(&reply), "Echo: no login", "{reply}\n{}", gw.daemon_log());
    let stats = seen(port);
    assert_eq!((stats["client_credentials"].as_u64(), stats["logins"].as_u64()), (Some(1), Some(0)), "{stats}");
    assert_eq!(stats["registrations"], 0, "a pre-registered machine client registers nothing");
    let row = auth_status(&gw);
    assert_eq!((row["state"].as_str(), row["registration"].as_str()), (Some("logged_in"), Some("client_credentials")));
    assert_eq!(row["refreshable"], false, "{row}");
    assert!(row["error"].is_null(), "{row}");
    assert_eq!(status(&gw)["logins"], json!([]), "nobody is asked to log in");

    // The token expires (3 s): the next call fetches a new one, not a login.
    assert!(
        wait_until(TIMEOUT, || auth_status(&gw)["expires_in_secs"] == 0),
        "the token never expired: {}",
        auth_status(&gw)
    );
    let reply = client.call_tool(json!(2), "remote__echo", json!({"message": "after expiry"}));
    assert_eq!(first_text(&reply), "Echo: after expiry", "{reply}\n{}", gw.daemon_log());
    let stats = seen(port);
    assert_eq!((stats["client_credentials"].as_u64(), stats["logins"].as_u64()), (Some(2), Some(0)), "{stats}");

    // The server refuses the token (the authorization server forgot it): a
    // new one is fetched on the 401 and the call goes through.
    control(port, json!({ "forget_tokens": true }));
    let reply = client.call_tool(json!(3), "remote__echo", json!({"message": "after a 401"}));
    assert_eq!(first_text(&reply), "Echo: after a 401", "{reply}\n{}", gw.daemon_log());
    let stats = seen(port);
    assert_eq!(stats["client_credentials"], 3, "{stats}");
    assert!(stats["unauthorized"].as_u64() >= Some(1), "{stats}");

    // `auth login` on such a server fetches a token, and says so.
    let login = auth(&gw, &["login", "remote"]);
    let said = String::from_utf8_lossy(&login.stdout);
    assert!(login.status.success(), "{said}{}", String::from_utf8_lossy(&login.stderr));
    assert!(said.contains("fetched a token for `remote` with its client credentials"), "{said}");
    let stats = seen(port);
    assert_eq!((stats["client_credentials"].as_u64(), stats["logins"].as_u64()), (Some(4), Some(0)), "{stats}");

    // A tool that needs more scopes (403 insufficient_scope): a token asking
    // for them too is fetched, nobody logs in, and the call goes through.
    let reply = client.call_tool(json!(4), "remote__admin", json!({"message": "stepped up"}));
    assert_eq!(first_text(&reply), "Admin: stepped up", "{reply}\n{}", gw.daemon_log());
    let stats = seen(port);
    assert_eq!((stats["client_credentials"].as_u64(), stats["logins"].as_u64()), (Some(5), Some(0)), "{stats}");
    assert!(!gw.daemon_log().contains("s3cr&t"), "the secret stays out of the log");
    let stored = std::fs::read_dir(gw.home.join("oauth")).unwrap().flatten().map(|e| e.path());
    for file in stored.filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("s3cr&t"), "the secret stays out of the store: {}", file.display());
    }
}

#[test]
fn a_refused_client_secret_is_a_clear_error_naming_the_server_and_others_keep_working() {
    let (good_port, bad_port) = (free_port(), free_port());
    let mut gw = machine_gateway(
        &[("good", good_port, "GOOD_SECRET"), ("bad", bad_port, "BAD_SECRET")],
        "GOOD_SECRET=right\nBAD_SECRET=not-the-secret-9f3\n",
    );
    // `good` authenticates in the body (the only method its server offers),
    // `bad` with HTTP Basic, and a secret its server does not know.
    let _good = oauth_server_with(&gw, good_port, 3600, &["--machine", "svc=right", "--machine-auth", "post"]);
    let _bad = oauth_server_with(&gw, bad_port, 3600, &["--machine", "svc=right"]);
    gw.start();

    let mut client = gw.client();
    client.initialize();
    let reply = client.call_tool(json!(1), "good__echo", json!({"message": "still fine"}));
    assert_eq!(first_text(&reply), "Echo: still fine", "{reply}\n{}", gw.daemon_log());
    let reply = client.call_tool(json!(2), "bad__echo", json!({"message": "refused"}));
    let text = reply.to_string();
    assert!(text.contains("invalid_client") && text.contains("`oauth.client_secret`"), "{reply}");
    assert!(!text.contains("not-the-secret"), "{reply}");
    assert!(seen(bad_port)["invalid_client"].as_u64() >= Some(1), "{}", seen(bad_port));
    assert_eq!(seen(good_port)["client_credentials"], 1);

    // `auth status`, `status` and `doctor` say why, and which keys to check.
    let out = auth(&gw, &["status", "bad", "--json"]);
    let row = serde_json::from_slice::<Value>(&out.stdout).expect("auth status --json")["servers"][0].clone();
    assert_eq!(row["state"], "credentials_refused", "{row}");
    let why = row["error"].as_str().unwrap_or_default();
    assert!(why.contains("`oauth.client_id` and `oauth.client_secret` of server `bad`"), "{row}");
    let problems = status(&gw)["credentials"].clone();
    assert_eq!(problems.as_array().map(Vec::len), Some(1), "{problems}");
    assert_eq!(problems[0]["server"], "bad", "{problems}");
    assert_eq!(status(&gw)["logins"], json!([]), "no login is asked of anyone");
    let doctor = gw.command(DAEMON).arg("doctor").output().expect("doctor");
    let said = String::from_utf8_lossy(&doctor.stdout).to_string() + &String::from_utf8_lossy(&doctor.stderr);
    assert!(said.contains("`bad` gets no token with its client credentials"), "{said}");

    // `auth login` says the same, and the other server still answers.
    let login = auth(&gw, &["login", "bad"]);
    let said = String::from_utf8_lossy(&login.stderr);
    assert!(!login.status.success() && said.contains("invalid_client") && said.contains("`bad`"), "{said}");
    let reply = client.call_tool(json!(3), "good__echo", json!({"message": "still fine"}));
    assert_eq!(first_text(&reply), "Echo: still fine", "{reply}");
    let log = gw.daemon_log();
    assert!(!log.contains("not-the-secret") && !log.contains("GOOD_SECRET=right"), "no secret in the log");
}
