//! The gateway as the local edge of a team gateway: the real IBM ContextForge
//! (pinned by `tests/support/deps.sh`), on loopback with SQLite in a temp
//! directory, in front of the real server-everything over Streamable HTTP.
//! Our daemon reaches ContextForge's virtual server as a remote (`url:`)
//! server with a bearer token from the gateway `.env`, written by hand or by
//! `import --from URL`; and the other way, ContextForge reaches our front
//! door as a federated peer (`federate`).

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
    /// connects and lists the tools), then a virtual server `team` exposing
    /// its `echo`, `get-sum` and long-running tool; returns the virtual
    /// server's MCP endpoint.
    pub(crate) fn serve(&self, name: &str, url: &str) -> String {
        self.api(
            reqwest::Method::POST,
            "/gateways",
            Some(json!({"name": name, "url": url, "transport": "STREAMABLEHTTP"})),
        );
        let tools = self.api(reqwest::Method::GET, "/tools", None);
        let ids: Vec<String> = ["echo", "get-sum", "trigger-long-running-operation"]
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
        self.virtual_server("team", &ids)
    }

    /// Makes a virtual server `name` of the tools `ids`; returns its MCP endpoint.
    fn virtual_server(&self, name: &str, ids: &[String]) -> String {
        let server = self.api(
            reqwest::Method::POST,
            "/servers",
            Some(json!({"server": {"name": name, "associated_tools": ids}})),
        );
        let id = server["id"].as_str().unwrap_or_else(|| panic!("no id in {server}"));
        format!("{}/servers/{id}/mcp", self.base)
    }

    /// Calls `tool` at a virtual server's MCP endpoint as a team member's
    /// client would (Streamable HTTP: initialize, initialized, tools/call);
    /// returns the call's answer.
    fn call_tool(&self, endpoint: &str, tool: &str, arguments: Value) -> Value {
        let http = reqwest::blocking::Client::new();
        let post = |session: Option<&str>, body: Value| {
            let mut request = http
                .post(endpoint)
                .bearer_auth(&self.token)
                .header("Accept", "application/json, text/event-stream")
                .json(&body);
            if let Some(session) = session {
                request = request.header("Mcp-Session-Id", session);
            }
            request.send().unwrap_or_else(|e| panic!("ContextForge {endpoint}: {e}"))
        };
        let init = post(
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "team-member", "version": "1"}}}),
        );
        let session = init.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        assert!(init.status().is_success(), "initialize: {}", init.status());
        let _ = http_messages(init);
        let _ = post(session.as_deref(), json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let call = post(
            session.as_deref(),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
        );
        http_messages(call).into_iter().find(|m| m["id"] == 2).unwrap_or_else(|| panic!("no answer to tools/call"))
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

/// `mcp-gateway import --from URL` with the gateway's output, exit status
/// and stderr; the token (when given) through MCP_GATEWAY_TEAM_TOKEN, and
/// MCP_GATEWAY_SOCKET pointing where no daemon runs, so only `--socket`
/// reaches the test's daemon.
fn import_from(gw: &TestGateway, url: &str, token: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = gw.command(DAEMON);
    command
        .args(["import", "--from", url])
        .args(args)
        .env("MCP_GATEWAY_SOCKET", gw.dir.path().join("nobody-here.sock"))
        .env_remove("MCP_GATEWAY_TEAM_TOKEN")
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.env("MCP_GATEWAY_TEAM_TOKEN", token);
    }
    command.output().expect("run mcp-gateway import")
}

