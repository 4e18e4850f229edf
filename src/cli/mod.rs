//! The command lines of both binaries (clap), and `mcp-gateway`'s subcommands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::{config, control, daemon, paths};

mod generate;

const AFTER_HELP: &str = "\
Files:
  gateway home   $MCP_GATEWAY_HOME, else ~/.mcp-gateway/
  config         --config, else $MCP_GATEWAY_CONFIG, else config.yaml (or .toml) in the gateway home
  socket         --socket, else $MCP_GATEWAY_SOCKET, else $XDG_RUNTIME_DIR/mcp-gateway/gateway.sock,
                 else /tmp/mcp-gateway-$UID/gateway.sock

Point an MCP client at `mcp-gateway-connect` instead of each server; it starts the daemon when needed.";

/// `mcp-gateway`: the daemon and its command line.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-gateway",
    version,
    about = "Share one set of MCP servers between every AI client on this machine",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
    },
    /// Show the running daemon's backends and sessions.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The daemon's socket.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Stop the running daemon (its backends are stopped with it).
    Stop {
        /// The daemon's socket.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Check or locate the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Install the per-user service (systemd user units, or a LaunchAgent on macOS).
    #[command(subcommand)]
    Service(ServiceCommand),
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

/// `mcp-gateway-connect`: the stdio shim an MCP client launches.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-gateway-connect",
    version,
    about = "Connect an MCP client (on stdin/stdout) to the mcp-gateway daemon, starting it if needed",
    after_help = AFTER_HELP
)]
pub struct ConnectArgs {
    /// The daemon's socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The profile this client's session uses.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Fail instead of starting the daemon when nothing listens.
    #[arg(long)]
    pub no_autostart: bool,
}

/// The environment variable carrying the start-up handshake pipe's fd.
pub const READY_FD_ENV: &str = "MCP_GATEWAY_READY_FD";

/// Entry point of `mcp-gateway`.
pub fn main() -> ExitCode {
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
        Command::Serve { config, socket } => serve(config, socket),
        Command::Status { json, socket } => {
            let socket = paths::socket_path(socket.as_deref());
            let status = control::request(&socket, "status")?.unwrap_or(Value::Null);
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", format_status(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop { socket } => {
            let socket = paths::socket_path(socket.as_deref());
            control::request(&socket, "stop")?;
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
        Command::Service(command) => crate::service::run(command),
        Command::Manpages { dir } => generate::man_pages(&dir).map(|()| ExitCode::SUCCESS),
        Command::Completions { dir } => generate::completions(&dir).map(|()| ExitCode::SUCCESS),
    }
}

/// Waits until nothing answers on the socket any more.
fn wait_for_exit(socket: &std::path::Path, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(config: Option<PathBuf>, socket: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    // Read what the service manager and the shim hand over before any thread
    // exists: listenfd edits the environment, which is only safe single-threaded.
    let listener = match listenfd::ListenFd::from_env().take_unix_listener(0).context("reading LISTEN_FDS")? {
        Some(listener) => Some(listener),
        None => crate::launchd::activated_listener("gateway"),
    };
    let ready = take_ready_fd();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let options = daemon::ServeOptions { config, socket, listener, ready };
    let shutdown = tokio_util::sync::CancellationToken::new();
    runtime.block_on(daemon::serve(options, shutdown))?;
    // Backends are stopped already; do not wait for stray blocking tasks.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// The write end of the shim's start-up pipe, if the shim started us.
fn take_ready_fd() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    let fd: i32 = std::env::var(READY_FD_ENV).ok()?.parse().ok()?;
    // Only adopt it if it really is an open descriptor (not stdin/out/err).
    // SAFETY: fcntl(F_GETFD) on any integer is harmless; it fails for a closed fd.
    if fd <= 2 || unsafe { libc_fcntl_getfd(fd) } < 0 {
        return None;
    }
    // SAFETY: the fd is open, was handed to us for this purpose, and nothing else owns it.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    Some(file)
}

/// `fcntl(fd, F_GETFD)` on a raw descriptor number.
unsafe fn libc_fcntl_getfd(fd: i32) -> i32 {
    // SAFETY: the caller only asks about the descriptor; borrowing it for one call
    // is sound even if it is closed (the call then fails with EBADF).
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD).unwrap_or(-1)
}

/// Whether stderr is the journal: `JOURNAL_STREAM` names its device and inode.
fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var("JOURNAL_STREAM").ok() else { return false };
    let Ok(meta) = nix::sys::stat::fstat(std::io::stderr()) else { return false };
    expected == format!("{}:{}", meta.st_dev, meta.st_ino)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("MCP_GATEWAY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Under systemd, log to the journal with levels and fields; else plain text on stderr.
    let journald = stderr_is_journal().then(|| tracing_journald::layer().ok()).flatten();
    let fmt =
        journald.is_none().then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false));
    tracing_subscriber::registry().with(filter).with(journald).with(fmt).init();
}

fn format_status(status: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let get = |v: &Value, k: &str| v.get(k).map(|x| x.to_string().trim_matches('"').to_string()).unwrap_or_default();
    let pid = status.get("pid").and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(
        out,
        "mcp-gateway {} (pid {pid}, up {} s, {} KiB)",
        get(status, "version"),
        get(status, "uptime_secs"),
        u32::try_from(pid).ok().and_then(crate::backend::rss_kib).map(|k| k.to_string()).unwrap_or_else(|| "?".into())
    );
    let backends = status.get("backends").and_then(Value::as_array).cloned().unwrap_or_default();
    let _ = writeln!(out, "\nBACKEND              KEY          STATE     PID      RSS KiB  UP s   RESTARTS IN FLIGHT");
    if backends.is_empty() {
        let _ = writeln!(out, "(none running)");
    }
    for b in &backends {
        let pid = b.get("pid").and_then(Value::as_u64);
        let _ = writeln!(
            out,
            "{:<20} {:<12} {:<9} {:<8} {:<8} {:<6} {:<8} {}",
            get(b, "server"),
            get(b, "key"),
            get(b, "state"),
            pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            get(b, "rss_kib"),
            get(b, "uptime_secs"),
            get(b, "restarts"),
            get(b, "in_flight"),
        );
    }
    let sessions = status.get("sessions").and_then(Value::as_array).cloned().unwrap_or_default();
    let _ = writeln!(out, "\nSESSION  CLIENT                 CLIENT PID  CWD");
    if sessions.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    for s in &sessions {
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:<11} {}",
            get(s, "id"),
            get(s, "client"),
            get(s, "client_pid"),
            get(s, "cwd"),
        );
    }
    out
}
