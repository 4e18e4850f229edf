//! The gateway as the local edge of a team gateway: the real IBM ContextForge
//! (pinned by `tests/support/deps.sh`), on loopback with SQLite in a temp
//! directory, in front of the real server-everything over Streamable HTTP.
//! Our daemon reaches ContextForge's virtual server as a remote (`url:`)
//! server with a bearer token from the gateway `.env`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// ContextForge's admin login in these tests (its own users, nothing real).
const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "Team-Gateway-Test-9f3k";

/// ContextForge's start-up (migrations on a fresh SQLite file included).
const STARTUP: Duration = Duration::from_secs(60);

/// A running ContextForge: its base URL, the admin's token, where it logs.
/// (`trace.rs` uses it too.)
pub(crate) struct ContextForge {
    pub(crate) base: String,
    port: u16,
    dir: std::path::PathBuf,
    pub(crate) token: String,
    pub(crate) log: std::path::PathBuf,
    process: Option<OwnedChild>,
}

impl ContextForge {
    /// Starts ContextForge in `dir` on a free loopback port, waits for its
    /// health endpoint, and logs the admin in for a JWT it issues.
    pub(crate) fn start(gw: &TestGateway, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("contextforge dir");
        let port = free_port();
        let mut cf = Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            dir: dir.to_path_buf(),
            token: String::new(),
            log: dir.join("contextforge.log"),
            process: None,
        };
        cf.spawn(gw);
        let login: Value = reqwest::blocking::Client::new()
            .post(format!("{}/auth/email/login", cf.base))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("ContextForge login: {e}\n{}", read(&cf.log)));
        cf.token = login["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {login}")).to_string();
        cf
    }

    /// Stops ContextForge and starts it again on the same port and database
    /// (what it registered, and the tokens it issued, stay valid).
    fn restart(&mut self, gw: &TestGateway) {
        self.process = None;
        self.spawn(gw);
    }

    /// Runs ContextForge and waits until its health endpoint answers.
    fn spawn(&mut self, gw: &TestGateway) {
        let entry = contextforge_entry();
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("contextforge log");
        let err = out.try_clone().expect("contextforge log");
        // Settings from mcpgateway/config.py: secrets long and random enough
        // for its checks; loopback servers allowed (its SSRF guard blocks
        // them by default); no admin UI, no Redis, no plugins, no forced
        // password change for the bootstrapped admin.
        let child = gw
            .command(&entry)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .current_dir(&self.dir)
            .env("DATABASE_URL", format!("sqlite:///{}", self.dir.join("mcp.db").display()))
            .env("JWT_SECRET_KEY", "Kx9mQ2vR7tLp4ZsW8nJc3HfY6bGdA1eU")
            .env("AUTH_ENCRYPTION_SECRET", "Vb7Nq3Lz9Wt2Rk5Hy8Mf4Xc1Jp6Gs0Dd")
            .env("BASIC_AUTH_PASSWORD", "Bas1c-Test-Pa55word-7q")
            .env("PLATFORM_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("PLATFORM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("ADMIN_REQUIRE_PASSWORD_CHANGE_ON_BOOTSTRAP", "false")
            .env("SSRF_ALLOW_LOCALHOST", "true")
            .env("SSRF_ALLOW_PRIVATE_NETWORKS", "true")
            .env("MCPGATEWAY_UI_ENABLED", "false")
            .env("MCPGATEWAY_ADMIN_API_ENABLED", "false")
            .env("CACHE_TYPE", "memory")
            .env("PLUGINS_ENABLED", "false")
            .env("LOG_LEVEL", "INFO")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ContextForge ({entry}): {e}"));
        self.process = Some(OwnedChild(child));
        let http = reqwest::blocking::Client::new();
        let health = format!("{}/health", self.base);
        let healthy = wait_until(STARTUP, || http.get(&health).send().is_ok_and(|r| r.status().is_success()));
        assert!(healthy, "ContextForge did not become healthy on {}:\n{}", self.base, read(&self.log));
    }

    /// An authenticated call of ContextForge's REST API.
    fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request =
            reqwest::blocking::Client::new().request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap_or_else(|e| panic!("ContextForge {path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert!(status.is_success(), "ContextForge {path}: {status}: {text}\n{}", read(&self.log));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ContextForge {path}: {e}: {text}"))
    }

    /// Registers the MCP server at `url` as a ContextForge gateway (it
    /// connects and lists the tools), then a virtual server exposing its
    /// `echo`; returns the virtual server's MCP endpoint.
    pub(crate) fn serve(&self, name: &str, url: &str) -> String {
        self.api(
            reqwest::Method::POST,
            "/gateways",
            Some(json!({"name": name, "url": url, "transport": "STREAMABLEHTTP"})),
        );
        let tools = self.api(reqwest::Method::GET, "/tools", None);
        let ids: Vec<String> = ["echo", "trigger-long-running-operation"]
            .iter()
            .map(|tool| {
                let wanted = format!("{name}-{tool}");
                tools
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["name"] == wanted.as_str()))
                    .and_then(|t| t["id"].as_str())
                    .unwrap_or_else(|| panic!("no {wanted} among ContextForge's tools: {tools}"))
                    .to_string()
            })
            .collect();
        let server = self.api(
            reqwest::Method::POST,
            "/servers",
            Some(json!({"server": {"name": "team", "associated_tools": ids}})),
        );
        let id = server["id"].as_str().unwrap_or_else(|| panic!("no id in {server}"));
        format!("{}/servers/{id}/mcp", self.base)
    }

    /// How many requests to `path` ContextForge answered with `status`
    /// (its access log).
    fn answered(&self, path: &str, status: u16) -> usize {
        let needle = format!("POST {path} HTTP/1.1\\\" {status}");
        read(&self.log).lines().filter(|l| l.contains(&needle)).count()
    }
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// ContextForge's entry point, or a failure that says why deps.sh could not
/// install it.
fn contextforge_entry() -> String {
    let d = deps();
    if let Some(entry) = d.vars.get("MCP_TEST_CONTEXTFORGE") {
        return entry.clone();
    }
    let why = d.vars.get("MCP_TEST_CONTEXTFORGE_ERROR").map(|f| read(Path::new(f))).unwrap_or_default();
    panic!("tests/support/deps.sh could not install ContextForge (mcp-contextforge-gateway):\n{why}");
}

