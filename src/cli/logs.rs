//! `mcp-gateway logs [SERVER] [-f]`: the daemon's own log (wherever it goes:
//! a file, or the journal), or the stderr the daemon captured from a server's
//! instances.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use super::table::DIM;
use crate::control::{self, ControlError};
use crate::logging::LogDestination;

const POLL: Duration = Duration::from_millis(300);

pub fn run(socket: &Path, server: Option<&str>, follow: bool, lines: usize) -> anyhow::Result<ExitCode> {
    match server {
        Some(server) => server_logs(socket, server, follow, lines),
        None => daemon_log(socket, follow, lines),
    }
}

/// A server's captured stderr, instance by instance; with `follow`, new lines
/// as they come, prefixed with their instance when there are several.
fn server_logs(socket: &Path, server: &str, follow: bool, lines: usize) -> anyhow::Result<ExitCode> {
    let answer = control::request_with(socket, "logs", json!({ "server": server }))?.unwrap_or(Value::Null);
    let backends = answer["backends"].as_array().cloned().unwrap_or_default();
    if backends.is_empty() {
        anstream::eprintln!("{DIM}`{server}` has not run since the daemon started (or was stopped as idle){DIM:#}");
    }
    let mut next: HashMap<String, u64> = HashMap::new();
    for b in &backends {
        let all = b["lines"].as_array().cloned().unwrap_or_default();
        let state = match b["exit"].as_str() {
            Some(exit) if b["running"] == false => exit.lines().next().unwrap_or(exit).to_string(),
            _ => "running".to_string(),
        };
        anstream::println!(
            "{DIM}== {} ({}, pid {}, {state}) =={DIM:#}",
            b["server"].as_str().unwrap_or(server),
            b["key"].as_str().unwrap_or("-"),
            b["pid"]
        );
        for line in all.iter().skip(all.len().saturating_sub(lines)) {
            println!("{}", line.as_str().unwrap_or_default());
        }
        next.insert(b["instance"].as_str().unwrap_or_default().to_string(), b["next"].as_u64().unwrap_or(0));
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(POLL);
        let since = serde_json::to_value(&next)?;
        let answer = match control::request_with(socket, "logs", json!({ "server": server, "since": since })) {
            Ok(answer) => answer.unwrap_or(Value::Null),
            Err(ControlError::NotRunning { .. }) => {
                eprintln!("the daemon stopped");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.into()),
        };
        let backends = answer["backends"].as_array().cloned().unwrap_or_default();
        let several = backends.len() > 1;
        for b in &backends {
            let instance = b["instance"].as_str().unwrap_or_default().to_string();
            for line in b["lines"].as_array().into_iter().flatten() {
                let line = line.as_str().unwrap_or_default();
                if several {
                    println!("[{}] {line}", b["key"].as_str().unwrap_or("-"));
                } else {
                    println!("{line}");
                }
            }
            next.insert(instance, b["next"].as_u64().unwrap_or(0));
        }
        std::io::stdout().flush()?;
    }
}

/// The daemon's log: asks the daemon where it logs; when none runs, the file
/// the shim's autostart writes.
fn daemon_log(socket: &Path, follow: bool, lines: usize) -> anyhow::Result<ExitCode> {
    let destination = match control::request(socket, "status") {
        Ok(status) => status
            .and_then(|s| serde_json::from_value::<LogDestination>(s["log"].clone()).ok())
            .unwrap_or(LogDestination::Stderr),
        Err(ControlError::NotRunning { .. }) => {
            let file = crate::paths::daemon_log_path();
            anstream::eprintln!("{DIM}no daemon is running; showing {}{DIM:#}", file.display());
            LogDestination::File(file)
        }
        Err(e) => return Err(e.into()),
    };
    match destination {
        LogDestination::Journal => {
            let mut journalctl = std::process::Command::new("journalctl");
            journalctl.args(["--user", "-u", "mcp-gateway.service", "-n", &lines.to_string(), "--no-pager"]);
            if follow {
                journalctl.arg("-f");
            }
            let status = journalctl.status().context("running journalctl (the daemon logs to the journal)")?;
            Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        LogDestination::File(path) => tail_file(&path, follow, lines),
        LogDestination::Stderr => {
            eprintln!(
                "the daemon logs to the terminal (or pipe) it was started from, which only that terminal can read; \
                 run it as a service (`mcp-gateway service install`) or let the shim start it, and its log is kept"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints the last `lines` lines of a file, then (with `follow`) what is
/// appended, starting over when the file is truncated or replaced.
fn tail_file(path: &PathBuf, follow: bool, lines: usize) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => {
            eprintln!("{} does not exist yet: the daemon has not logged there", path.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    for line in &all[all.len().saturating_sub(lines)..] {
        println!("{line}");
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut offset = text.len() as u64;
    let mut stdout = std::io::stdout();
    loop {
        stdout.flush()?;
        std::thread::sleep(POLL);
        let Ok(mut file) = std::fs::File::open(path) else { continue };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // truncated or replaced: read it from the start
        }
        if len == offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut new = Vec::new();
        file.read_to_end(&mut new)?;
        offset += new.len() as u64;
        stdout.write_all(&new)?;
    }
}
