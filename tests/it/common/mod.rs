//! Shared pieces of the integration tests: a gateway in a temp home, real binaries,
//! an MCP client over a real shim, process accounting, and the pinned test deps.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod conformance;
mod in_process;
pub use in_process::InProcessGateway;

pub const DAEMON: &str = env!("CARGO_BIN_EXE_mcp-gateway");
pub const SHIM: &str = env!("CARGO_BIN_EXE_mcp-gateway-connect");

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pinned test dependencies (Node 22, npm MCP servers, the Python SDK), installed
/// and cached by `tests/support/deps.sh`.
pub struct Deps {
    pub vars: HashMap<String, String>,
}

impl Deps {
    pub fn get(&self, key: &str) -> &str {
        self.vars.get(key).unwrap_or_else(|| panic!("deps.sh did not print {key}"))
    }
    pub fn python(&self) -> &str {
        self.get("MCP_TEST_PYTHON")
    }
    pub fn node(&self) -> &str {
        self.get("MCP_TEST_NODE")
    }
    pub fn everything_js(&self) -> &str {
        self.get("MCP_TEST_EVERYTHING_JS")
    }
    pub fn memory_js(&self) -> &str {
        self.get("MCP_TEST_MEMORY_JS")
    }
    /// PATH with Node 22 first.
    pub fn path(&self) -> String {
        format!("{}:{}", self.get("MCP_TEST_BIN_DIR"), std::env::var("PATH").unwrap_or_default())
    }
}

pub fn deps() -> &'static Deps {
    static DEPS: OnceLock<Deps> = OnceLock::new();
    DEPS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/deps.sh");
        let out = Command::new("bash").arg(&script).stdin(Stdio::null()).output().expect("running deps.sh");
        assert!(out.status.success(), "deps.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Deps { vars }
    })
}

/// The config entry for the real server-everything (stdio).
pub fn everything_server() -> String {
    let d = deps();
    format!("    command: {}\n    args: [{:?}, \"stdio\"]\n", d.node(), d.everything_js())
}

/// The config entry for the stdlib-only fixture server.
pub fn fixture_server(tag: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    format!("    command: python3\n    args: [{:?}, {tag:?}]\n", script.display().to_string())
}

/// One process seen in /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub cmdline: String,
}

/// Live (non-zombie) processes of a test: those whose environment carries
/// `MCP_GATEWAY_TEST_TAG=tag`, whose working directory is under `dir`, or that
/// belong to a session (process group tree) one of those leads. Node may
/// overwrite its environment block when it sets its process title, so the
/// environment alone misses some.
pub fn tagged_processes_in(tag: &str, dir: Option<&Path>, sessions: &Mutex<HashSet<i32>>) -> Vec<Proc> {
    let needle = format!("MCP_GATEWAY_TEST_TAG={tag}");
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut candidates = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        let state = fields.first().copied().unwrap_or("?");
        if state == "Z" || state == "X" || fields.len() < 4 {
            continue;
        }
        let sid: i32 = fields[3].parse().unwrap_or(0);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let by_env = environ.split(|b| *b == 0).any(|v| v == needle.as_bytes());
        let by_cwd =
            dir.is_some_and(|d| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(d)));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim().to_string())
            .unwrap_or_default();
        candidates.push((Proc { pid, cmdline }, sid, by_env || by_cwd));
    }
    let mut known = sessions.lock().unwrap();
    for (p, sid, tagged) in &candidates {
        // A tagged session leader: its session is the test's (a backend's tree).
        if *tagged && p.pid == *sid {
            known.insert(*sid);
        }
    }
    candidates.into_iter().filter(|(_, sid, tagged)| *tagged || known.contains(sid)).map(|(p, _, _)| p).collect()
}

/// Live processes carrying the test tag in their environment.
pub fn tagged_processes(tag: &str) -> Vec<Proc> {
    tagged_processes_in(tag, None, &Mutex::new(HashSet::new()))
}

/// A gateway with its own home, socket and config, driven through the real binaries.
pub struct TestGateway {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub socket: PathBuf,
    pub tag: String,
    pub daemon: Option<Child>,
    /// The daemon when it runs in this process ([`TestGateway::start_in_process`]).
    pub in_process: Option<InProcessGateway>,
    /// Environment for every process of the test (daemon and shims).
    pub extra_env: Vec<(String, String)>,
    /// Environment for the daemon only.
    pub daemon_env: Vec<(String, String)>,
    /// Sessions (setsid process trees) seen led by a process of this test.
    sessions: Mutex<HashSet<i32>>,
}

