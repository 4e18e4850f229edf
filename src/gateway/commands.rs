//! What the command line asks of a running daemon besides its status:
//! `mcp-gateway restart SERVER`, `mcp-gateway logs [SERVER]` and `mcp-gateway
//! auth login|status|logout`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::info;

use super::Gateway;

impl Gateway {
    /// Stops every instance of `server`; the next call starts a fresh one, with
    /// backoff and the circuit breaker reset. Calls in flight on them fail
    /// with an error that says the server was stopped.
    pub async fn restart_server(self: &Arc<Self>, server: &str) -> Result<usize, String> {
        let config = self.config();
        let running = self.pool.running_all().iter().any(|b| b.server == server);
        if !config.servers.contains_key(server) && !running {
            return Err(no_such_server(server, &config));
        }
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let stopped = self.pool.restart_server(server, grace).await;
        info!(server, stopped, "restart requested: instances stopped, the next call starts a new one");
        Ok(stopped)
    }

    /// The stderr of every instance (of `server`, or all) that is running or
    /// exited and not yet replaced, each as `{instance, server, key, pid,
    /// running, exit, lines, next}`. `since` maps an instance
    /// id to the `next` number a previous answer gave, so a follower gets only
    /// new lines.
    pub fn backend_logs(&self, server: Option<&str>, since: Option<&Value>) -> Result<Value, String> {
        let config = self.config();
        let mut backends = self.pool.instances();
        if let Some(server) = server {
            backends.retain(|b| b.server == server);
            if backends.is_empty() && !config.servers.contains_key(server) {
                return Err(no_such_server(server, &config));
            }
        }
        backends.sort_by(|a, b| (&a.server, &a.key.0).cmp(&(&b.server, &b.key.0)));
        let rows: Vec<Value> = backends
            .iter()
            .map(|b| {
                let id = format!("{}:{}:{}", b.server, b.key.0, b.identity.instance);
                let from = since.and_then(|s| s.get(&id)).and_then(Value::as_u64).unwrap_or(0);
                let (lines, next) = b.stderr_since(from);
                json!({
                    "instance": id, "server": b.server, "key": b.key.0, "pid": b.pid,
                    "running": b.is_alive(), "exit": b.exit_status(), "lines": lines, "next": next,
                })
            })
            .collect();
        Ok(json!({ "backends": rows }))
    }
}

/// How long a login waits for the browser to come back.
pub(super) const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// Who asks for an `auth` command: the command line's directory and
/// environment, which pick the profile, the workspace and the `${VAR}`s of
/// the server's definition, as they would for a session started there.
pub struct Asker<'a> {
    pub cwd: Option<&'a std::path::Path>,
    pub env: crate::preamble::ClientEnv,
}

impl Gateway {
    /// The OAuth credential of `server` as a session of `asker` would use it.
    fn oauth_binding(&self, server: &str, asker: &Asker<'_>) -> Result<crate::oauth::Binding, String> {
        let context = self.session_context(asker.cwd, None)?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let session = super::SessionInfo::new(crate::sink::SessionSink::new(0, tx), context, None, asker.env.clone());
        let config = self.config();
        let Some(def) = self.server_for(&session, server) else { return Err(no_such_server(server, &config)) };
        if def.url.is_none() {
            return Err(format!("`{server}` is not a remote server (`url:`); only remote servers log in with OAuth"));
        }
        let (_, resolved) = self.resolve(server, &def, &session).map_err(|e| e.to_string())?;
        resolved.oauth.ok_or_else(|| {
            format!("`{server}` sends a static `Authorization` header (`headers:`); it does not log in with OAuth")
        })
    }

    /// Lists `servers` as a session of `asker` would see them (starting each
    /// that has no listing under its current definition), so the catalog on
    /// disk is warm before the first client attaches (`servers add` and
    /// `import`: in the daemon when one runs, else in the command's own
    /// process). Per server: how many tools it lists, or why it could
    /// not be listed (it is then listed on its first use, as always).
    pub async fn prefetch(self: &Arc<Self>, servers: &[String], asker: &Asker<'_>) -> Result<Value, String> {
        let context = self.session_context(asker.cwd, None)?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut session =
            super::SessionInfo::new(crate::sink::SessionSink::new(0, tx), context, None, asker.env.clone());
        session.client_name = Some("mcp-gateway prefetch".into());
        let config = self.config();
        let (session, config) = (&session, &config);
        let listed = servers.iter().map(|name| async move {
            let Some(def) = self.server_for(session, name) else {
                return serde_json::json!({ "server": name, "error": no_such_server(name, config) });
            };
            match self.listing(name, &def, session).await {
                Ok(listing) => serde_json::json!({ "server": name, "tools": listing.tools.len() }),
                Err(e) => serde_json::json!({ "server": name, "error": e.to_string() }),
            }
        });
        Ok(Value::Array(futures_util::future::join_all(listed).await))
    }

