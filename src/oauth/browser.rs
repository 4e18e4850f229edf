//! Opening the authorization URL: the command in `MCP_GATEWAY_BROWSER`, else
//! `BROWSER`, else `xdg-open` (`open` on macOS), with the URL as its last
//! argument. The command is run by `sh` so it may carry arguments of its own;
//! the URL is passed as a positional parameter, never pasted into the script.

use std::collections::BTreeMap;
use std::process::Stdio;

use tracing::debug;

/// Starts the opener for `url` in an environment of `env` over the daemon's
/// (the terminal's variables: its browser choice, its display).
pub fn open(url: &str, env: &BTreeMap<String, String>) -> Result<(), String> {
    let pick =
        |name: &str| env.get(name).cloned().or_else(|| std::env::var(name).ok()).filter(|v| !v.trim().is_empty());
    let command = pick("MCP_GATEWAY_BROWSER")
        .or_else(|| pick("BROWSER"))
        .unwrap_or_else(|| if cfg!(target_os = "macos") { "open" } else { "xdg-open" }.to_string());
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{command} \"$1\""))
        .arg("mcp-gateway-browser")
        .arg(url)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the browser ({command}): {e}"))?;
    tokio::spawn(async move {
        let status = child.wait().await;
        debug!(?status, "the browser command exited");
    });
    Ok(())
}
