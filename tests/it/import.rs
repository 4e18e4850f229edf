//! `mcp-gateway import` and `mcp-gateway setup CLIENT`, through the real binary,
//! against fixture configs of every client format (tests/fixtures/clients/),
//! with HOME, the working directory and the gateway home in a temp dir.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::{DAEMON, TIMEOUT, TestGateway, first_text, wait_until};
use mcp_gateway::config::Config;
use serde_json::{Value, json};

/// Every secret in the fixtures: none may reach the config, the terminal or
/// any file the commands write other than the gateway `.env`.
const SECRETS: [&str; 7] = [
    "ghp_fixtureClaudeCode0123456789abcdefAB",
    "ghp_fixtureDesktop9876543210fedcbaZYXW",
    "ctx7sk-5f1c2a9e-0b7d-4e3a-9c61-2d8f4b7a1e93",
    "echo-s3cret-Qm9vYmFyQmF6cXV4",
    "xoxb-1234567890-0987654321-fixtureSlackTok",
    "BSAfixtureBrave0123456789xyzXYZ",
    "sk-fixture-apidocs-4f9a8b7c6d5e",
];

/// The servers the fixtures hold that the gateway can run, as imported.
const IMPORTED: [&str; 17] = [
    "memory",
    "linear",
    "github",
    "context7",
    "echo",
    "postgres",
    "memory-cursor",
    "slack",
    "brave",
    "fetch",
    "sentry",
    "perplexity",
    "playwright",
    "api-docs",
    "local-tool",
    "filesystem",
    "github-claude-desktop",
];

/// A user's machine in a temp dir: a home with client configs, a project, a gateway home.
struct World {
    gw: TestGateway,
    user: PathBuf,
    project: PathBuf,
    /// Whether `import` lists what it adds. Off unless a test turns it on:
    /// the fixture clients' servers are npx packages and remote URLs a test
    /// must not download or reach.
    prefetch: bool,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients")
}

fn copy_tree(from: &Path, to: &Path, replace: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, replace);
        } else {
            std::fs::write(&target, replace(std::fs::read_to_string(entry.path()).unwrap())).unwrap();
        }
    }
}

impl World {
    /// The fixture home and project.
    fn new() -> World {
        let world = World::empty();
        let fixture_server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
        let project = world.project.display().to_string();
        let replace = |text: String| {
            text.replace("@PROJECT@", &project).replace("@FIXTURE_SERVER@", &fixture_server.display().to_string())
        };
        copy_tree(&fixtures().join("home"), &world.user, &replace);
        copy_tree(&fixtures().join("project"), &world.project, &replace);
        world
    }

    /// No client configs at all.
    fn empty() -> World {
        let gw = TestGateway::new();
        let user = gw.dir.path().join("user");
        let project = gw.dir.path().join("src/app");
        std::fs::create_dir_all(&user).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        // The working directory as the binary will see it (no symlinks).
        let project = std::fs::canonicalize(project).unwrap();
        World { gw, user, project, prefetch: false }
    }