/// Both ways with one ContextForge (its start is most of the time):
/// `import --from URL` adds its virtual server, which a real client then
/// calls through our daemon; `federate` registers our front door in it as a
/// peer with one profile's token, and a team member's client calls a local
/// tool of that profile (and sees no other) through ContextForge.
#[test]
fn a_team_gateway_both_ways_its_servers_imported_here_and_the_front_door_registered_there() {
    let mut gw = TestGateway::new();
    let front_door_port = free_port();
    gw.write_config(&format!(
        "servers:\n  alpha:\n{}  private:\n{}profiles:\n  team: {{ servers: [alpha] }}\nhttp:\n  listen: \
         \"127.0.0.1:{front_door_port}\"\n  auth: {{ bearer_tokens: [{{ token: \"${{PEER_TOKEN}}\", profile: team }}] \
         }}\n",
        fixture_server("alpha"),
        fixture_server("private")
    ));
    let peer_token = "peer-token-Zq8wX3vB6nM1kL4t";
    let env_file = gw.home.join(".env");
    std::fs::write(&env_file, format!("PEER_TOKEN={peer_token}\n")).expect("write .env");
    std::fs::set_permissions(&env_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod .env");
    let env_before = std::fs::read_to_string(&env_file).unwrap();
    let everything_port = free_port();
    let _everything = everything_over_http(&gw, everything_port, "streamableHttp");
    let cf = ContextForge::start(&gw, &gw.dir.path().join("contextforge"));
    let endpoint = cf.serve("everything", &format!("http://127.0.0.1:{everything_port}/mcp"));
    let config_path = gw.home.join("config.yaml");
    let before = std::fs::read_to_string(&config_path).unwrap();
    let text = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };

    // What cannot be imported is said as such, and nothing is written.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let not_contextforge = format!("http://127.0.0.1:{everything_port}");
    let refusals = [
        (nobody.as_str(), Some(cf.token.as_str()), "could not reach the team gateway at"),
        (cf.base.as_str(), None, "HTTP 401"),
        (cf.base.as_str(), Some("not-a-token-of-this-gateway"), "does not accept the token"),
        (not_contextforge.as_str(), Some(cf.token.as_str()), "does not look like a ContextForge"),
    ];
    for (url, token, said) in refusals {
        let out = import_from(&gw, url, token, &["--yes"]);
        assert!(!out.status.success() && text(&out).contains(said), "{url}: {}", text(&out));
    }
    let out = import_from(&gw, "ftp://example.com", None, &["--yes"]);
    assert!(!out.status.success() && text(&out).contains("not an http(s) URL"), "{}", text(&out));
    let out = import_from(&gw, &cf.base, Some(&cf.token), &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = text(&out);
    assert!(plan.contains("+ team") && plan.contains("Bearer ${TEAM_GATEWAY_TOKEN}"), "{plan}");
    assert!(plan.contains(&endpoint), "{plan}");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), before, "nothing written");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), env_before, "nothing written");

    // With the daemon running on the socket given: it applies the import,
    // and lists the new server at once (it starts it as on a first use).
    gw.start();
    let socket = gw.socket.display().to_string();
    let out = import_from(&gw, &cf.base, Some(&cf.token), &["--yes", "--socket", &socket]);
    let said = text(&out);
    assert!(out.status.success(), "{said}\n{}", gw.daemon_log());
    assert!(said.contains("the running daemon applied it") && !said.contains("no daemon"), "{said}");
    assert!(said.contains("listed `team` (3 tool(s)) for the catalog"), "{said}\n{}", gw.daemon_log());
    assert!(status(&gw)["catalog_age_secs"]["team"].is_u64(), "{}", status(&gw));
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains(&endpoint) && config.contains("Bearer ${TEAM_GATEWAY_TOKEN}"), "{config}");
    let mut kept = config.lines();
    assert!(before.lines().all(|line| kept.any(|l| l == line)), "the rest of the config is kept, in order: {config}");
    assert_eq!(std::fs::read_to_string(gw.home.join("config.yaml.bak")).unwrap(), before);
    let dotenv = std::fs::read_to_string(&env_file).unwrap();
    assert!(dotenv.starts_with(&env_before), "{dotenv}");
    assert!(dotenv.contains(&format!("TEAM_GATEWAY_TOKEN='{}'", cf.token)), "{dotenv}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(gw.home.join(".env")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(!config.contains(&cf.token) && !said.contains(&cf.token), "the token stays in .env");

    // A real client (the Python SDK, through the shim) calls the imported
    // server's tools through our daemon and ContextForge.
    let result = run_client_script(&gw, "basic.py", &["--tool-prefix", "team__everything-"]);
    assert_eq!(result["echo"], "Echo: hello gateway", "{result}");
    assert!(result["sum"].as_str().is_some_and(|s| s.contains('5')), "{result}");

    // Importing again adds nothing: the virtual server is already there.
    let out = import_from(&gw, &cf.base, Some(&cf.token), &["--yes", "--socket", &socket]);
    let said = text(&out);
    assert!(said.contains("Nothing new") && said.contains("virtual server `team` is `team`"), "{said}");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), config);

    // The other way round: the front door registered in ContextForge as a
    // federated peer, with the front-door token of profile `team`.
    let federate = |args: &[&str], token: Option<&str>| {
        let mut command = gw.command(DAEMON);
        command.arg("federate").arg(&cf.base).args(["--profile", "team"]).args(args).stdin(Stdio::null());
        match token {
            Some(token) => command.env("MCP_GATEWAY_TEAM_TOKEN", token),
            None => command.env_remove("MCP_GATEWAY_TEAM_TOKEN"),
        };
        let out = command.output().expect("run mcp-gateway federate");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains(peer_token) && !text.contains(&cf.token), "a token was printed:\n{text}");
        (out.status.success(), text)
    };

    // --print shows the registration, never the token, and sends nothing.
    let (ok, printed) = federate(&["--name", "laptop", "--print"], None);
    assert!(ok && printed.contains("\"url\": \"http://127.0.0.1:") && printed.contains("${PEER_TOKEN}"), "{printed}");
    let (ok, refused) = federate(&["--name", "laptop"], None);
    assert!(!ok && refused.contains("HTTP 401"), "{refused}");

    let (ok, said) = federate(&["--name", "laptop"], Some(&cf.token));
    assert!(ok, "{said}\n{}\n{}", gw.daemon_log(), read(&cf.log));
    assert!(said.contains("registered the front door") && said.contains("as `laptop`"), "{said}");
    let tools = cf.api(reqwest::Method::GET, "/tools", None);
    let names: Vec<&str> = tools.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    let echo = names
        .iter()
        .find(|n| n.starts_with("laptop-") && n.contains("alpha") && n.ends_with("echo"))
        .unwrap_or_else(|| panic!("no alpha echo from the front door among {names:?}\n{said}"));
    assert!(said.contains(echo), "{said}");
    assert!(!names.iter().any(|n| n.contains("private")), "only the profile's servers: {names:?}");

    // A team member calls it through a virtual server of ContextForge, which
    // calls our front door with the profile's token.
    let id = tools
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == *echo)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no id for {echo}"))
        .to_string();
    let endpoint = cf.virtual_server("from-laptop", &[id]);
    let listed = cf.api(
        reqwest::Method::GET,
        &format!("{}/tools", endpoint.trim_start_matches(&cf.base).trim_end_matches("/mcp")),
        None,
    );
    let exposed = listed[0]["name"].as_str().unwrap_or_else(|| panic!("{listed}")).to_string();
    let answer = cf.call_tool(&endpoint, &exposed, json!({"message": "from the team"}));
    let text = serde_json::to_string(&answer).unwrap();
    assert!(text.contains("alpha: from the team"), "{answer}\n{}\n{}", gw.daemon_log(), read(&cf.log));

    // A second peer of the same name is refused, saying so.
    let (ok, taken) = federate(&["--name", "laptop"], Some(&cf.token));
    assert!(!ok && taken.contains("already has a peer named `laptop`"), "{taken}");
    let log = gw.daemon_log();
    assert!(!log.contains(peer_token) && !log.contains(&cf.token), "the tokens never reach the log");
}
