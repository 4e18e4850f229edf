//! The real AI clients, end to end: Claude Code, Codex CLI and Gemini CLI
//! (pinned, installed from npm by tests/support/deps.sh) each get their config
//! from `mcp-gateway setup CLIENT`, pass their own health check, and make one
//! real `tools/call` of server-everything's `echo` through the shim, asked to
//! by a fake of their model API on 127.0.0.1 (tests/fixtures/fake_model.py).
//! Each is offered names cut to the room its own prefix leaves, and Claude
//! Code keeps a long call alive on the progress the gateway relays.
//!
//! Every client runs with a scratch HOME and XDG directories and an
//! environment that holds nothing of the gateway's: no `MCP_GATEWAY_*`, no
//! `XDG_RUNTIME_DIR`. What finds the daemon is what `setup` wrote into the
//! client's entry, as it must be for Codex, which passes its servers a short
//! whitelist of variables whatever the terminal had.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// How long one client run may take (each takes a few seconds).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// The gateway's name for server-everything's echo tool; every client puts its
/// own prefix in front (`mcp__gateway__`, `mcp_gateway_`, Codex's namespace).
const TOOL: &str = "everything__echo";

/// A server whose name is long enough that `<server>__<tool>` fits in 64
/// characters but not behind a client's prefix (`mcp__gateway__` + 59): the
/// fake model, like the real APIs, refuses a tool name over 64, and the
/// gateway shortens these names to what each client leaves.
const LONG_SERVER: &str = "fixture-server-with-a-name-long-enough-to-matter";

/// The clients under test.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    ClaudeCode,
    Codex,
    Gemini,
}

impl Kind {
    /// The name `mcp-gateway setup` takes.
    fn setup_name(self) -> &'static str {
        match self {
            Kind::ClaudeCode => "claude-code",
            Kind::Codex => "codex",
            Kind::Gemini => "gemini-cli",
        }
    }

    fn binary(self) -> &'static str {
        deps().get(match self {
            Kind::ClaudeCode => "MCP_TEST_CLAUDE",
            Kind::Codex => "MCP_TEST_CODEX",
            Kind::Gemini => "MCP_TEST_GEMINI",
        })
    }

    /// The API the client speaks, as fake_model.py tags its messages.
    fn api(self) -> &'static str {
        match self {
            Kind::ClaudeCode => "anthropic",
            Kind::Codex => "openai",
            Kind::Gemini => "gemini",
        }
    }
}

/// fake_model.py on a free port: it answers the first request that offers
/// the echo tool with a call of it, and the one that carries the result with
/// `RESULT: <result>`.
struct FakeModel {
    _child: OwnedChild,
    port: u16,
    log: PathBuf,
    /// The arguments of the tool call it asks for, when this file exists.
    args: PathBuf,
}

