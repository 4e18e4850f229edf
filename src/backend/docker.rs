//! Docker backends: a stdio MCP server inside `docker run -i --rm`.
//!
//! The environment goes in by name (`-e NAME`, the value in the docker CLI's
//! own environment), never as a value on a command line other users can read in
//! `ps`. Each container has a unique name so the gateway can `docker stop` it:
//! killing the CLI alone does not stop a container.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Identity, Resolved};

/// The docker CLI to run: `$MCP_GATEWAY_DOCKER`, else `docker` on PATH.
pub fn program() -> String {
    std::env::var("MCP_GATEWAY_DOCKER").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "docker".to_string())
}

/// A container name no other instance (of this or another daemon) uses.
pub fn container_name(identity: &Identity) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "mcp-gateway-{}-{}-{}-{n}",
        identity.server,
        &identity.instance[..identity.instance.len().min(8)],
        std::process::id()
    )
}

/// The `docker run` command line for a resolved docker server.
pub fn run_command(resolved: &Resolved, name: &str) -> Resolved {
    let mut args: Vec<String> = ["run", "-i", "--rm", "--name", name].iter().map(|s| s.to_string()).collect();
    for (var, _) in &resolved.env {
        args.extend(["-e".to_string(), var.clone()]);
    }
    for volume in &resolved.volumes {
        args.extend(["-v".to_string(), volume.clone()]);
    }
    if let Some(network) = &resolved.network {
        args.extend(["--network".to_string(), network.clone()]);
    }
    args.push(resolved.image.clone().unwrap_or_default());
    args.extend(resolved.args.iter().cloned());
    Resolved {
        url: None,
        headers: Vec::new(),
        command: program(),
        args,
        env: resolved.env.clone(),
        cwd: resolved.cwd.clone(),
        image: resolved.image.clone(),
        volumes: resolved.volumes.clone(),
        network: resolved.network.clone(),
        oauth: resolved.oauth.clone(),
    }
}

/// Stops a container by name (bounded: a hung docker CLI must not hold shutdown).
pub async fn stop(name: &str, grace: Duration) {
    let secs = grace.as_secs().max(1).to_string();
    let stop = tokio::process::Command::new(program())
        .args(["stop", "--time", &secs, name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(grace + Duration::from_secs(5), stop).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::debug!(container = name, %status, "docker stop did not succeed (already gone?)"),
        Ok(Err(e)) => tracing::warn!(container = name, error = %e, "cannot run docker stop"),
        Err(_) => tracing::warn!(container = name, "docker stop did not finish in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SharingKey;

    #[test]
    fn the_command_line_passes_environment_by_name_only() {
        let resolved = Resolved {
            url: None,
            headers: Vec::new(),
            command: String::new(),
            args: vec!["--flag".into()],
            env: vec![("TOKEN".into(), "s3cret".into())],
            cwd: None,
            image: Some("example/tool:1".into()),
            volumes: vec!["/data:/data:ro".into()],
            network: Some("none".into()),
            oauth: None,
        };
        let identity = Identity {
            server: "tool".into(),
            key: SharingKey("global".into()),
            instance: "0123456789abcdef".into(),
            lane: 0,
        };
        let name = container_name(&identity);
        assert!(name.starts_with("mcp-gateway-tool-01234567-"), "{name}");
        let run = run_command(&resolved, &name);
        assert_eq!(
            run.args,
            [
                "run",
                "-i",
                "--rm",
                "--name",
                &name,
                "-e",
                "TOKEN",
                "-v",
                "/data:/data:ro",
                "--network",
                "none",
                "example/tool:1",
                "--flag"
            ]
        );
        assert!(!run.args.iter().any(|a| a.contains("s3cret")));
        assert_eq!(run.env, resolved.env, "the value reaches docker through its environment");
        assert_ne!(container_name(&identity), name);
    }
}