    fn run(&self, args: &[&str]) -> Output {
        let no_prefetch = (args.first() == Some(&"import") && !self.prefetch).then_some("--no-prefetch");
        let out = self
            .gw
            .command(DAEMON)
            .args(args)
            .args(no_prefetch)
            .env("HOME", &self.user)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CODEX_HOME")
            .current_dir(&self.project)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for secret in SECRETS {
            assert!(!all.contains(secret), "`mcp-gateway {args:?}` printed a secret:\n{all}");
        }
        out
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mcp-gateway {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn config_path(&self) -> PathBuf {
        self.gw.home.join("config.yaml")
    }

    fn dotenv_path(&self) -> PathBuf {
        self.gw.home.join(".env")
    }

    fn config(&self) -> Config {
        Config::load(&self.config_path()).unwrap().expect("a config file")
    }

    fn dotenv(&self) -> std::collections::HashMap<String, String> {
        let path = self.dotenv_path();
        mcp_gateway::credentials::parse_env(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn json(&self, path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every file under the temp dir, with its content.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(self.gw.dir.path(), &mut files);
        files
    }
}

#[test]
fn import_brings_every_client_format_into_the_gateway() {
    let world = World::new();
    let stdout = world.ok(&["import", "--yes"]);
    assert!(stdout.contains("Added 17 server(s)"), "{stdout}");

    let check = world.run(&["config", "check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok, 17 server(s)"));

    let config = world.config();
    assert_eq!(config.servers.keys().map(String::as_str).collect::<Vec<_>>(), IMPORTED);
    let s = &config.servers;
    // Secrets became references; settings stayed.
    assert_eq!(s["github"].env["GITHUB_PERSONAL_ACCESS_TOKEN"], "${GITHUB_PERSONAL_ACCESS_TOKEN}");
    assert_eq!(s["slack"].env["SLACK_BOT_TOKEN"], "${SLACK_BOT_TOKEN}");
    assert_eq!(s["slack"].env["SLACK_TEAM_ID"], "T01234567");
    assert_eq!(s["echo"].env["ECHO_MODE"], "loud");
    assert_eq!(s["brave"].env["BRAVE_API_KEY"], "${BRAVE_API_KEY}");
    assert_eq!(s["memory"].env["MEMORY_FILE_PATH"], "${HOME}/.mcp-memory.json");
    // Remote servers: url and headers.
    assert_eq!(s["context7"].url.as_deref(), Some("https://mcp.context7.com/mcp"));
    assert_eq!(s["context7"].headers["CONTEXT7_API_KEY"], "${CONTEXT7_API_KEY}");
    assert_eq!(s["api-docs"].headers["Authorization"], "Bearer ${API_DOCS_TOKEN}");
    assert_eq!(s["linear"].url.as_deref(), Some("https://mcp.linear.app/sse"));
    assert_eq!(s["sentry"].headers["Authorization"], "Bearer ${SENTRY_TOKEN}");
    // VS Code: a prompt becomes a variable to set; ${workspaceFolder} the project.
    assert_eq!(s["perplexity"].env["PERPLEXITY_API_KEY"], "${PERPLEXITY_KEY}");
    assert_eq!(s["local-tool"].args, [format!("{}/tools/mcp.js", world.project.display())]);
    // Same name, other definition: both kept, the second suffixed; same definition: one.
    assert_eq!(s["memory-cursor"].env.len(), 0);
    assert_eq!(
        s["github-claude-desktop"].env["GITHUB_PERSONAL_ACCESS_TOKEN"],
        "${GITHUB_CLAUDE_DESKTOP_GITHUB_PERSONAL_ACCESS_TOKEN}"
    );
    assert!(stdout.contains("named `memory-cursor`") && stdout.contains("defined differently"), "{stdout}");
    // Entries already running the shim, unsupported ones, other projects' ones: not imported.
    assert!(stdout.contains("gw (claude-code ~/.claude.json): already runs mcp-gateway-connect"), "{stdout}");
    assert!(stdout.contains("legacy") && stdout.contains("`ws` is not supported"), "{stdout}");
    assert!(!s.contains_key("other"));
    // Claude Code's project-only server stays the project's; the others are for every project.
    assert_eq!(s["postgres"].projects, [world.project.display().to_string()]);
    assert!(s["github"].projects.is_empty() && s["echo"].projects.is_empty());
    // So are the servers of the project's own files (`.mcp.json`, `.vscode/mcp.json`).
    for name in ["memory", "linear", "perplexity", "playwright", "api-docs", "local-tool"] {
        assert_eq!(s[name].projects, [world.project.display().to_string()], "{name}");
    }
    assert!(s["memory-cursor"].projects.is_empty() && s["brave"].projects.is_empty());
    assert!(stdout.contains(&format!("offered only in {}", world.project.display())), "{stdout}");
    assert!(stdout.contains("set it in") && stdout.contains("PERPLEXITY_KEY"), "{stdout}");

    // The secrets are in the gateway .env, 0600, and nowhere else the import wrote.
    let mode = std::fs::metadata(world.dotenv_path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dotenv = world.dotenv();
    assert_eq!(dotenv["GITHUB_PERSONAL_ACCESS_TOKEN"], SECRETS[0]);
    assert_eq!(dotenv["GITHUB_CLAUDE_DESKTOP_GITHUB_PERSONAL_ACCESS_TOKEN"], SECRETS[1]);
    assert_eq!(dotenv["CONTEXT7_API_KEY"], SECRETS[2]);
    assert_eq!(dotenv["ECHO_TOKEN"], SECRETS[3]);
    assert_eq!(dotenv["SLACK_BOT_TOKEN"], SECRETS[4]);
    assert_eq!(dotenv["BRAVE_API_KEY"], SECRETS[5]);
    assert_eq!(dotenv["API_DOCS_TOKEN"], SECRETS[6]);
    for entry in std::fs::read_dir(&world.gw.home).unwrap() {
        let path = entry.unwrap().path();
        if path != world.dotenv_path() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for secret in SECRETS {
                assert!(!text.contains(secret), "{} holds a secret", path.display());
            }
        }
    }
}

#[test]
fn importing_again_changes_nothing() {
    let world = World::new();
    world.ok(&["import", "--yes"]);
    let config = std::fs::read(world.config_path()).unwrap();
    let dotenv = std::fs::read(world.dotenv_path()).unwrap();
    let again = world.ok(&["import", "--yes"]);
    assert!(again.contains("Nothing new to import"), "{again}");
    assert!(again.contains("memory-cursor") && again.contains("Already in the gateway"), "{again}");
    assert_eq!(std::fs::read(world.config_path()).unwrap(), config);
    assert_eq!(std::fs::read(world.dotenv_path()).unwrap(), dotenv);
}

#[test]
fn taken_names_and_variables_are_reported_not_overwritten() {
    let world = World::new();
    let mine = "# my gateway\nservers:\n  github:\n    command: github-mcp-server\n    args: [stdio]\n";
    std::fs::write(world.config_path(), mine).unwrap();
    std::fs::write(world.dotenv_path(), "SLACK_BOT_TOKEN=mine\n").unwrap();
    let stdout = world.ok(&["import", "--yes"]);
    assert!(stdout.contains("the gateway already has a different server named `github`"), "{stdout}");
    let config = world.config();
    assert_eq!(config.servers["github"].command.as_deref(), Some("github-mcp-server"));
    assert!(!config.servers.contains_key("github-claude-desktop"), "same name as the gateway's: skipped");
    assert!(config.servers.contains_key("slack") && config.servers.contains_key("memory-cursor"));
    // The variable name was taken by another value: the import picked another.
    assert_eq!(config.servers["slack"].env["SLACK_BOT_TOKEN"], "${SLACK_BOT_TOKEN_2}");
    let dotenv = world.dotenv();
    assert_eq!(dotenv["SLACK_BOT_TOKEN"], "mine");
    assert_eq!(dotenv["SLACK_BOT_TOKEN_2"], SECRETS[4]);
    let text = std::fs::read_to_string(world.config_path()).unwrap();
    assert!(text.starts_with(mine), "the existing config is kept as it was:\n{text}");
    assert_eq!(std::fs::read_to_string(world.gw.home.join("config.yaml.bak")).unwrap(), mine);
}

#[test]
fn nothing_is_written_without_yes_or_with_dry_run_or_json() {
    let world = World::new();
    let before = world.snapshot();
    let stdout = world.ok(&["import"]);
    assert!(stdout.contains("Will add 17 server(s)") && stdout.contains("Re-run with --yes"), "{stdout}");
    assert!(stdout.contains("<secret moved to"), "{stdout}");
    let dry = world.ok(&["import", "--dry-run", "--yes"]);
    assert!(dry.contains("Will add 17 server(s)") && !dry.contains("Added"), "{dry}");
    let json: Value = serde_json::from_str(&world.ok(&["import", "--json"])).unwrap();
    assert_eq!(json["applied"], false);
    let names: Vec<&str> = json["add"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, IMPORTED);
    assert_eq!(
        json["add"][2]["moved_to_env"][0],
        json!({"field": "env.GITHUB_PERSONAL_ACCESS_TOKEN", "variable": "GITHUB_PERSONAL_ACCESS_TOKEN"})
    );
    assert_eq!(world.snapshot(), before, "nothing written");

    let applied: Value = serde_json::from_str(&world.ok(&["import", "--json", "--yes"])).unwrap();
    assert_eq!(applied["applied"], true);
    assert_eq!(world.config().servers.len(), 17);
}

#[test]
fn from_reads_one_client() {
    let world = World::new();
    world.ok(&["import", "--from", "codex", "--yes"]);
    assert_eq!(world.config().servers.keys().map(String::as_str).collect::<Vec<_>>(), ["brave", "fetch", "sentry"]);
    let nothing = World::empty();
    let stdout = nothing.ok(&["import", "--yes"]);
    assert!(stdout.contains("No client config files found"), "{stdout}");
    assert!(!nothing.config_path().exists());
}

/// Reads a fixture as the test copied it.
fn original(world: &World, relative: &str, home: bool) -> String {
    let path = if home { fixtures().join("home").join(relative) } else { fixtures().join("project").join(relative) };
    let fixture_server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    std::fs::read_to_string(path)
        .unwrap()
        .replace("@PROJECT@", &world.project.display().to_string())
        .replace("@FIXTURE_SERVER@", &fixture_server.display().to_string())
}

fn backup_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.bak-mcp-gateway", path.display()))
}

#[test]
fn setup_rewrites_each_client_format_and_keeps_the_rest() {
    let world = World::new();
    world.ok(&["import", "--yes"]);
    let connect = Path::new(DAEMON).with_file_name("mcp-gateway-connect").display().to_string();
    // The test's socket is not the one a shim finds with no gateway variables,
    // so every entry names it.
    let socket = world.gw.socket.display().to_string();
    let args = json!(["--socket", socket]);

    // Claude Code, user scope: its shim entry `gw` is kept, served servers go,
    // in the top level and in this project's local servers; the rest stays.
    let claude = world.user.join(".claude.json");
    let out = world.ok(&["setup", "claude-code", "--yes"]);
    assert!(out.contains("left alone in the project scope"), "{out}");
    let value = world.json(&claude);
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["numStartups", "theme", "mcpServers", "projects", "userID"]);
    assert_eq!(value["mcpServers"], json!({"gw": {"type": "stdio", "command": "mcp-gateway-connect", "args": []}}));
    let project = &value["projects"][world.project.display().to_string()];
    assert_eq!(project["mcpServers"], json!({}));
    assert_eq!(project["hasTrustDialogAccepted"], true);
    assert_eq!(value["projects"]["/somewhere/else"]["mcpServers"]["other"]["command"], "other-mcp");
    assert_eq!(std::fs::read_to_string(backup_of(&claude)).unwrap(), original(&world, ".claude.json", true));

    // Claude Code, project scope: `.mcp.json` gets the shim entry.
    let mcp_json = world.project.join(".mcp.json");
    world.ok(&["setup", "claude-code", "--scope", "project", "--yes"]);
    assert_eq!(
        world.json(&mcp_json),
        json!({"mcpServers": {"gateway": {"type": "stdio", "command": connect, "args": args}}})
    );
    assert_eq!(std::fs::read_to_string(backup_of(&mcp_json)).unwrap(), original(&world, ".mcp.json", false));
    // What it took out of `.mcp.json` stays this project's own in the gateway.
    for name in ["memory", "linear"] {
        assert_eq!(world.config().servers[name].projects, [world.project.display().to_string()], "{name}");
    }

    // Cursor: already had a shim entry; the three served servers go.
    let cursor = world.user.join(".cursor/mcp.json");
    world.ok(&["setup", "cursor", "--yes"]);
    assert_eq!(
        world.json(&cursor),
        json!({"mcpServers": {"mcp-gateway": {"command": "/usr/local/bin/mcp-gateway-connect"}}})
    );

    // Codex: TOML edited in place, comments and other settings kept.
    let codex = world.user.join(".codex/config.toml");
    world.ok(&["setup", "codex", "--yes"]);
    let text = std::fs::read_to_string(&codex).unwrap();
    assert!(text.starts_with("# Codex settings\nmodel = \"o3\"\napproval_policy = \"on-request\"\n"), "{text}");
    assert!(text.contains("# a faster model for small things\n[profiles.fast]\nmodel = \"o4-mini\""), "{text}");
    assert!(
        text.contains(&format!("[mcp_servers.gateway]\ncommand = \"{connect}\"\nargs = [\"--socket\", \"{socket}\"]")),
        "{text}"
    );
    for gone in ["mcp_servers.fetch", "mcp_servers.sentry", "mcp_servers.brave", "BSAfixture"] {
        assert!(!text.contains(gone), "{gone} is still in:\n{text}");
    }
    assert_eq!(std::fs::read_to_string(backup_of(&codex)).unwrap(), original(&world, ".codex/config.toml", true));

    // VS Code (project): the server that could not be imported stays, and `inputs`.
    let vscode = world.project.join(".vscode/mcp.json");
    let out = world.ok(&["setup", "vscode", "--scope", "project", "--yes"]);
    assert!(out.contains("legacy") && out.contains("Left in place"), "{out}");
    let value = world.json(&vscode);
    assert_eq!(value["inputs"][0]["id"], "perplexity-key");
    assert_eq!(value["servers"].as_object().unwrap().keys().collect::<Vec<_>>(), ["legacy", "gateway"]);
    assert_eq!(value["servers"]["gateway"], json!({"type": "stdio", "command": connect, "args": args}));

    // Claude Desktop.
    let desktop = world.user.join(".config/Claude/claude_desktop_config.json");
    world.ok(&["setup", "claude-desktop", "--yes"]);
    let value = world.json(&desktop);
    assert_eq!(value["mcpServers"], json!({"gateway": {"command": connect, "args": args}}));
    assert_eq!(value["globalShortcut"], "Ctrl+Space");

    // No rewritten client file holds a secret any more (the backups are the originals).
    for file in [&claude, &mcp_json, &cursor, &codex, &vscode, &desktop] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(SECRETS.iter().all(|s| !text.contains(s)), "{} still holds a secret", file.display());
    }

    // Again: nothing left to do, and no second backup.
    let again = world.ok(&["setup", "codex", "--yes"]);
    assert!(again.contains("nothing to change"), "{again}");
    assert!(!PathBuf::from(format!("{}.1", backup_of(&codex).display())).exists());
}

#[test]
fn setup_leaves_what_the_gateway_does_not_run_and_keeps_older_backups() {
    let world = World::new();
    let desktop = world.user.join(".config/Claude/claude_desktop_config.json");
    let out = world.ok(&["setup", "claude-desktop", "--yes"]);
    assert!(out.contains("not in the gateway yet; run `mcp-gateway import --from claude-desktop` first"), "{out}");
    let value = world.json(&desktop);
    assert_eq!(
        value["mcpServers"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["filesystem", "github", "gateway"]
    );
    let first_backup = std::fs::read_to_string(backup_of(&desktop)).unwrap();

    // After importing, a second setup removes them, with a second backup.
    world.ok(&["import", "--from", "claude-desktop", "--yes"]);
    world.ok(&["setup", "claude-desktop", "--yes"]);
    let value = world.json(&desktop);
    assert_eq!(value["mcpServers"].as_object().unwrap().keys().collect::<Vec<_>>(), ["gateway"]);
    assert_eq!(std::fs::read_to_string(backup_of(&desktop)).unwrap(), first_backup, "the older backup is kept");
    let second = PathBuf::from(format!("{}.1", backup_of(&desktop).display()));
    assert!(std::fs::read_to_string(second).unwrap().contains("\"filesystem\""));
}

#[test]
fn print_and_dry_run_write_nothing() {
    let world = World::new();
    world.ok(&["import", "--yes"]);
    let before = world.snapshot();
    let connect = Path::new(DAEMON).with_file_name("mcp-gateway-connect").display().to_string();
    let socket = world.gw.socket.display().to_string();
    let args = json!(["--socket", socket]);
    let codex = world.ok(&["setup", "codex", "--print"]);
    assert!(
        codex.contains(&format!("[mcp_servers.gateway]\ncommand = \"{connect}\"\nargs = [\"--socket\", \"{socket}\"]")),
        "{codex}"
    );
    let cursor = world.ok(&["setup", "cursor", "--scope", "project", "--print"]);
    let json_part = &cursor[cursor.find('{').unwrap()..];
    let value: Value = serde_json::from_str(json_part).unwrap();
    assert_eq!(value, json!({"mcpServers": {"gateway": {"command": connect, "args": args}}}));
    let vscode = world.ok(&["setup", "vscode", "--print"]);
    assert!(vscode.contains("\"servers\"") && vscode.contains("\"type\": \"stdio\""), "{vscode}");
    let dry = world.ok(&["setup", "claude-desktop", "--dry-run"]);
    assert!(dry.contains("Will rewrite") && dry.contains("- filesystem"), "{dry}");
    let no_yes = world.ok(&["setup", "claude-desktop"]);
    assert!(no_yes.contains("Re-run with --yes"), "{no_yes}");
    assert_eq!(world.snapshot(), before, "nothing written");
}

#[test]
fn setup_refuses_what_it_cannot_do_safely() {
    let world = World::new();
    // Codex and Claude Desktop have no project file.
    let out = world.run(&["setup", "codex", "--scope", "project"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no project scope"));
}

/// Credentials written inside connection strings and URLs move to the
/// gateway `.env` like any other secret; the rest of the string stays.
#[test]
fn credentials_inside_connection_strings_and_urls_are_moved() {
    let world = World::empty();
    let (password, token) = ("pg-Passw0rd-in-a-url", "ghp_tokenInAUrl0123456789abcdef");
    let cursor = json!({"mcpServers": {
        "postgres": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-postgres",
                     format!("postgresql://app:{password}@db.internal:5432/app")]},
        "remote": {"url": format!("https://{token}@mcp.example.com/mcp?region=eu")},
    }});
    std::fs::create_dir_all(world.user.join(".cursor")).unwrap();
    std::fs::write(world.user.join(".cursor/mcp.json"), cursor.to_string()).unwrap();
    let preview = world.ok(&["import", "--dry-run"]);
    assert!(!preview.contains(password) && !preview.contains(token), "{preview}");
    assert!(preview.contains("args[2] (password): <secret moved to"), "{preview}");
    assert!(preview.contains("url (user): <secret moved to"), "{preview}");
    world.ok(&["import", "--yes"]);
    let config = world.config();
    assert_eq!(config.servers["postgres"].args[2], "postgresql://app:${POSTGRES_PASSWORD}@db.internal:5432/app");
    assert_eq!(config.servers["remote"].url.as_deref(), Some("https://${REMOTE_TOKEN}@mcp.example.com/mcp?region=eu"));
    let written = std::fs::read_to_string(world.config_path()).unwrap();
    assert!(!written.contains(password) && !written.contains(token), "{written}");
    let dotenv = world.dotenv();
    assert_eq!(dotenv["POSTGRES_PASSWORD"], password);
    assert_eq!(dotenv["REMOTE_TOKEN"], token);
    // The client's entries are what the gateway now runs: a second import adds nothing.
    let again = world.ok(&["import", "--dry-run"]);
    assert!(again.contains("Nothing new to import"), "{again}");
}

/// VS Code's and Cursor's files allow comments and trailing commas: `setup`
/// rewrites them in place, and every comment is still there afterwards.
#[test]
fn setup_rewrites_a_commented_file_keeping_its_comments() {
    let world = World::empty();
    let commented = "{\n  // my servers\n  \"mcpServers\": {\n    /* the clock */\n    \"time\": { \"command\": \"uvx\", \"args\": [\"mcp-server-time\"] }, // imported\n  },\n  \"other\": true, // a setting\n}\n";
    let path = world.project.join(".cursor/mcp.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, commented).unwrap();
    world.ok(&["import", "--from", "cursor", "--yes"]);
    assert_eq!(world.config().servers["time"].args, ["mcp-server-time"]);
    let preview = world.ok(&["setup", "cursor", "--scope", "project", "--dry-run"]);
    assert!(preview.contains("Will rewrite") && preview.contains("- time"), "{preview}");
    world.ok(&["setup", "cursor", "--scope", "project", "--yes"]);
    let after = std::fs::read_to_string(&path).unwrap();
    for kept in ["// my servers", "/* the clock */", "// a setting", "\"other\": true"] {
        assert!(after.contains(kept), "`{kept}` lost:\n{after}");
    }
    assert!(!after.contains("mcp-server-time"), "the imported server is gone:\n{after}");
    assert!(after.contains("\"gateway\"") && after.contains("mcp-gateway-connect"), "{after}");
    // A second run finds the shim and changes nothing.
    let again = world.ok(&["setup", "cursor", "--scope", "project", "--yes"]);
    assert!(again.contains("nothing to change"), "{again}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    let backup = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p != &path)
        .expect("a backup of the previous file");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), commented);
}

/// The whole point: a server imported from a client runs through the gateway,
/// with its token from the gateway `.env`.
#[test]
fn an_imported_server_runs_through_the_gateway() {
    let mut world = World::empty();
    world.prefetch = true;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    let cursor = json!({"mcpServers": {"tool": {"command": "python3", "args": [script, "imported"],
                                                  "env": {"TOOL_API_KEY": SECRETS[3]}}}});
    std::fs::create_dir_all(world.user.join(".cursor")).unwrap();
    std::fs::write(world.user.join(".cursor/mcp.json"), cursor.to_string()).unwrap();
    // With no daemon running, the import lists the new server in its own
    // process into the catalog on disk, and stops it.
    let out = world.ok(&["import", "--yes"]);
    assert!(out.contains("listed `tool` (") && out.contains("tool(s)) for the catalog"), "{out}");
    let cache = std::fs::read_to_string(world.gw.home.join("cache/catalog.json")).unwrap_or_default();
    assert!(cache.contains("\"tool\"") && cache.contains("echo"), "{cache}");
    assert!(wait_until(TIMEOUT, || world.gw.count("fixture_server.py") == 0), "{:?}", world.gw.processes());
    assert_eq!(world.config().servers["tool"].env["TOOL_API_KEY"], "${TOOL_API_KEY}");
    world.gw.start();
    let mut client = world.gw.client();
    client.initialize();
    assert!(client.tool_names().contains(&"tool__echo".to_string()));
    assert_eq!(world.gw.count("fixture_server.py"), 0, "listed from the catalog on disk, nothing started");
    let reply = client.call_tool(json!(1), "tool__env", json!({"name": "TOOL_API_KEY"}));
    assert_eq!(first_text(&reply), SECRETS[3]);
    let reply = client.call_tool(json!(2), "tool__echo", json!({"message": "hi"}));
    assert_eq!(first_text(&reply), "imported: hi");
}

/// A project's file is shared (usually committed): when PATH finds the shim,
/// `setup --scope project` writes its bare name, not this machine's path.
#[test]
fn setup_for_a_project_writes_the_shim_by_name_when_path_finds_it() {
    let world = World::new();
    let bin = Path::new(DAEMON).parent().unwrap().display().to_string();
    let out = world
        .gw
        .command(DAEMON)
        .args(["setup", "cursor", "--scope", "project", "--yes"])
        .env("HOME", &world.user)
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
        .current_dir(&world.project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value = world.json(&world.project.join(".cursor/mcp.json"));
    assert_eq!(value["mcpServers"]["gateway"]["command"], "mcp-gateway-connect", "{value}");
}

/// With a daemon on the socket `--socket` names (and MCP_GATEWAY_SOCKET
/// pointing elsewhere), `import` has that daemon apply it and says so, not
/// "no daemon runs now" (issue 19).
#[test]
fn import_tells_the_daemon_on_the_socket_given() {
    let mut world = World::empty();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_server.py");
    let cursor = json!({"mcpServers": {"tool": {"command": "python3", "args": [script, "imported"]}}});
    std::fs::create_dir_all(world.user.join(".cursor")).unwrap();
    std::fs::write(world.user.join(".cursor/mcp.json"), cursor.to_string()).unwrap();
    world.gw.start();
    let socket = world.gw.socket.display().to_string();
    let out = world
        .gw
        .command(DAEMON)
        .args(["import", "--yes", "--no-prefetch", "--socket", &socket])
        .env("HOME", &world.user)
        .env("MCP_GATEWAY_SOCKET", world.gw.dir.path().join("elsewhere.sock"))
        .current_dir(&world.project)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("the running daemon applied it") && !said.contains("no daemon"), "{said}");
    let mut client = world.gw.client();
    client.initialize();
    assert!(client.tool_names().contains(&"tool__echo".to_string()));
}