impl TestGateway {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("mcpgw-").tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let socket = dir.path().join("run").join("gateway.sock");
        let tag = format!("{}-{}", std::process::id(), dir.path().file_name().unwrap().to_string_lossy());
        Self {
            dir,
            home,
            socket,
            tag,
            daemon: None,
            in_process: None,
            extra_env: Vec::new(),
            daemon_env: Vec::new(),
            sessions: Mutex::new(HashSet::new()),
        }
    }

    /// The live processes of this test (daemons, shims, backends and their children).
    pub fn processes(&self) -> Vec<Proc> {
        tagged_processes_in(&self.tag, Some(self.dir.path()), &self.sessions)
    }

    /// This test's processes whose command line contains `pattern`.
    pub fn count(&self, pattern: &str) -> usize {
        self.processes().iter().filter(|p| p.cmdline.contains(pattern)).count()
    }

    /// A gateway whose config has the given `servers:` entries (name → YAML body).
    pub fn with_servers(servers: &[(&str, String)]) -> Self {
        let gateway = Self::new();
        let mut yaml = String::from("servers:\n");
        for (name, body) in servers {
            yaml.push_str(&format!("  {name}:\n{body}"));
        }
        gateway.write_config(&yaml);
        gateway
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.home.join("config.yaml"), text).expect("write config");
    }

    /// Environment every gateway process of this test gets.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("MCP_GATEWAY_HOME".to_string(), self.home.display().to_string()),
            ("MCP_GATEWAY_SOCKET".to_string(), self.socket.display().to_string()),
            ("MCP_GATEWAY_TEST_TAG".to_string(), self.tag.clone()),
            ("MCP_GATEWAY_BIN".to_string(), DAEMON.to_string()),
            ("MCP_GATEWAY_LOG".to_string(), "debug".to_string()),
        ];
        env.extend(self.extra_env.iter().cloned());
        env
    }

    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.envs(self.env()).env_remove("MCP_GATEWAY_CONFIG").env_remove("XDG_RUNTIME_DIR");
        command
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("daemon.stderr")
    }

    /// Starts `mcp-gateway serve` and waits until it accepts connections.
    pub fn start(&mut self) {
        let stderr = std::fs::File::create(self.stderr_path()).expect("stderr file");
        let child = self
            .command(DAEMON)
            .envs(self.daemon_env.iter().cloned())
            .current_dir(self.dir.path())
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn daemon");
        self.daemon = Some(child);
        let socket = self.socket.clone();
        let up = wait_until(Duration::from_secs(20), || std::os::unix::net::UnixStream::connect(&socket).is_ok());
        assert!(up, "daemon did not start listening:\n{}", self.daemon_log());
    }

    /// Runs the daemon in this process instead of as `mcp-gateway serve`, on
    /// the same config, socket and home ([`InProcessGateway`] says what that
    /// changes); clients connect as they would to the binary.
    pub fn start_in_process(&mut self) {
        // The file `paths::config_location` would pick in this home.
        let config = ["config.yaml", "config.yml", "config.toml"]
            .iter()
            .map(|n| self.home.join(n))
            .find(|p| p.exists())
            .unwrap_or_else(|| self.home.join("config.yaml"));
        self.in_process = Some(InProcessGateway::serve(config, self.socket.clone(), &self.home));
    }

    /// What the daemon wrote to stderr (the test-started one) and daemon.log (autostarted).
    pub fn daemon_log(&self) -> String {
        let mut log = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        log.push_str(&std::fs::read_to_string(self.home.join("daemon.log")).unwrap_or_default());
        log
    }

    /// Sends SIGTERM to the daemon and waits for it to exit; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("a daemon started by the test");
        signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client talking MCP through a real shim.
    pub fn client(&self) -> Client {
        self.client_with(&["--no-autostart"])
    }

    pub fn client_with(&self, args: &[&str]) -> Client {
        self.client_in(args, self.dir.path())
    }

    /// A client whose shim runs in `cwd`.
    pub fn client_in(&self, args: &[&str], cwd: &Path) -> Client {
        self.client_full(args, cwd, &[])
    }

    /// A client whose shim runs in `cwd` with extra environment (the client's own).
    pub fn client_full(&self, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Client {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr_path = self.dir.path().join(format!("shim-{n}.stderr"));
        let mut command = self.command(SHIM);
        command.args(args).envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).current_dir(cwd);
        spawn_client(command, stderr_path)
    }
}

