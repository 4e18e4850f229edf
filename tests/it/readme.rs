//! The README's commands still work: every command line in its `sh` blocks is
//! run here, in README order, in a sandbox home (default paths, nothing set),
//! with the freshly built binaries first on PATH; a command that cannot run
//! here must be listed in `NOT_RUN_HERE` with the reason. Every `yaml` block
//! must be a config `mcp-gateway config check` accepts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// Commands the README shows that this test does not run, and why (a
/// trailing `*` matches any arguments).
const NOT_RUN_HERE: &[(&str, &str)] = &[
    ("cargo install --locked --path .", "builds what this test runs: CI builds the same crate with --locked"),
    ("bash scripts/test.sh", "the test suite this test is part of"),
    ("claude mcp add*", "needs Claude Code; `mcp-gateway setup claude-code` writes the same entry and is run"),
    ("mcp-gateway service install", "needs a systemd user manager: tests/it/systemd.rs runs it under a real one"),
    ("sudo apt install*", "installs the package system-wide: scripts/package.sh installs it for real, in a namespace"),
    (
        "systemctl --user enable --now mcp-gateway.socket",
        "needs a systemd user manager: tests/packaging/install.sh runs it on the installed package",
    ),
    (
        "mcp-gateway auth login *",
        "needs a remote server that asks for a login, and a browser: tests/it/conformance_client.rs runs it against \
         the conformance suite's authorization servers",
    ),
    ("mcp-gateway auth logout *", "forgets the login `auth login` made, which is not run here"),
    (
        "mcp-gateway import --from https://*",
        "needs a team gateway: tests/it/teams.rs imports from the real ContextForge",
    ),
    (
        "mcp-gateway federate *",
        "needs a team gateway and a front door it reaches: tests/it/teams.rs registers one in the real ContextForge",
    ),
    ("docker run *", "needs Docker and an image from a registry: tests/it/trace.rs runs its own OTLP receiver"),
];

/// Commands whose non-zero exit is the documented answer in a sandbox.
const EXIT_CODES: &[(&str, i32)] = &[("mcp-gateway service status", 3)];

struct Block {
    lang: String,
    first_line: usize,
    text: String,
}

fn readme_blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in readme.lines().enumerate() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block { lang: lang.trim().to_string(), first_line: n + 2, text: String::new() })
            }
            (Some(block), Some(_)) => blocks.push(block),
            (Some(mut block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The commands of a shell block: comments dropped, `&&` chains split.
fn commands(block: &Block) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in block.text.lines().enumerate() {
        let code = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        let code = code.trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        for part in code.split("&&") {
            out.push((block.first_line + i, part.trim().to_string()));
        }
    }
    out
}

struct Sandbox {
    _dir: tempfile::TempDir,
    home: PathBuf,
    runtime: PathBuf,
    bin: PathBuf,
    tag: String,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("mcpgw-readme-").tempdir().unwrap();
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let bin = Path::new(DAEMON).parent().unwrap().to_path_buf();
        let tag = format!("readme-{}", std::process::id());
        Self { _dir: dir, home, runtime, bin, tag }
    }

    fn command(&self, program: &str) -> Command {
        let program = if program.starts_with("mcp-gateway") { self.bin.join(program) } else { PathBuf::from(program) };
        let mut command = Command::new(program);
        for var in ["MCP_GATEWAY_HOME", "MCP_GATEWAY_CONFIG", "MCP_GATEWAY_SOCKET", "XDG_CONFIG_HOME", "NO_COLOR"] {
            command.env_remove(var);
        }
        command
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("PATH", format!("{}:{}", self.bin.display(), deps().path()))
            .env("MCP_GATEWAY_TEST_TAG", &self.tag)
            // `servers add memory` lists the server at once (an npx package):
            // offline, npx says at once that it has no copy, and the test
            // needs no network (the listing is left to the first use).
            .env("npm_config_offline", "true")
            .current_dir(&self.home);
        command
    }

    fn socket(&self) -> PathBuf {
        self.runtime.join("mcp-gateway/gateway.sock")
    }
}

/// The daemon the README's `serve` started: killed if the test fails before
/// the README's `stop`, so a failure leaves nothing running.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn every_readme_command_runs() {
    let sandbox = Sandbox::new();
    // Something for `import` to find: a Claude Code user config with one server.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    let claude = serde_json::json!({ "mcpServers": { "notes": { "command": "python3", "args": [fixture, "notes"] } } });
    std::fs::write(sandbox.home.join(".claude.json"), claude.to_string()).unwrap();

    let mut daemon: Option<Daemon> = None;
    let mut ran = 0;
    for block in readme_blocks().iter().filter(|b| b.lang == "sh") {
        for (line, command) in commands(block) {
            let listed = |pattern: &str| match pattern.strip_suffix('*') {
                Some(prefix) => command.starts_with(prefix),
                None => command == pattern,
            };
            if let Some((_, why)) = NOT_RUN_HERE.iter().find(|(pattern, _)| listed(pattern)) {
                eprintln!("README:{line}: not run here ({why}): {command}");
                continue;
            }
            assert!(
                command.starts_with("mcp-gateway"),
                "README:{line}: `{command}` is neither run by this test nor listed in NOT_RUN_HERE with a reason"
            );
            assert!(
                !command.contains(['"', '\'', '|', '>', '$']),
                "README:{line}: keep README commands plain: {command}"
            );
            let words: Vec<&str> = command.split_whitespace().collect();
            let mut process = sandbox.command(words[0]);
            process.args(&words[1..]);
            if words.get(1) == Some(&"serve") {
                let log = std::fs::File::create(sandbox.home.join("serve.log")).unwrap();
                let child = process.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
                daemon = Some(Daemon(child));
                let socket = sandbox.socket();
                assert!(
                    wait_until(Duration::from_secs(20), || std::os::unix::net::UnixStream::connect(&socket).is_ok()),
                    "README:{line}: `{command}` did not start listening on {}",
                    socket.display()
                );
                ran += 1;
                continue;
            }
            let out = process.stdin(Stdio::null()).output().unwrap();
            let expected = EXIT_CODES.iter().find(|(c, _)| *c == command).map_or(0, |(_, code)| *code);
            assert_eq!(
                out.status.code(),
                Some(expected),
                "README:{line}: `{command}` failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 15, "only {ran} README commands ran");
    // The README's sequence ends with `mcp-gateway stop`.
    let mut daemon = daemon.expect("the README starts the daemon");
    let stopped = wait_until(Duration::from_secs(20), || daemon.0.try_wait().ok().flatten().is_some());
    assert!(stopped, "`mcp-gateway stop` stopped the daemon");
    // What the commands did: the imported server and the catalog one are configured.
    let config = std::fs::read_to_string(sandbox.home.join(".mcp-gateway/config.yaml")).unwrap();
    assert!(config.contains("notes:") && config.contains("memory:"), "{config}");
    assert!(wait_until(Duration::from_secs(10), || tagged_processes(&sandbox.tag).is_empty()), "nothing left running");
}

#[test]
fn every_readme_config_example_is_a_valid_config() {
    let sandbox = Sandbox::new();
    let mut checked = 0;
    for block in readme_blocks().iter().filter(|b| b.lang == "yaml") {
        let file = sandbox.home.join(format!("example-{}.yaml", block.first_line));
        std::fs::write(&file, &block.text).unwrap();
        let out = sandbox.command("mcp-gateway").arg("config").arg("check").arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "README:{}: the example is not a valid config:\n{}",
            block.first_line,
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked}");
}
