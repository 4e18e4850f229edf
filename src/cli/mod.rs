//! The command lines of both binaries (clap), and `mcp-gateway`'s subcommands.
//!
//! The definitions live here (they also generate the man pages and shell
//! completions); each subcommand's work lives in its own module.

mod clients;
mod doctor;
mod logs;
mod servers;
mod service;
mod status;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{config, control, daemon, paths};

mod generate;

/// `mcp-gateway`: the daemon and its command line.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-gateway",
    version,
    about = "Share one set of MCP servers between every AI client on this machine",
    after_help = paths::FILES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `--socket`, shared by the commands that talk to a running daemon.
#[derive(Debug, Clone, Args)]
pub struct SocketArg {
    /// The daemon's socket (default: see "Files" in `mcp-gateway --help`).
    #[arg(long, value_name = "PATH", env = "MCP_GATEWAY_SOCKET")]
    pub socket: Option<PathBuf>,
}

impl SocketArg {
    fn path(&self) -> PathBuf {
        paths::socket_path(self.socket.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (what the service manager or the shim starts).
    Serve {
        /// The config file (YAML or TOML, by extension).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The Unix socket to listen on.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Threads that run sessions and backends. One is the fastest for a
        /// per-user daemon: every call is a few hops between tasks, and a
        /// second thread mostly adds wake-ups between threads (measured in
        /// BENCHMARKS.md); more only help many busy terminals on many cores.
        #[arg(long, value_name = "N", env = "MCP_GATEWAY_WORKER_THREADS", default_value_t = 1,
              value_parser = clap::value_parser!(u16).range(1..=1024))]
        worker_threads: u16,
    },
    /// Show the running daemon: each backend (sharing key, state, pid, memory,
    /// uptime, restarts, sessions), each session (client, workspace, profile),
    /// and what per-terminal spawning would cost instead.
    Status {
        /// Print JSON (stable: see `schema_version`) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// List, add, remove, enable or disable servers in the config (the daemon
    /// applies each edit at once; comments and order are kept, the previous
    /// file is kept as `<file>.bak`).
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Show the daemon's log, or a server's captured stderr.
    Logs {
        /// A server: its instances' stderr (the last 200 lines each are kept).
        /// Without one: the daemon's own log (its file, or the journal).
        server: Option<String>,
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
        /// How many of the last lines to show first.
        #[arg(short = 'n', long, default_value_t = 50, value_name = "N")]
        lines: usize,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Stop a server's running instances now; its next call starts a fresh one
    /// (backoff and circuit breaker reset). Calls in flight on them fail.
    Restart {
        /// The server, as named in the config.
        server: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Log in to remote servers that need OAuth, see their logins, forget them
    /// (all through the daemon, which keeps and refreshes the tokens for every
    /// terminal).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Stop the running daemon (its backends are stopped with it).
    Stop {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Check or locate the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Install, remove or inspect the per-user service (systemd user units, or
    /// a LaunchAgent on macOS) that starts the daemon on the first connect.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Check the setup (socket, permissions, service, config, each server's
    /// command, Node/npx/uvx/docker) and say what to do about each problem.
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Copy the MCP servers your clients (Claude Code, Cursor, Codex, VS Code, Claude Desktop) define into the gateway config.
    #[command(long_about = clients::IMPORT_ABOUT)]
    Import(clients::ImportArgs),
    /// Point a client at the gateway: one mcp-gateway-connect entry in place of the servers the gateway now runs.
    #[command(long_about = clients::SETUP_ABOUT)]
    Setup(clients::SetupArgs),
    /// Register the HTTP front door in a team gateway (IBM ContextForge) as a federated peer, so the team
    /// gateway reaches this machine's servers of one profile.
    #[command(long_about = clients::FEDERATE_ABOUT)]
    Federate(clients::FederateArgs),
    /// Write the man pages into a directory (used to keep `man/` current).
    #[command(hide = true)]
    Manpages {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions into a directory (used to keep `completions/` current).
    #[command(hide = true)]
    Completions {
        /// Where to write them.
        dir: PathBuf,
    },
}

/// Which file a `servers` edit goes to (as for the `mcpgw_install` meta-tool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// The gateway config: every session sees the server.
    Global,
    /// The `.mcp-gateway.yaml` of the current directory's workspace: only
    /// sessions there see it, and only once the config trusts that workspace.
    Workspace,
}

/// Where a `servers` command finds the config.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The config file (default: see "Files" in `mcp-gateway --help`).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// List the configured servers, with their state in the running daemon.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Add a server: from the catalog by name (`mcp-gateway servers add memory`),
    /// or a command (`… add NAME -- npx -y PACKAGE`), or a URL (`--url`).
    #[command(after_help = "Examples:
  mcp-gateway servers add memory                       # from the catalog
  mcp-gateway servers add git -- uvx mcp-server-git    # a command and its arguments
  mcp-gateway servers add docs --url https://example.com/mcp --header 'Authorization=Bearer ${DOCS_TOKEN}'
  mcp-gateway servers add db --scope workspace --share workspace -- npx -y @acme/db-mcp")]
    Add {
        /// The server's name (tools appear as `<name>__<tool>`).
        name: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
        /// A remote server's URL (MCP Streamable HTTP, or the older HTTP+SSE).
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// An environment variable for the server, `NAME=VALUE` (use
        /// `NAME=${VAR}` to take the value from the credential sources).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// An HTTP header for a remote server, `NAME=VALUE`.
        #[arg(long = "header", value_name = "NAME=VALUE", requires = "url")]
        headers: Vec<String>,
        /// Who shares one process: global, workspace, credential or session.
        #[arg(long, value_name = "MODE")]
        share: Option<String>,
        /// Which file to change.
        #[arg(long, value_enum, default_value_t = Scope::Global)]
        scope: Scope,
        /// Start the server once (not through the daemon) and list its tools
        /// before writing anything.
        #[arg(long)]
        test: bool,
        /// Do not list the new server now (through the running daemon, else
        /// in this process) for the catalog; it is listed on its first use.
        #[arg(long)]
        no_prefetch: bool,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Remove a server (its running instances finish their calls, then stop).
    Remove {
        name: String,
        #[arg(long, value_enum, default_value_t = Scope::Global)]
        scope: Scope,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Turn a server back on.
    Enable {
        name: String,
        #[arg(long, value_enum, default_value_t = Scope::Global)]
        scope: Scope,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Turn a server off without removing it (`enabled: false`).
    Disable {
        name: String,
        #[arg(long, value_enum, default_value_t = Scope::Global)]
        scope: Scope,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in to a remote server: the daemon discovers its authorization
    /// server, opens the browser (`$MCP_GATEWAY_BROWSER`, else `$BROWSER`,
    /// else `xdg-open`/`open`, given the URL) and waits for it to come back.
    Login {
        /// The server, as named in the config.
        server: String,
        /// Open no browser: print the URL, and take the address the browser
        /// ends on (`http://127.0.0.1:…/callback?…`, pasted on stdin) when it
        /// cannot reach this machine (SSH, headless).
        #[arg(long)]
        no_browser: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Each remote server's login: state, issuer, scopes, expiry, how the
    /// gateway is registered (never a token).
    Status {
        /// Only this server.
        server: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Forget a server's tokens (the next call needs a login again).
    Logout {
        /// The server, as named in the config.
        server: String,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the service files with this binary's absolute path and enable the socket.
    Install {
        /// Only print what would be written.
        #[arg(long)]
        dry_run: bool,
    },
    /// Disable and remove the service files.
    Uninstall,
    /// Whether the service files are installed, and the socket enabled and listening.
    Status,
    /// Print the LaunchAgent plist this binary would install (any OS).
    Plist,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file: prints the file, line and reason of the first error.
    Check {
        /// The file to check (default: the config the daemon would load).
        file: Option<PathBuf>,
    },
    /// Print the path of the config file the daemon would load.
    Path,
}

/// Entry point of `mcp-gateway`.
pub fn main() -> ExitCode {
    // A backend's process-group guard is this binary exec'd again.
    if let Some(code) = crate::backend::guard::run_if_guard() {
        return code;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcp-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, socket, worker_threads } => serve(config, socket, worker_threads),
        Command::Status { json, socket } => status::run(&socket.path(), json),
        Command::Servers(command) => servers::run(command),
        Command::Logs { server, follow, lines, socket } => logs::run(&socket.path(), server.as_deref(), follow, lines),
        Command::Restart { server, socket } => {
            let answer = control::request_with(&socket.path(), "restart", serde_json::json!({ "server": server }))?;
            let stopped = answer.as_ref().and_then(|a| a["stopped"].as_u64()).unwrap_or(0);
            match stopped {
                0 => println!("`{server}` was not running; it starts on its next call"),
                n => println!("stopped {n} instance(s) of `{server}`; the next call starts a fresh one"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Auth(command) => auth(command),
        Command::Stop { socket } => {
            let socket = socket.path();
            // Left before asking, so every shim that sees its connection close
            // finds it and does not autostart the daemon again; the next daemon
            // removes it. (A shim replacing an older daemon stops it without one.)
            let marker = paths::stopped_marker(&socket);
            let _ = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new().create(true).truncate(true).write(true),
                0o600,
            )
            .open(&marker);
            if let Err(e) = control::request(&socket, "stop") {
                let _ = std::fs::remove_file(&marker);
                return Err(e.into());
            }
            wait_for_exit(&socket, Duration::from_secs(30));
            println!("stopped the daemon on {}", socket.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Path) => {
            println!("{}", paths::config_location(None).path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file.unwrap_or_else(|| paths::config_location(None).path);
            match config::Config::load(&path) {
                Ok(Some(c)) => {
                    println!("{}: ok, {} server(s)", path.display(), c.servers.len());
                    Ok(ExitCode::SUCCESS)
                }
                Ok(None) => {
                    eprintln!("{}: no such file", path.display());
                    Ok(ExitCode::from(2))
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Service(command) => service::run(command),
        Command::Doctor { json, socket } => doctor::run(&socket.path(), json),
        Command::Import(args) => clients::import(args),
        Command::Setup(args) => clients::setup(args),
        Command::Federate(args) => clients::federate(args),
        Command::Manpages { dir } => generate::man_pages(&dir).map(|()| ExitCode::SUCCESS),
        Command::Completions { dir } => generate::completions(&dir).map(|()| ExitCode::SUCCESS),
    }
}

/// After the command line changed `path`: the daemon on `socket` (the one
/// `--socket` names, else the default) applies it now, so the next command
/// sees it. Says what happened, naming the socket when none answers there
/// and any other daemon of this user that does.
pub(crate) fn tell_daemon(path: &std::path::Path, socket: &std::path::Path) {
    use table::{BAD, DIM};
    match control::reload_if_running(socket) {
        Ok(Some(None)) => println!("the running daemon applied it (sessions are told their lists changed)"),
        Ok(Some(Some(error))) => {
            anstream::println!("{BAD}the running daemon kept its last good config:{BAD:#} {error} ({})", path.display())
        }
        Ok(None) => {
            anstream::println!("{DIM}no daemon runs on {} now; the next one reads it{DIM:#}", socket.display());
            for other in control::other_daemons(socket, None) {
                anstream::println!(
                    "{DIM}a daemon runs on {} (`--socket {}` reaches it; it applies the change when it reads this \
                     config){DIM:#}",
                    other.socket.display(),
                    other.socket.display()
                );
            }
        }
        Err(e) => anstream::println!("{DIM}could not ask the daemon to apply it now ({e}); it will on its own{DIM:#}"),
    }
}

/// Waits until nothing answers on the socket any more.
fn wait_for_exit(socket: &std::path::Path, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long the daemon's exit waits for its last spans to reach the collector,
/// after the sessions' drain: a collector that is down costs the exit no more.
const TRACE_FLUSH: Duration = Duration::from_secs(3);

fn serve(config: Option<PathBuf>, socket: Option<PathBuf>, worker_threads: u16) -> anyhow::Result<ExitCode> {
    // Read what the service manager and the shim hand over before any thread
    // exists: listenfd edits the environment, which is only safe single-threaded.
    let listener = match listenfd::ListenFd::from_env().take_unix_listener(0).context("reading LISTEN_FDS")? {
        Some(listener) => Some(listener),
        None => crate::launchd::activated_listener("gateway"),
    };
    let ready = crate::startup::take_ready_fd();
    crate::memory::one_arena();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(worker_threads))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // The exporter is part of the log, set up before the daemon reads its
    // config; an unreadable config is the daemon's to report, just below.
    let location = crate::paths::config_location(config.as_deref());
    let configured = crate::config::Config::load(&location.path).ok().flatten();
    let endpoint = configured.as_ref().and_then(|c| c.telemetry.otlp_endpoint.as_deref());
    let (spans, exporter) = crate::trace::layer(runtime.handle().clone(), endpoint);
    crate::logging::init(spans);
    crate::trace::log_setup();
    let options = daemon::ServeOptions { config, socket, listener, ready, listing_cache: None };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = runtime.block_on(daemon::serve(options, shutdown));
    // The last spans (the sessions drained just now) go out before the exit;
    // the runtime still runs, and the export needs it.
    exporter.shutdown(TRACE_FLUSH);
    served?;
    // Backends are stopped already; do not wait for stray blocking tasks.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// `mcp-gateway auth …`.
fn auth(command: AuthCommand) -> anyhow::Result<ExitCode> {
    use serde_json::json;
    match command {
        AuthCommand::Login { server, no_browser, socket } => {
            let wait = std::time::Duration::from_secs(330);
            let args = json!({ "server": server, "no_browser": no_browser });
            let mut show = |url: &str| {
                if no_browser {
                    eprintln!(
                        "open this URL in a browser and log in (waiting up to 5 minutes):\n\n  {url}\n\n\
                         if the browser then cannot load the 127.0.0.1 page it is sent to, paste that page's \
                         address here and press Enter"
                    );
                    std::thread::spawn(paste_callback);
                } else {
                    eprintln!(
                        "logging in to `{server}`: finish in the browser that opens (waiting up to 5 minutes); \
                         if none opens, visit:\n\n  {url}\n"
                    );
                }
            };
            let answer = match control::request_here_showing(&socket.path(), "auth-login", args, wait, &mut show) {
                // The daemon saves a login only once it is complete: nothing
                // of this one was kept, and an earlier one's tokens are intact.
                Err(control::ControlError::Closed) => anyhow::bail!(
                    "the daemon stopped before the login to `{server}` finished (it crashed or was killed): \
                     nothing of this login was saved, and the tokens of an earlier login, if any, are kept; \
                     run `{}` again once the daemon is back",
                    crate::oauth::login_command(&server)
                ),
                answer => answer?.unwrap_or_default(),
            };
            if answer["registration"] == "client_credentials" {
                // A machine client: no browser was opened, and none is needed later.
                println!(
                    "fetched a token for `{server}` with its client credentials (issuer {}); no login is needed: \
                     the daemon fetches new tokens itself",
                    answer["issuer"].as_str().unwrap_or("unknown")
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("logged in to `{server}` (issuer {})", answer["issuer"].as_str().unwrap_or("unknown"));
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::Status { server, json, socket } => {
            let args = server.as_ref().map(|s| json!({ "server": s })).unwrap_or_default();
            let wait = std::time::Duration::from_secs(10);
            let answer = control::request_here(&socket.path(), "auth-status", args, wait)?.unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(ExitCode::SUCCESS);
            }
            for row in answer["servers"].as_array().into_iter().flatten() {
                let text = |key: &str| row[key].as_str().unwrap_or("-").to_string();
                let expires = row["expires_in_secs"].as_u64().map(|s| format!("{s} s")).unwrap_or_else(|| "-".into());
                // The server asked for more scopes since the last login.
                let wanted = row["wanted_scopes"].as_str().map(|w| format!("\twants scopes {w}")).unwrap_or_default();
                // A client-credentials server's last failed token fetch (never the secret).
                let error = row["error"].as_str().map(|e| format!("\terror: {e}")).unwrap_or_default();
                println!(
                    "{}\t{}\tissuer {}\tscopes {}\texpires in {expires}\tregistration {}\ttokens in {}{wanted}{error}",
                    text("server"),
                    text("state"),
                    text("issuer"),
                    text("scopes"),
                    text("registration"),
                    text("tokens_in")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::Logout { server, socket } => {
            let wait = std::time::Duration::from_secs(30);
            let answer = control::request_here(&socket.path(), "auth-logout", json!({ "server": server }), wait)?;
            let answer = answer.unwrap_or_default();
            match answer["revoked"].as_bool() {
                Some(true) => println!("revoked the tokens of `{server}` at its authorization server"),
                Some(false) => eprintln!(
                    "could not revoke the tokens of `{server}` ({}); they are forgotten here anyway",
                    answer["revocation_error"].as_str().unwrap_or("no reason given")
                ),
                None => {}
            }
            match answer["forgotten"].as_bool() {
                Some(true) => println!("forgot the login to `{server}`"),
                _ => println!("`{server}` had no login to forget"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `auth login --no-browser`: each pasted line that is a loopback callback
/// address is delivered to the daemon's callback from here (the machine it
/// listens on).
fn paste_callback() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    for line in std::io::stdin().lines().map_while(Result::ok) {
        let Ok(url) = reqwest::Url::parse(line.trim()) else {
            eprintln!("not an address; paste the whole http://127.0.0.1:…/callback?… line");
            continue;
        };
        // 127.0.0.1, or the loopback name an `oauth.redirect_uri` may use.
        if url.scheme() != "http" || !matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")) {
            eprintln!("that is not the gateway's callback (http://127.0.0.1:…/callback?…)");
            continue;
        }
        match runtime.block_on(reqwest::get(url)) {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => eprintln!("the callback refused it (HTTP {}); paste the address again", r.status()),
            Err(e) => eprintln!("the callback could not be reached: {}", e.without_url()),
        }
    }
}