/// Starts a shim `command` with piped stdin/stdout (stderr to `stderr_path`)
/// and reads what it prints as JSON lines.
pub fn spawn_client(mut command: Command, stderr_path: PathBuf) -> Client {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("shim stderr"))
        .spawn()
        .expect("spawn shim");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("shim printed non-JSON {line:?}: {e}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    Client { child, stdin: Some(stdin), rx, stash: Vec::new(), stderr_path }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        // Before the temp dir goes: the in-process daemon drains and stops its backends.
        drop(self.in_process.take());
        if let Some(mut child) = self.daemon.take() {
            signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
            if !wait_until(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Whatever a failed test left behind (autostarted daemons, backends).
        for p in self.processes() {
            signal(p.pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

pub fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

/// An MCP client over a shim's stdin/stdout.
pub struct Client {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    /// Messages received while waiting for something else.
    pub stash: Vec<Value>,
    stderr_path: PathBuf,
}

pub const TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    pub fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        if let Err(e) = stdin.write_all(bytes) {
            panic!(
                "write to shim: {e}; shim stderr:\n{}",
                std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
            );
        }
        stdin.flush().expect("flush shim");
    }

    /// The next message, or None after `limit`.
    pub fn recv_within(&mut self, limit: Duration) -> Option<Value> {
        if !self.stash.is_empty() {
            return Some(self.stash.remove(0));
        }
        match self.rx.recv_timeout(limit) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Moves whatever arrives within `wait` (of silence) into the stash.
    pub fn gather(&mut self, wait: Duration) {
        while let Ok(m) = self.rx.recv_timeout(wait) {
            self.stash.push(m);
        }
    }

    /// Waits for the response with this id; other messages are stashed.
    pub fn response(&mut self, id: &Value) -> Value {
        if let Some(pos) = self.stash.iter().position(|m| m.get("id") == Some(id) && m.get("method").is_none()) {
            return self.stash.remove(pos);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self.rx.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no response to id {id} ({e}); shim stderr:\n{}",
                    std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
                )
            });
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return message;
            }
            self.stash.push(message);
        }
    }

    pub fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.response(&id)
    }

    pub fn initialize(&mut self) -> Value {
        self.initialize_with(json!({}))
    }

    /// `initialize` declaring these client capabilities.
    pub fn initialize_with(&mut self, capabilities: Value) -> Value {
        self.initialize_as("test", capabilities)
    }

    /// `initialize` as the client named `client` (its `clientInfo.name`).
    pub fn initialize_as(&mut self, client: &str, capabilities: Value) -> Value {
        let response = self.request(
            json!(0),
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": capabilities, "clientInfo": {"name": client, "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        response
    }

    /// All tool names, following pagination.
    pub fn tool_names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        let mut cursor = Value::Null;
        for page in 0..1000 {
            let params = if cursor.is_null() { json!({}) } else { json!({"cursor": cursor}) };
            let response = self.request(json!(format!("list-{page}")), "tools/list", params);
            let result = &response["result"];
            names.extend(
                result["tools"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no tools in {response}"))
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_string()),
            );
            cursor = result.get("nextCursor").cloned().unwrap_or(Value::Null);
            if cursor.is_null() {
                break;
            }
        }
        names
    }

    pub fn call_tool(&mut self, id: Value, name: &str, arguments: Value) -> Value {
        self.request(id, "tools/call", json!({"name": name, "arguments": arguments}))
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Closes stdin and waits for the shim to exit.
    pub fn finish(mut self) -> std::process::ExitStatus {
        self.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "shim did not exit after stdin closed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of the first content item of a tools/call response.
/// Path of a Python client script in `tests/interop`.
pub fn interop_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(name)
}

/// Runs a Python client script (with the pinned SDK) and returns the JSON of
/// its last line; fails the test with everything it and the daemon said.
pub fn run_script(gw: &TestGateway, script: &str, args: &[&str]) -> Value {
    let out = gw
        .command(deps().python())
        .arg(interop_script(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}\ndaemon log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.daemon_log()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed {last:?}: {e}"))
}

/// [`run_script`] for the scripts that launch shims (`--shim`, `--socket`).
pub fn run_client_script(gw: &TestGateway, script: &str, args: &[&str]) -> Value {
    let socket = gw.socket.display().to_string();
    let mut all = vec!["--shim", SHIM, "--socket", socket.as_str()];
    all.extend_from_slice(args);
    run_script(gw, script, &all)
}

/// A connection to the daemon's socket with no shim: `preamble` sent as given
/// (read timeout [`TIMEOUT`]).
pub fn raw_connection(
    gw: &TestGateway,
    preamble: &Value,
) -> (std::os::unix::net::UnixStream, BufReader<std::os::unix::net::UnixStream>) {
    let stream = std::os::unix::net::UnixStream::connect(&gw.socket).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut line = serde_json::to_vec(preamble).unwrap();
    line.push(b'\n');
    (&stream).write_all(&line).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

/// The next line on a [`raw_connection`], as JSON.
pub fn read_json(reader: &mut BufReader<std::os::unix::net::UnixStream>) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// `mcp-gateway status --json` for this gateway.
pub fn status(gw: &TestGateway) -> Value {
    try_status(gw).unwrap_or_else(|e| panic!("status: {e}"))
}

/// [`status`], or why it failed (no daemon answered, or not with JSON).
pub fn try_status(gw: &TestGateway) -> Result<Value, String> {
    let out = gw.command(DAEMON).args(["status", "--json"]).output().map_err(|e| e.to_string())?;
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Whether the gateway holds no per-request state: nothing in flight at any
/// backend, no progress routes, no relayed server requests.
pub fn maps_are_empty(gw: &TestGateway) -> bool {
    let status = status(gw);
    let backends_idle = status["backends"]
        .as_array()
        .is_some_and(|b| b.iter().all(|b| b["in_flight"] == 0 && b["progress_routes"] == 0));
    backends_idle && status["pending"]["server_requests"] == 0
}

/// The 2026-07-28 revision: no handshake, an envelope on every request.
pub const MODERN: &str = "2026-07-28";

/// A 2026-07-28 request's `_meta` envelope, declaring `capabilities`.
pub fn envelope(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "1"},
    })
}

/// `params` with the 2026-07-28 envelope added to its `_meta`.
pub fn enveloped(mut params: Value, capabilities: Value) -> Value {
    let mut meta = envelope(capabilities);
    if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
        for (k, v) in extra {
            meta[k] = v.clone();
        }
    }
    params["_meta"] = meta;
    params
}

