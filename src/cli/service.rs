//! `mcp-gateway service`: installs the per-user service the OS starts on the
//! first connect (systemd user units on Linux, a LaunchAgent on macOS), with
//! this binary's absolute path, since neither expands `~` or `$PATH` reliably.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use super::ServiceCommand;
use crate::{launchd, paths};

const SOCKET_UNIT: &str = include_str!("../../systemd/mcp-gateway.socket");
const SERVICE_UNIT: &str = include_str!("../../systemd/mcp-gateway.service");
const UPGRADE_PATH_UNIT: &str = include_str!("../../systemd/mcp-gateway-upgrade.path");
const UPGRADE_SERVICE_UNIT: &str = include_str!("../../systemd/mcp-gateway-upgrade.service");

fn binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding this binary's path")
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

/// The files to write: (path, contents).
fn files() -> anyhow::Result<Vec<(PathBuf, String)>> {
    let bin = binary()?;
    if cfg!(target_os = "macos") {
        let socket = paths::socket_path(None);
        let plist = launchd::plist(&bin, &socket, &paths::daemon_log_path());
        let path = home().join("Library/LaunchAgents").join(format!("{}.plist", launchd::LABEL));
        return Ok(vec![(path, plist)]);
    }
    let dir = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".config"));
    let dir = dir.join("systemd/user");
    // The units name the packaged binary; these copies name this one (the
    // upgrade watch then restarts the daemon when `cargo install` replaces it).
    let this = |unit: &str| unit.replace("/usr/bin/mcp-gateway", &bin.display().to_string());
    Ok(vec![
        (dir.join("mcp-gateway.socket"), SOCKET_UNIT.to_string()),
        (dir.join("mcp-gateway.service"), this(SERVICE_UNIT)),
        (dir.join("mcp-gateway-upgrade.path"), this(UPGRADE_PATH_UNIT)),
        (dir.join("mcp-gateway-upgrade.service"), this(UPGRADE_SERVICE_UNIT)),
    ])
}

fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program).args(args).status().with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

pub fn run(command: ServiceCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServiceCommand::Plist => {
            let bin = binary()?;
            print!("{}", launchd::plist(&bin, &paths::socket_path(None), &paths::daemon_log_path()));
        }
        ServiceCommand::Install { dry_run } => {
            for (path, contents) in files()? {
                if dry_run {
                    println!("# {}\n{contents}", path.display());
                    continue;
                }
                write(&path, &contents)?;
                println!("wrote {}", path.display());
            }
            if !dry_run {
                if cfg!(target_os = "macos") {
                    let uid = nix::unistd::getuid();
                    let plist = files()?.remove(0).0;
                    run_tool("launchctl", &["bootstrap", &format!("gui/{uid}"), &plist.display().to_string()])?;
                } else {
                    run_tool("systemctl", &["--user", "daemon-reload"])?;
                    run_tool("systemctl", &["--user", "enable", "--now", "mcp-gateway.socket"])?;
                }
                println!("installed: the daemon now starts on the first connect");
            }
        }
        ServiceCommand::Status => {
            let report = inspect();
            for (path, present) in &report.files {
                println!("{:<20} {}", if *present { "installed" } else { "not installed" }, path.display());
            }
            if let Some(unit) = &report.packaged {
                println!("{:<20} {}", "packaged", unit.display());
            }
            for (what, state) in &report.manager {
                println!("{what:<20} {state}");
            }
            let socket = paths::socket_path(None);
            let answering = std::os::unix::net::UnixStream::connect(&socket).is_ok();
            let listening = if answering { "a daemon answers" } else { "nothing listening" };
            println!("{:<20} {} ({listening})", "socket", socket.display());
            let installed = report.installed() || report.packaged_and_enabled();
            return Ok(if installed { ExitCode::SUCCESS } else { ExitCode::from(3) });
        }
        ServiceCommand::Uninstall => {
            if cfg!(target_os = "macos") {
                let uid = nix::unistd::getuid();
                let _ = run_tool("launchctl", &["bootout", &format!("gui/{uid}/{}", launchd::LABEL)]);
            } else {
                let units = ["mcp-gateway.socket", "mcp-gateway.service", "mcp-gateway-upgrade.path"];
                let _ = run_tool("systemctl", &[&["--user", "disable", "--now"][..], &units].concat());
            }
            for (path, _) in files()? {
                if path.exists() {
                    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                    println!("removed {}", path.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What is installed, and what the service manager says about it.
pub struct ServiceReport {
    /// Each service file this binary would install, and whether it is there.
    pub files: Vec<(PathBuf, bool)>,
    /// `(unit, state)` from `systemctl --user is-enabled/is-active` (or
    /// launchctl), or why the manager could not be asked.
    pub manager: Vec<(String, String)>,
    /// Where the service manager loads the socket unit from when it is not
    /// one of these files: a package's (`/usr/lib/systemd/user/…`).
    pub packaged: Option<PathBuf>,
}

impl ServiceReport {
    pub fn installed(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|(_, present)| *present)
    }

    /// The package's units are there and the socket is enabled (by the user,
    /// `systemctl --user enable --now mcp-gateway.socket`).
    pub fn packaged_and_enabled(&self) -> bool {
        self.packaged.is_some()
            && self.manager.iter().any(|(unit, state)| unit == "mcp-gateway.socket" && state.starts_with("enabled"))
    }
}

/// Looks at the service files and asks the service manager about them.
pub fn inspect() -> ServiceReport {
    let files: Vec<(PathBuf, bool)> = files()
        .unwrap_or_default()
        .into_iter()
        .map(|(path, _)| {
            let present = path.exists();
            (path, present)
        })
        .collect();
    let ask = |program: &str, args: &[&str]| -> String {
        match Command::new(program).args(args).output() {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if text.is_empty() { err } else { text }
            }
            Err(e) => format!("cannot run {program}: {e}"),
        }
    };
    let mut packaged = None;
    let manager = if cfg!(target_os = "macos") {
        let uid = nix::unistd::getuid();
        let state = ask("launchctl", &["print", &format!("gui/{uid}/{}", launchd::LABEL)]);
        let loaded = if state.contains("state =") { "loaded" } else { "not loaded" };
        vec![("launchd".to_string(), loaded.to_string())]
    } else {
        vec![
            (
                "mcp-gateway.socket".to_string(),
                format!(
                    "{}, {}",
                    ask("systemctl", &["--user", "is-enabled", "mcp-gateway.socket"]),
                    ask("systemctl", &["--user", "is-active", "mcp-gateway.socket"])
                ),
            ),
            ("mcp-gateway.service".to_string(), ask("systemctl", &["--user", "is-active", "mcp-gateway.service"])),
        ]
    };
    if !cfg!(target_os = "macos") {
        let fragment = ask("systemctl", &["--user", "show", "mcp-gateway.socket", "-p", "FragmentPath", "--value"]);
        let fragment = PathBuf::from(fragment);
        if fragment.is_absolute() && fragment.exists() && !files.iter().any(|(path, _)| *path == fragment) {
            packaged = Some(fragment);
        }
    }
    ServiceReport { files, manager, packaged }
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
