//! Control commands, the daemon's side (the command line's is `crate::control`):
//! one reply line, at most one JSON body, then the connection closes.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::gateway::{Asker, Gateway};
use crate::preamble::{Preamble, PreambleReply};

/// Serves one control command on the daemon side.
pub async fn handle<W: AsyncWrite + Unpin>(
    gateway: &Arc<Gateway>,
    command: &str,
    preamble: &Preamble,
    mut write: W,
    shutdown: CancellationToken,
) {
    let args = &preamble.args;
    let server = args.get("server").and_then(Value::as_str);
    let asker = Asker { cwd: preamble.cwd.as_deref(), env: preamble.env.clone() };
    let (reply, body) = match (command, server) {
        ("status", _) => (PreambleReply::accepted(None), Some(gateway.status())),
        ("stop", _) => (PreambleReply::accepted(None), None),
        // The command line's config edits: applied before it returns, so the
        // next command already sees them (no wait for the file watcher).
        ("reload", _) => {
            gateway.reload();
            (PreambleReply::accepted(None), Some(serde_json::json!({ "config_error": gateway.config_error() })))
        }
        ("restart", Some(server)) => match gateway.restart_server(server).await {
            Ok(stopped) => (PreambleReply::accepted(None), Some(serde_json::json!({ "stopped": stopped }))),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("logs", server) => match gateway.backend_logs(server, args.get("since")) {
            Ok(logs) => (PreambleReply::accepted(None), Some(logs)),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("auth-login", Some(server)) => match gateway.auth_login(server, &asker).await {
            Ok(status) => (PreambleReply::accepted(None), Some(status)),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("auth-status", server) => match gateway.auth_status(server, &asker) {
            Ok(status) => (PreambleReply::accepted(None), Some(status)),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("auth-logout", Some(server)) => match gateway.auth_logout(server, &asker).await {
            Ok(answer) => (PreambleReply::accepted(None), Some(answer)),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("auth-login" | "auth-logout", None) => {
            (PreambleReply::refused(format!("`{command}` needs a server name")), None)
        }
        ("restart", None) => (PreambleReply::refused("`restart` needs a server name"), None),
        (other, _) => (
            PreambleReply::refused(format!(
                "unknown control command `{other}`: this daemon is mcp-gateway {}; if the command line is newer, \
                 restart the daemon (`mcp-gateway stop`)",
                crate::VERSION
            )),
            None,
        ),
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    if let Some(body) = body {
        out.extend(serde_json::to_vec(&body).unwrap_or_default());
        out.push(b'\n');
    }
    let _ = write.write_all(&out).await;
    let _ = write.shutdown().await;
    if command == "stop" {
        info!("stop requested over the control socket");
        shutdown.cancel();
    }
}