pub fn first_text(response: &Value) -> &str {
    response["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text content in {response}"))
}

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A process the test owns: killed and reaped when dropped.
pub struct OwnedChild(pub Child);

impl Drop for OwnedChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// server-everything in a network transport `mode` (`streamableHttp`, `sse`)
/// on `port`, ready to accept.
pub fn everything_over_http(gw: &TestGateway, port: u16, mode: &str) -> OwnedChild {
    let d = deps();
    let child = gw
        .command(d.node())
        .args([d.everything_js(), mode])
        .env("PORT", port.to_string())
        .current_dir(gw.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server-everything");
    let server = OwnedChild(child);
    assert!(
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "server-everything ({mode}) did not start listening on {port}"
    );
    server
}

/// The JSON-RPC messages of an HTTP response: a JSON body, or every non-empty
/// `data:` of an SSE body.
pub fn http_messages(response: reqwest::blocking::Response) -> Vec<Value> {
    let sse = response.headers().get("content-type").is_some_and(|c| c.as_bytes().starts_with(b"text/event-stream"));
    let text = response.text().expect("response body");
    if !sse {
        return vec![serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_json::from_str(d.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {d}")))
        .collect()
}

/// The routing headers a 2026-07-28 client sends with a request over HTTP:
/// `Mcp-Method`, and `Mcp-Name` for a request that names a tool, prompt or
/// resource (plain: the tests' names are ASCII).
pub fn routing_headers(body: &Value) -> Vec<(&'static str, String)> {
    let method = body["method"].as_str().unwrap_or_default();
    let mut headers = vec![("mcp-method", method.to_string())];
    let name = match method {
        "tools/call" | "prompts/get" => body["params"]["name"].as_str(),
        "resources/read" => body["params"]["uri"].as_str(),
        _ => None,
    };
    headers.extend(name.map(|n| ("mcp-name", n.to_string())));
    headers
}

/// The daemon's children that are its process-group guard.
pub fn guards_of(daemon: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().unwrap_or_default().split_whitespace().nth(1);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(&daemon.to_string()) && String::from_utf8_lossy(&cmdline).contains("process-group-guard")
        })
        .collect()
}