fn backends_of(gw: &TestGateway, server: &str) -> Vec<Value> {
    status(gw)["backends"].as_array().into_iter().flatten().filter(|b| b["server"] == server).cloned().collect()
}

#[test]
fn two_terminals_share_one_connection_to_a_team_gateway_across_its_restart_and_a_bad_token_is_named_not_retried() {
    let mut gw = TestGateway::new();
    let everything_port = free_port();
    let _everything = everything_over_http(&gw, everything_port, "streamableHttp");
    let mut cf = ContextForge::start(&gw, &gw.dir.path().join("contextforge"));
    let endpoint = cf.serve("everything", &format!("http://127.0.0.1:{everything_port}/mcp"));
    let path = endpoint.trim_start_matches(&cf.base).to_string();

    gw.write_config(&format!(
        "servers:\n  team:\n    url: \"{endpoint}\"\n    headers: {{ Authorization: \"Bearer ${{CF_TOKEN}}\" }}\n  \
         denied:\n    url: \"{endpoint}\"\n    headers: {{ Authorization: \"Bearer ${{CF_WRONG_TOKEN}}\" }}\n"
    ));
    let env_file = gw.home.join(".env");
    std::fs::write(&env_file, format!("CF_TOKEN={}\nCF_WRONG_TOKEN=not-a-token-of-this-gateway\n", cf.token))
        .expect("write .env");
    std::fs::set_permissions(&env_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod .env");
    gw.start();

    // Two terminals, each its own echo, through one upstream connection.
    let mut one = gw.client();
    let mut two = gw.client();
    one.initialize();
    two.initialize();
    let names = one.tool_names();
    assert!(names.contains(&"team__everything-echo".to_string()), "{names:?}\n{}", gw.daemon_log());
    for round in 0..3 {
        let a = one.call_tool(json!(round), "team__everything-echo", json!({"message": format!("one-{round}")}));
        let b = two.call_tool(json!(round), "team__everything-echo", json!({"message": format!("two-{round}")}));
        assert_eq!(first_text(&a), format!("Echo: one-{round}"), "{a}\n{}", gw.daemon_log());
        assert_eq!(first_text(&b), format!("Echo: two-{round}"), "{b}");
    }
    let team = backends_of(&gw, "team");
    assert_eq!(team.len(), 1, "one upstream instance for both terminals: {team:?}");
    assert_eq!(team[0]["sessions"], 2, "{team:?}");

    // A long call in one terminal does not hold up the other's on the same
    // connection, and each result goes to its caller. (ContextForge 1.0.7
    // does not relay the upstream server's progress notifications, so no
    // progress is asserted to arrive; none may reach the wrong terminal.)
    let long_name = names
        .iter()
        .find(|n| n.starts_with("team__everything-trigger-long"))
        .unwrap_or_else(|| panic!("no long-running tool in {names:?}"))
        .clone();
    one.send(&json!({"jsonrpc": "2.0", "id": "long", "method": "tools/call", "params": {
        "name": long_name, "arguments": {"duration": 2, "steps": 2}, "_meta": {"progressToken": "mine"}}}));
    assert!(wait_until(TIMEOUT, || backends_of(&gw, "team")[0]["in_flight"] == 1), "{}", status(&gw));
    let echo = two.call_tool(json!("during"), "team__everything-echo", json!({"message": "meanwhile"}));
    assert_eq!(first_text(&echo), "Echo: meanwhile", "{echo}");
    let long = one.response(&json!("long"));
    assert!(first_text(&long).starts_with("Long running operation completed"), "{long}");
    assert!(
        one.stash.iter().chain(&two.stash).all(|m| m["method"] != "notifications/progress"
            || (m["params"]["progressToken"] == "mine" && one.stash.contains(m))),
        "progress only to its caller: {:?} / {:?}",
        one.stash,
        two.stash
    );

    // The team gateway restarts (a new process on the same database): the terminals
    // next calls still work, on one instance still.
    cf.restart(&gw);
    for (client, who) in [(&mut one, "one"), (&mut two, "two")] {
        let reply = client.call_tool(json!("restarted"), "team__everything-echo", json!({"message": who}));
        assert_eq!(first_text(&reply), format!("Echo: {who}"), "{reply}\n{}", gw.daemon_log());
    }
    let team = backends_of(&gw, "team");
    assert_eq!(team.len(), 1, "one upstream instance for both terminals: {team:?}");
    assert_eq!(team[0]["sessions"], 2, "{team:?}");

    // A token ContextForge does not accept: a clear error naming the server
    // and what to check, and the refusal is not hammered: one try per
    // attempt to use the server, none while nobody asks.
    let reply = one.call_tool(json!("bad"), "denied__everything-echo", json!({"message": "no"}));
    let text = serde_json::to_string(&reply).unwrap();
    assert!(
        text.contains("server `denied`") && text.contains("401") && text.contains("`Authorization` of its `headers:`"),
        "{reply}\n{}",
        gw.daemon_log()
    );
    let reply = two.call_tool(json!("bad"), "denied__everything-echo", json!({"message": "no"}));
    assert!(serde_json::to_string(&reply).unwrap().contains("server `denied`"), "{reply}");
    let refused = cf.answered(&path, 401);
    // Both terminals listed tools (each may have tried to start `denied`),
    // then each called it once.
    assert!((2..=4).contains(&refused), "{refused} refused requests\n{}", read(&cf.log));
    assert!(
        !wait_until(Duration::from_secs(2), || cf.answered(&path, 401) > refused),
        "the daemon kept sending the refused token: {} refused requests",
        cf.answered(&path, 401)
    );
    // The good server is untouched by its neighbour's bad credentials.
    let a = one.call_tool(json!("after"), "team__everything-echo", json!({"message": "still here"}));
    assert_eq!(first_text(&a), "Echo: still here", "{a}");
    let log = gw.daemon_log();
    assert!(!log.contains(&cf.token) && !log.contains("not-a-token-of-this-gateway"), "tokens never reach the log");
}
