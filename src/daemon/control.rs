//! Control commands, the daemon's side (the command line's is `crate::control`):
//! one reply line, at most one JSON body, then the connection closes. A login
//! (`auth-login`) may send `{"authorize_url": …}` lines before its reply.

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
        // The command line's prefetch after it added servers (`servers add`,
        // `import`): listed as the asker's session would see them, so the
        // catalog is warm before the first client attaches.
        ("prefetch", _) => {
            let servers: Vec<String> = args
                .get("servers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            match gateway.prefetch(&servers, &asker).await {
                Ok(listed) => (PreambleReply::accepted(None), Some(listed)),
                Err(e) => (PreambleReply::refused(e), None),
            }
        }
        ("restart", Some(server)) => match gateway.restart_server(server).await {
            Ok(stopped) => (PreambleReply::accepted(None), Some(serde_json::json!({ "stopped": stopped }))),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("logs", server) => match gateway.backend_logs(server, args.get("since")) {
            Ok(logs) => (PreambleReply::accepted(None), Some(logs)),
            Err(e) => (PreambleReply::refused(e), None),
        },
        ("auth-login", Some(server)) => {
            // The authorization URL goes to the command line as soon as there
            // is one (a line of its own before the reply), for a person to
            // open by hand when no browser does.
            let browser = !args.get("no_browser").and_then(Value::as_bool).unwrap_or(false);
            let (show, mut shown) = tokio::sync::mpsc::unbounded_channel();
            let login = gateway.auth_login(server, &asker, show, browser);
            tokio::pin!(login);
            let result = loop {
                tokio::select! {
                    result = &mut login => break result,
                    // A login waits minutes for a person; a stopping daemon
                    // does not (the last good tokens are kept).
                    _ = shutdown.cancelled() => break Err(format!(
                        "the daemon is stopping, so the login to `{server}` did not finish; \
                         run it again once the daemon runs (the last good login is kept)"
                    )),
                    Some(url) = shown.recv() => {
                        let mut line = serde_json::to_vec(&serde_json::json!({ "authorize_url": url })).unwrap_or_default();
                        line.push(b'\n');
                        let _ = write.write_all(&line).await;
                    }
                }
            };
            match result {
                Ok(status) => (PreambleReply::accepted(None), Some(status)),
                Err(e) => (PreambleReply::refused(e), None),
            }
        }
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
