//! Control connections, the command line's side: `mcp-gateway status`,
//! `stop`, `restart`, `reload` and `logs` talk to the running daemon over the
//! same socket, with a preamble that names a command (and its arguments); the
//! daemon (`daemon::control`) answers one reply line and at most one JSON body.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::preamble::{PREAMBLE_VERSION, Preamble, PreambleReply};

/// Why a control command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no mcp-gateway daemon is listening on {path}: {source}")]
    NotRunning { path: String, source: std::io::Error },
    #[error(transparent)]
    Untrusted(#[from] crate::trusted_socket::UntrustedSocket),
    #[error("talking to the daemon failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon refused: {0}")]
    Refused(String),
    #[error("the daemon sent an answer this client does not understand: {0}")]
    BadReply(String),
    /// The connection ended before the reply: the daemon stopped, crashed or
    /// was killed while it worked on the command.
    #[error("the daemon closed the connection before it answered (it stopped, crashed or was killed)")]
    Closed,
}

/// Asks a running daemon to apply the config file now, after the command line
/// edited it. `Ok(None)`: no daemon runs (the next one reads the file);
/// `Ok(Some(error))`: the daemon kept its last good config because of `error`.
pub fn reload_if_running(socket: &Path) -> Result<Option<Option<String>>, ControlError> {
    match request(socket, "reload") {
        Ok(answer) => Ok(Some(answer.and_then(|a| a["config_error"].as_str().map(str::to_string)))),
        Err(ControlError::NotRunning { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A daemon of this user listening on another socket than the one a command
/// talks to: clients that find that socket use it, with its own backends.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OtherDaemon {
    pub socket: std::path::PathBuf,
    pub pid: Option<u64>,
}

/// The daemons listening on [`crate::paths::candidate_sockets`] other than
/// the one on `socket` (whose pid, when it answered, is `own_pid`: the same
/// daemon reached through another path, a symbolic link, is not a second
/// one). Only trusted sockets are asked ([`crate::trusted_socket`]); a
/// socket nobody listens on, or one that is not this user's, is skipped.
pub fn other_daemons(socket: &Path, own_pid: Option<u64>) -> Vec<OtherDaemon> {
    let same = |a: &Path, b: &Path| {
        a == b || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
    };
    let mut candidates = crate::paths::candidate_sockets();
    for recorded in recorded_sockets() {
        if !candidates.contains(&recorded) {
            candidates.push(recorded);
        }
    }
    candidates
        .into_iter()
        .filter(|candidate| !same(candidate, socket))
        .filter_map(|candidate| {
            let status = request(&candidate, "status").ok()?.unwrap_or(Value::Null);
            let pid = status["pid"].as_u64();
            (pid.is_none() || pid != own_pid).then_some(OtherDaemon { socket: candidate, pid })
        })
        .collect()
}

/// The sockets the daemons sharing this gateway home recorded
/// ([`crate::paths::daemon_records_dir`]); a record whose socket is gone (a
/// daemon that was killed) is removed.
fn recorded_sockets() -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(crate::paths::daemon_records_dir()) else { return Vec::new() };
    let mut sockets = Vec::new();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let socket = std::path::PathBuf::from(text.trim_end_matches('\n'));
        if socket.is_absolute() && std::fs::symlink_metadata(&socket).is_ok() {
            sockets.push(socket);
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    sockets.sort();
    sockets
}

/// What to do about other daemons, for `doctor` and `status`.
pub fn other_daemons_fix(socket: &Path) -> String {
    format!(
        "clients that reach another socket get another daemon with its own backends. Keep one: stop the others \
         (`mcp-gateway stop --socket OTHER`), and have every client's entry name this one: \
         `MCP_GATEWAY_SOCKET={} mcp-gateway setup CLIENT` writes it as the shim's --socket",
        socket.display()
    )
}

/// Sends a control command and returns the daemon's answer body (if any).
pub fn request(socket: &Path, command: &str) -> Result<Option<Value>, ControlError> {
    request_with(socket, command, Value::Null)
}

/// Sends a control command with arguments and returns the answer body (if any).
pub fn request_with(socket: &Path, command: &str, args: Value) -> Result<Option<Value>, ControlError> {
    let preamble = Preamble {
        mcp_gateway_preamble: PREAMBLE_VERSION,
        control: Some(command.to_string()),
        args,
        shim_version: crate::VERSION.to_string(),
        ..Default::default()
    };
    send(socket, &preamble, Duration::from_secs(10), &mut |_| {})
}

/// Sends a control command that acts for this terminal (`auth …`: its
/// directory and environment pick the server's definition and credentials,
/// and its browser), waiting up to `wait` for the answer.
pub fn request_here(socket: &Path, command: &str, args: Value, wait: Duration) -> Result<Option<Value>, ControlError> {
    request_here_showing(socket, command, args, wait, &mut |_| {})
}

/// [`request_here`], handing each `{"authorize_url": …}` line the daemon
/// sends before its reply (a login's) to `show`.
pub fn request_here_showing(
    socket: &Path,
    command: &str,
    args: Value,
    wait: Duration,
    show: &mut dyn FnMut(&str),
) -> Result<Option<Value>, ControlError> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let preamble = Preamble {
        mcp_gateway_preamble: PREAMBLE_VERSION,
        control: Some(command.to_string()),
        args,
        cwd: std::env::current_dir().ok(),
        env: crate::preamble::ClientEnv(std::sync::Arc::new(env)),
        shim_version: crate::VERSION.to_string(),
        ..Default::default()
    };
    send(socket, &preamble, wait, show)
}

fn send(
    socket: &Path,
    preamble: &Preamble,
    wait: Duration,
    show: &mut dyn FnMut(&str),
) -> Result<Option<Value>, ControlError> {
    let stream = crate::trusted_socket::connect(socket)?
        .map_err(|source| ControlError::NotRunning { path: socket.display().to_string(), source })?;
    stream.set_read_timeout(Some(wait))?;
    let mut line = serde_json::to_vec(preamble).map_err(|e| ControlError::BadReply(e.to_string()))?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut reader = BufReader::new(&stream);
    let mut reply = String::new();
    loop {
        reply.clear();
        if reader.read_line(&mut reply)? == 0 {
            return Err(ControlError::Closed);
        }
        let progress = serde_json::from_str::<Value>(&reply).ok();
        match progress.as_ref().and_then(|v| v.get("authorize_url")).and_then(Value::as_str) {
            Some(url) => show(url),
            None => break,
        }
    }
    let reply: PreambleReply = serde_json::from_str(&reply).map_err(|e| ControlError::BadReply(e.to_string()))?;
    if let Some(error) = reply.error {
        return Err(ControlError::Refused(error));
    }
    let mut body = String::new();
    reader.read_line(&mut body)?;
    if body.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&body).map(Some).map_err(|e| ControlError::BadReply(e.to_string()))
}