impl FakeModel {
    /// `hold`: how many tool results to gather before any final answer (0: none).
    fn start(dir: &Path, tool: &str, message: &str, hold: usize) -> FakeModel {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_model.py");
        let log = dir.join("model.log");
        let args = dir.join("model-args.json");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&log)
            .arg(tool)
            .arg(message)
            .arg(hold.to_string())
            .arg(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("model.stderr")).expect("model stderr"))
            .spawn()
            .expect("spawn fake_model.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("fake model's port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("fake_model.py printed {line:?}, not a port"));
        FakeModel { _child: OwnedChild(child), port, log, args }
    }

    /// The arguments the model calls its tool with from now on.
    fn call_with(&self, args: &Value) {
        std::fs::write(&self.args, args.to_string()).expect("model args");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far: `{"path", "tools", "result"}`.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("model log line {l:?}: {e}")))
            .collect()
    }

    /// The tool results the model was sent back.
    fn results(&self) -> Vec<String> {
        self.requests().iter().filter_map(|r| r["result"].as_str().map(str::to_string)).collect()
    }

    /// The lengths of the names the model was offered for the long-named
    /// server's tools, prefix included (each once).
    fn offered_long_lengths(&self) -> Vec<usize> {
        let mut names: Vec<String> = self
            .requests()
            .iter()
            .flat_map(|r| r["tools"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_string))
            // Codex writes `-` as `_`.
            .filter(|t| t.replace('-', "_").contains(&LONG_SERVER[..16].replace('-', "_")))
            .collect();
        names.sort();
        names.dedup();
        names.iter().map(String::len).collect()
    }

    /// The names of the tools the model was offered whose name ends with the echo tool.
    fn offered_echo(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .requests()
            .iter()
            .flat_map(|r| r["tools"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_string))
            .filter(|t| t.ends_with(TOOL))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A gateway with server-everything, a fake model, and a user's scratch home
/// and project directory where the clients run.
struct Bench {
    gw: TestGateway,
    model: FakeModel,
    user_home: PathBuf,
    project: PathBuf,
    message: String,
    /// The gateway's tool the model calls.
    tool: String,
}

impl Bench {
    fn new(hold: usize) -> Bench {
        Bench::calling(TOOL, hold)
    }

    /// A bench whose model calls the gateway's tool `tool` (its name ends
    /// the one the client offers).
    fn calling(tool: &str, hold: usize) -> Bench {
        let mut gw =
            TestGateway::with_servers(&[("everything", everything_server()), (LONG_SERVER, fixture_server("long"))]);
        gw.start();
        let user_home = gw.dir.path().join("user");
        let project = gw.dir.path().join("project");
        for dir in [&user_home, &project] {
            std::fs::create_dir_all(dir).expect("scratch dir");
        }
        // The backend up and listed before any client comes, as in a daemon
        // that already serves a terminal: on this loaded 2-core machine a cold
        // server-everything can take longer to list than Codex waits for its
        // servers at start-up (it then goes ahead without the gateway's tools).
        let mut warm = gw.client();
        warm.initialize();
        let names = warm.tool_names();
        assert!(names.iter().any(|t| t == tool), "the gateway lists {tool}: {names:?}");
        assert!(
            names.iter().any(|t| t.starts_with(&LONG_SERVER[..16])),
            "and the long-named server's tools: {names:?}"
        );
        drop(warm);
        let message = format!("hello-{}", std::process::id());
        let model = FakeModel::start(gw.dir.path(), tool, &message, hold);
        Bench { gw, model, user_home, project, message, tool: tool.to_string() }
    }

    /// The environment a client runs with: a scratch home and XDG directories,
    /// Node 22 on PATH, and nothing of the gateway's.
    fn client_command(&self, kind: Kind) -> Command {
        let mut command = Command::new(kind.binary());
        command
            .env_clear()
            .env("HOME", &self.user_home)
            .env("PATH", deps().path())
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .env("CI", "1");
        for (var, dir) in [
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_DATA_HOME", ".local/share"),
            ("XDG_STATE_HOME", ".local/state"),
        ] {
            command.env(var, self.user_home.join(dir));
        }
        match kind {
            Kind::ClaudeCode => {
                command
                    .env("ANTHROPIC_BASE_URL", self.model.url())
                    .env("ANTHROPIC_API_KEY", "sk-ant-fake")
                    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                    .env("DISABLE_AUTOUPDATER", "1")
                    // Offer MCP tools to the model directly rather than behind its
                    // tool-search tool, which a fake model would have to drive.
                    .env("ENABLE_TOOL_SEARCH", "false");
            }
            Kind::Codex => {
                command.env("FAKE_MODEL_API_KEY", "fake");
            }
            Kind::Gemini => {
                command.env("GOOGLE_GEMINI_BASE_URL", self.model.url()).env("GEMINI_API_KEY", "fake");
            }
        }
        command.current_dir(&self.project).stdin(Stdio::null()).process_group(0);
        command
    }

    /// What the client needs besides its gateway entry, as a user would have it:
    /// Codex's model provider (the fake), Gemini's API-key auth and the
    /// project trusted (Gemini CLI starts no MCP server in an untrusted folder).
    fn prepare(&self, kind: Kind) {
        match kind {
            Kind::ClaudeCode => {}
            Kind::Codex => {
                let dir = self.user_home.join(".codex");
                std::fs::create_dir_all(&dir).expect("codex home");
                let config = format!(
                    "model = \"fake-model\"\nmodel_provider = \"fake\"\n\n[model_providers.fake]\nname = \"fake\"\n\
                     base_url = \"{}/v1\"\nenv_key = \"FAKE_MODEL_API_KEY\"\nwire_api = \"responses\"\n",
                    self.model.url()
                );
                std::fs::write(dir.join("config.toml"), config).expect("codex config");
            }
            Kind::Gemini => {
                let dir = self.user_home.join(".gemini");
                std::fs::create_dir_all(&dir).expect("gemini home");
                let settings = serde_json::json!({"security": {"auth": {"selectedType": "gemini-api-key"}}});
                std::fs::write(dir.join("settings.json"), settings.to_string()).expect("gemini settings");
                let trusted = serde_json::json!({ self.project.display().to_string(): "TRUST_FOLDER" });
                std::fs::write(dir.join("trustedFolders.json"), trusted.to_string()).expect("gemini trust");
            }
        }
    }

    /// `mcp-gateway setup CLIENT --yes`, run in the project with the user's
    /// home (and the test gateway's variables, as in the terminal the user
    /// installed it from); returns what it printed.
    fn setup(&self, kind: Kind) -> String {
        self.prepare(kind);
        let out = self
            .gw
            .command(DAEMON)
            .args(["setup", kind.setup_name(), "--yes"])
            .env("HOME", &self.user_home)
            .env_remove("CODEX_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .current_dir(&self.project)
            .output()
            .expect("run setup");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "setup {} failed:\n{stdout}\n{}",
            kind.setup_name(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The daemon is on a socket a shim without MCP_GATEWAY_SOCKET would
        // not find: the entry must say where it is.
        assert!(stdout.contains(&format!("--socket {}", self.gw.socket.display())), "setup wrote --socket: {stdout}");
        stdout
    }

    /// The client's own health check of its MCP servers.
    fn health(&self, kind: Kind) -> String {
        let out = run(self.client_command(kind).args(["mcp", "list"]), "mcp list");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{} mcp list failed:\n{text}", kind.setup_name());
        let line = text
            .lines()
            .find(|l| l.contains("gateway") && l.contains("mcp-gateway-connect"))
            .unwrap_or_else(|| panic!("{} mcp list does not list the gateway:\n{text}", kind.setup_name()));
        match kind {
            Kind::ClaudeCode | Kind::Gemini => {
                assert!(line.contains("Connected"), "{} says the gateway is not connected: {line}", kind.setup_name())
            }
            // `codex mcp list` reads the config without starting the servers.
            Kind::Codex => assert!(line.contains("enabled"), "codex lists the gateway as disabled: {line}"),
        }
        line.to_string()
    }

    /// The client's non-interactive run with a prompt, started (not waited for).
    fn spawn_run(&self, kind: Kind) -> Child {
        self.run_command(kind).spawn().expect("spawn the client")
    }

    /// The client's non-interactive run with a prompt.
    fn run_command(&self, kind: Kind) -> Command {
        let mut command = self.client_command(kind);
        let prompt = "Echo the word hello with the gateway's echo tool.";
        match kind {
            Kind::ClaudeCode => {
                command.args(["-p", prompt, "--allowedTools", &format!("mcp__gateway__{}", self.tool)]);
            }
            Kind::Codex => {
                command.args(["exec", "--skip-git-repo-check", prompt]);
            }
            Kind::Gemini => {
                command.args(["-p", prompt, "--yolo"]);
            }
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// What the echo tool answers this client.
    fn echoed(&self, kind: Kind) -> String {
        format!("Echo: {}-{}", self.message, kind.api())
    }

    /// Checks one finished run: it printed the final text with the tool's
    /// result, the model was sent that result, and the daemon served the session.
    fn check_run(&self, kind: Kind, out: &Output) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let echoed = self.echoed(kind);
        assert!(
            out.status.success() && stdout.contains("RESULT:") && stdout.contains(&echoed),
            "{} did not finish with the tool's result ({:?}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- model \
             requests\n{:#?}\n--- daemon log\n{}",
            kind.setup_name(),
            out.status,
            self.model.requests(),
            self.gw.daemon_log()
        );
        let refused: Vec<Value> = self.model.requests().into_iter().filter(|r| r.get("too_long").is_some()).collect();
        assert!(refused.is_empty(), "the model refused tool names over 64 characters: {refused:#?}");
        assert!(
            self.model.results().iter().any(|r| r.contains(&echoed)),
            "the model was not sent {echoed:?}: {:?}",
            self.model.results()
        );
    }

    fn run_one(&self, kind: Kind) {
        self.setup(kind);
        self.health(kind);
        let child = self.spawn_run(kind);
        let out = wait_output(child, kind.setup_name());
        self.check_run(kind, &out);
        self.check_served_alone();
    }

    /// The test's daemon served the call: one daemon (no shim started another
    /// on a socket of its own), one server-everything, started by it and
    /// never restarted.
    fn check_served_alone(&self) {
        let daemons: Vec<Proc> =
            self.gw.processes().into_iter().filter(|p| p.cmdline.contains("mcp-gateway serve")).collect();
        assert_eq!(daemons.len(), 1, "exactly the test's daemon runs: {daemons:?}");
        let status = status(&self.gw);
        let backends: Vec<Value> = status["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["server"] == "everything")
            .cloned()
            .collect();
        assert_eq!(backends.len(), 1, "one server-everything backend: {status:#}");
        assert_eq!(backends[0]["restarts"], 0, "{status:#}");
        assert_eq!(self.gw.count("server-everything"), 1, "one server-everything process: {:?}", self.gw.processes());
    }
}

/// Runs a client command to the end within [`RUN_LIMIT`].
fn run(command: &mut Command, what: &str) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the client");
    wait_output(child, what)
}

/// Waits for a client within [`RUN_LIMIT`], killing its process group past that.
fn wait_output(mut child: Child, what: &str) -> Output {
    // Drain both pipes on threads so a chatty client never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break status;
        }
        if Instant::now() >= deadline {
            signal(-(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "{what} did not finish within {RUN_LIMIT:?}:\n{}\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

#[test]
fn claude_code_calls_a_tool_through_the_gateway() {
    let bench = Bench::new(0);
    bench.run_one(Kind::ClaudeCode);
    // Claude Code offers the model the gateway's tool under its own prefix.
    assert_eq!(bench.model.offered_echo(), vec![format!("mcp__gateway__{TOOL}")]);
    // The long server's names are cut to the 50 characters `mcp__gateway__`
    // leaves (a client the gateway does not know gets 46): 64 in all.
    assert_full_length(&bench, 64);
}

/// Every name the model was offered for the long-named server's tools is
/// `total` characters long with the client's prefix: the gateway used all the
/// room that client leaves, and no more.
fn assert_full_length(bench: &Bench, total: usize) {
    let lengths = bench.model.offered_long_lengths();
    assert!(!lengths.is_empty(), "the long server's tools were offered: {:#?}", bench.model.requests());
    assert!(lengths.iter().all(|l| *l == total), "{lengths:?}, not all {total}");
}

#[test]
fn codex_calls_a_tool_through_the_gateway() {
    let bench = Bench::new(0);
    bench.run_one(Kind::Codex);
    // Codex groups the entry's tools in a namespace named after it.
    assert_eq!(bench.model.offered_echo(), vec![format!("mcp__gateway__{TOOL}")]);
    assert_full_length(&bench, 64);
}

#[test]
fn gemini_cli_calls_a_tool_through_the_gateway() {
    let bench = Bench::new(0);
    bench.run_one(Kind::Gemini);
    assert_eq!(bench.model.offered_echo(), vec![format!("mcp_gateway_{TOOL}")]);
    // Gemini CLI cuts names past 63 characters: 51 behind `mcp_gateway_`.
    assert_full_length(&bench, 63);
}

/// Claude Code and Codex at once: the fake model holds both final answers
/// until both tool results are in, so both sessions are open together; they
/// share the one server-everything the daemon started.
#[test]
fn two_clients_at_once_share_one_backend_process() {
    let bench = Bench::new(2);
    for kind in [Kind::ClaudeCode, Kind::Codex] {
        bench.setup(kind);
    }
    let claude = bench.spawn_run(Kind::ClaudeCode);
    let codex = bench.spawn_run(Kind::Codex);
    // While the model holds them: two sessions on the one backend.
    let mut seen = Value::Null;
    let together = wait_until(RUN_LIMIT, || {
        seen = status(&bench.gw);
        let sessions = seen["sessions"].as_array().map_or(0, Vec::len);
        let everything: Vec<&Value> =
            seen["backends"].as_array().into_iter().flatten().filter(|b| b["server"] == "everything").collect();
        sessions >= 2 && everything.len() == 1 && everything[0]["sessions"] == 2
    });
    assert!(together, "two sessions on one backend at once: {seen:#}");
    let claude = wait_output(claude, "claude -p");
    let codex = wait_output(codex, "codex exec");
    bench.check_run(Kind::ClaudeCode, &claude);
    bench.check_run(Kind::Codex, &codex);
    bench.check_served_alone();
}

/// Progress through a real client. Claude Code aborts an MCP call that has
/// sent neither its answer nor a progress notification for its idle timeout
/// (`CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT`, here 2 s; its watchdog looks every
/// 30 s) and tells the model "sent no response or progress for …s;
/// aborting". server-everything's long-running operation of 31 s sends
/// progress every second: the call outlives the watchdog's first look only
/// because those notifications reach Claude Code through the gateway, mapped
/// back to the token Claude Code gave. (Run with one silent 31 s step
/// instead, the same call is aborted at 30 s: "sent no response or progress
/// for 30s".) It takes half a minute because the watchdog does. Gemini CLI
/// shows MCP progress only in its interactive UI; Codex reports it as
/// `item/mcpToolCall/progress` in its app-server protocol, which these tests
/// do not drive.
#[test]
fn progress_reaches_claude_code_and_keeps_a_long_call_alive() {
    const LONG: &str = "everything__trigger-long-running-operation";
    let bench = Bench::calling(LONG, 0);
    bench.setup(Kind::ClaudeCode);
    bench.model.call_with(&serde_json::json!({"duration": 31, "steps": 31}));
    let mut command = bench.run_command(Kind::ClaudeCode);
    command.env("CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT", "2000");
    let out = wait_output(command.spawn().expect("spawn claude"), "claude -p");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}\n--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("RESULT:"), "claude -p did not finish ({:?}):\n{all}", out.status);
    assert!(
        stdout.contains("Long running operation completed. Duration: 31 seconds, Steps: 31."),
        "the call outlived the 2 s idle timeout on its progress:\n{all}\n--- daemon log\n{}",
        bench.gw.daemon_log()
    );
    bench.check_served_alone();
}