    /// `auth login SERVER`: the whole login in the daemon, the browser opened
    /// with the asker's environment; the server's instances restart so the
    /// next call uses the new token.
    /// The authorization URL also goes to `show` (the command line prints
    /// it); `browser: false` opens none (`--no-browser`).
    pub async fn auth_login(
        self: &Arc<Self>,
        server: &str,
        asker: &Asker<'_>,
        show: tokio::sync::mpsc::UnboundedSender<String>,
        browser: bool,
    ) -> Result<Value, String> {
        let binding = self.oauth_binding(server, asker)?;
        let env = asker.env.0.clone();
        let open = |url: &str| {
            let _ = show.send(url.to_string());
            if browser { crate::oauth::open(url, &env) } else { Ok(()) }
        };
        let status = binding
            .manager
            .login(&binding.target, open, LOGIN_TIMEOUT)
            .await
            .map_err(|e| format!("logging in to `{server}`: {e}"))?;
        self.after_login(server).await;
        Ok(status)
    }

    /// A login to `server` succeeded: its instances restart so the next call
    /// uses the new token, and catalogs built while the server refused are
    /// rebuilt, sessions told to list again (its tools are there now).
    pub(super) async fn after_login(self: &Arc<Self>, server: &str) {
        let grace = Duration::from_secs(self.config().shutdown_grace_secs);
        self.pool.restart_server(server, grace).await;
        self.lists_changed();
    }

    /// `auth status [SERVER]`: each remote server's login (never a token).
    pub fn auth_status(&self, server: Option<&str>, asker: &Asker<'_>) -> Result<Value, String> {
        let config = self.config();
        let names: Vec<String> = match server {
            Some(server) => vec![server.to_string()],
            None => config.servers.iter().filter(|(_, s)| s.url.is_some()).map(|(n, _)| n.clone()).collect(),
        };
        let mut rows = Vec::new();
        for name in names {
            match self.oauth_binding(&name, asker) {
                Ok(binding) => rows.push(binding.manager.status(&binding.target)),
                Err(e) if server.is_some() => return Err(e),
                Err(e) => rows.push(json!({ "server": name, "state": "not_oauth", "note": e })),
            }
        }
        Ok(json!({ "servers": rows }))
    }

    /// `auth logout SERVER`: revokes the tokens where the authorization
    /// server offers it (a failure is reported, not fatal), then forgets the
    /// credential.
    pub async fn auth_logout(self: &Arc<Self>, server: &str, asker: &Asker<'_>) -> Result<Value, String> {
        let binding = self.oauth_binding(server, asker)?;
        let logout = binding.manager.logout(&binding.target).await.map_err(|e| e.to_string())?;
        let grace = Duration::from_secs(self.config().shutdown_grace_secs);
        self.pool.restart_server(server, grace).await;
        Ok(json!({
            "forgotten": logout.forgotten,
            "revoked": logout.revoked.as_ref().map(Result::is_ok),
            "revocation_error": logout.revoked.and_then(Result::err),
        }))
    }

    /// The remote servers that need a person to log in, as the daemon's own
    /// context sees them (no workspace, no terminal's environment): for
    /// `status` and `doctor`. Never token material.
    pub fn logins_needed(&self) -> Vec<Value> {
        self.each_remote_binding(|b| b.manager.needs_login(&b.target))
    }

    /// The client-credentials servers whose last token fetch failed (a
    /// refused secret or key, an authorization server that does not offer
    /// the grant), as the daemon's own context sees them: for `status` and
    /// `doctor`. Never a secret.
    pub fn credential_problems(&self) -> Vec<Value> {
        self.each_remote_binding(|b| b.manager.credential_problem(&b.target))
    }

    /// What `pick` says of each remote server's credential, as the daemon's
    /// own context sees it (no workspace, no terminal's environment).
    fn each_remote_binding(&self, pick: impl Fn(&crate::oauth::Binding) -> Option<Value>) -> Vec<Value> {
        let config = self.config();
        let asker = Asker { cwd: None, env: crate::preamble::ClientEnv::default() };
        config
            .servers
            .iter()
            .filter(|(_, s)| s.url.is_some())
            .filter_map(|(name, _)| self.oauth_binding(name, &asker).ok())
            .filter_map(|b| pick(&b))
            .collect()
    }

    /// Why a call to `server` from `session` cannot be made until a person
    /// logs in, with the command to run; `None` when no login is missing.
    pub fn login_needed(&self, server: &str, session: &super::SessionInfo) -> Option<String> {
        let def = self.server_for(session, server)?;
        def.url.as_ref()?;
        let (_, resolved) = self.resolve(server, &def, session).ok()?;
        let binding = resolved.oauth?;
        let row = binding.manager.needs_login(&binding.target)?;
        let why = match row["state"].as_str() {
            Some("expired") => "its access token expired and no refresh token was issued",
            Some("login_required") => "the authorization server refused the refresh token",
            _ => "nobody has logged in to it",
        };
        Some(format!(
            "server `{server}` needs a login ({why}): run `{}` in a terminal, then call the tool again",
            crate::oauth::login_command(server)
        ))
    }
}

fn no_such_server(server: &str, config: &crate::config::Config) -> String {
    let known: Vec<&String> = config.servers.keys().collect();
    format!("no server named `{server}` is configured or running (the config defines {known:?})")
}
