//! `mcp-gateway service`: installs the per-user service the OS starts on the
//! first connect (systemd user units on Linux, a LaunchAgent on macOS), with
//! this binary's absolute path, since neither expands `~` or `$PATH` reliably.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use crate::cli::ServiceCommand;
use crate::{launchd, paths};

const SOCKET_UNIT: &str = include_str!("../systemd/mcp-gateway.socket");
const SERVICE_UNIT: &str = include_str!("../systemd/mcp-gateway.service");

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
    let service = SERVICE_UNIT.replace("/usr/bin/mcp-gateway", &bin.display().to_string());
    Ok(vec![(dir.join("mcp-gateway.socket"), SOCKET_UNIT.to_string()), (dir.join("mcp-gateway.service"), service)])
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
        ServiceCommand::Uninstall => {
            if cfg!(target_os = "macos") {
                let uid = nix::unistd::getuid();
                let _ = run_tool("launchctl", &["bootout", &format!("gui/{uid}/{}", launchd::LABEL)]);
            } else {
                let _ =
                    run_tool("systemctl", &["--user", "disable", "--now", "mcp-gateway.socket", "mcp-gateway.service"]);
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

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
