//! A login asked of a client through URL-mode elicitation (MCP 2025-11-25):
//! a tool call that needs a login (or a step-up: a login asking for more
//! scopes), from a client that declared `elicitation.url`, gets a `-32042`
//! URLElicitationRequiredError carrying the authorization URL, while the
//! daemon runs the login itself (its loopback callback, the code exchange)
//! in a task of its own. When the login is done, every session given that
//! URL hears `notifications/elicitation/complete` and can call again. This
//! is the spec's own use of URL mode ("URL Mode Elicitation for OAuth
//! Flows"); the callback is on loopback, so whoever completes it is on this
//! machine.
//!
//! A 2026-07-28 client has no completion notification: the session asks it
//! the URL elicitation within the call (an `input_required` round), waits for
//! the login (see [`ElicitedLogin::finished`]), and sends the call again.
//!
//! One login per credential: a second session that needs the same login while
//! one is under way is given the same URL and told when it is done. Any other
//! client (no `elicitation.url`) keeps the tool error that names
//! `mcp-gateway auth login SERVER`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Gateway, SessionInfo};
use crate::lock;
use crate::sink::SessionSink;

/// How long a session waits for the login to produce its authorization URL
/// (discovery and registration at the authorization server).
const URL_WITHIN: Duration = Duration::from_secs(30);

/// The handshake-era revisions whose clients know URL-mode elicitation (all
/// of the 2026-07-28 era's do).
const URL_MODE_REVISIONS: [&str; 1] = ["2025-11-25"];

/// A login under way; the handshake-era sessions in `waiting` are notified
/// when it is done.
struct Pending {
    url: String,
    elicitation_id: String,
    waiting: Vec<SessionSink>,
    /// `Some(logged_in)` once the login ended.
    done: tokio::sync::watch::Sender<Option<bool>>,
}

/// The URL elicitation a session hands its client, and the login's outcome.
pub struct ElicitedLogin {
    /// `{mode: "url", elicitationId, url, message}`.
    pub elicitation: Value,
    done: tokio::sync::watch::Receiver<Option<bool>>,
}

impl ElicitedLogin {
    /// Whether the login succeeded, waiting for it at most `within`.
    pub async fn finished(mut self, within: Duration) -> bool {
        let ended = tokio::time::timeout(within, self.done.wait_for(Option::is_some)).await;
        matches!(ended, Ok(Ok(outcome)) if *outcome == Some(true))
    }
}

impl Pending {
    fn login(&self, server: &str, scope: Option<&str>) -> ElicitedLogin {
        ElicitedLogin { elicitation: self.elicitation(server, scope), done: self.done.subscribe() }
    }

    fn elicitation(&self, server: &str, scope: Option<&str>) -> Value {
        let message = match scope {
            Some(scope) => format!(
                "Log in to `{server}` again in your browser to grant the scopes it asks for (`{scope}`); \
                 then call the tool again."
            ),
            None => {
                format!("Log in to `{server}` in your browser so the gateway can call it; then call the tool again.")
            }
        };
        json!({ "mode": "url", "elicitationId": self.elicitation_id, "url": self.url, "message": message })
    }
}

/// Per credential: the login elicited for it, if one is under way.
#[derive(Default)]
pub(super) struct ElicitedLogins(Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Pending>>>>>);

/// Whether `session`'s client can be sent to a URL to log in.
fn opens_urls(session: &SessionInfo) -> bool {
    let revision = session.protocol_version.as_deref().unwrap_or_default();
    session.capabilities.pointer("/elicitation/url").is_some_and(Value::is_object)
        && (URL_MODE_REVISIONS.contains(&revision) || crate::era::MODERN_VERSIONS.contains(&revision))
}

impl Gateway {
    /// The URL-mode elicitation that logs `session`'s person in to `server`
    /// (starting the login, or joining the one under way); `None` when the
    /// client cannot take one or the login could not start (the caller then
    /// answers with the tool error naming the command). `scope`: a step-up's
    /// (the login asks for every scope the server wanted since the last
    /// one), for the message.
    pub async fn elicit_login(
        self: &Arc<Self>,
        server: &str,
        session: &SessionInfo,
        scope: Option<&str>,
    ) -> Option<ElicitedLogin> {
        let current = self.session(session.id)?;
        if !opens_urls(&current) {
            return None;
        }
        // Told of the login's end by notification (2025-11-25), or waiting
        // for it within its call (2026-07-28).
        let notified = current.protocol_version.as_deref().is_some_and(|v| URL_MODE_REVISIONS.contains(&v));
        let def = self.server_for(&current, server)?;
        let (_, resolved) = self.resolve(server, &def, &current).ok()?;
        let binding = resolved.oauth?;
        let key = binding.target.key();
        let slot = lock(&self.elicited_logins.0).entry(key).or_default().clone();
        let mut pending = slot.lock().await;
        if let Some(pending) = pending.as_mut() {
            if notified && !pending.waiting.iter().any(|s| s.id == current.id) {
                pending.waiting.push(current.sink.clone());
            }
            return Some(pending.login(server, scope));
        }
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        // Nobody waits for the URL any more: the login stops rather than
        // hold the callback for a browser that will never come.
        let open = move |url: &str| url_tx.send(url.to_string()).map_err(|_| "the session gave up".to_string());
        let (gateway, name, done) = (self.clone(), server.to_string(), slot.clone());
        tokio::spawn(async move {
            let outcome = binding.manager.login(&binding.target, open, super::commands::LOGIN_TIMEOUT).await;
            // The slot is held until the URL is handed out, so the sessions
            // told of this login are all in it by now.
            let Some(pending) = done.lock().await.take() else { return };
            match outcome {
                Ok(_) => {
                    info!(server = name, "logged in through URL elicitation");
                    gateway.after_login(&name).await;
                    pending.done.send_replace(Some(true));
                    let complete = crate::jsonrpc::notification(
                        "notifications/elicitation/complete",
                        json!({ "elicitationId": pending.elicitation_id }),
                    );
                    for sink in &pending.waiting {
                        sink.send(complete.clone());
                    }
                }
                Err(e) => {
                    pending.done.send_replace(Some(false));
                    warn!(server = name, error = %e, "the login asked of a client through URL elicitation failed")
                }
            }
        });
        let url = match tokio::time::timeout(URL_WITHIN, url_rx).await {
            Ok(Ok(url)) => url,
            // The login failed before it had a URL (another under way from
            // `auth login`, discovery failed): its task logged why.
            _ => return None,
        };
        let started = Pending {
            url,
            elicitation_id: crate::oauth::random_token(),
            waiting: notified.then(|| current.sink.clone()).into_iter().collect(),
            done: tokio::sync::watch::Sender::new(None),
        };
        let login = started.login(server, scope);
        *pending = Some(started);
        Some(login)
    }
}
