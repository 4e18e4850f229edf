//! OAuth for remote servers: the daemon as the one OAuth client of each
//! server that answers 401, for every terminal at once.
//!
//! - [`discovery`]: the 401's challenge, RFC 9728 protected resource metadata,
//!   RFC 8414 / OpenID authorization server metadata, the 2025-03-26 fallback.
//! - [`flow`]: registration (pre-registered, Client ID Metadata Document,
//!   dynamic), the authorization request, RFC 9207 `iss`, the token endpoint.
//! - [`assertion`]: the `private_key_jwt` client assertion (RFC 7523).
//! - [`pkce`]: S256 verifiers and `state`.
//! - [`callback`]: the loopback listener a login's redirect comes back to.
//! - [`store`]: the credentials on disk (0700/0600, atomic writes).
//! - `os_keyring`: where the store puts token material with `oauth_store:
//!   keyring` (the `os-keyring` cargo feature).
//! - `browser`: opening the authorization URL.
//!
//! This is an own module on reqwest rather than the `oauth2` crate: `oauth2`
//! covers PKCE and the token request only (no metadata discovery, no dynamic
//! registration or metadata documents, `resource` only as an extra
//! parameter), targets reqwest 0.12, and would pull second copies of sha2,
//! rand, base64 and thiserror into the tree; the token requests it would
//! replace are a form body each.
//!
//! The [`Manager`] owns the store and serializes what must not run twice:
//! one refresh per credential at a time (a caller that waited finds the new
//! token and uses it), one login per credential. A refresh runs in a task of
//! its own, so a caller that gives up cannot lose a rotated refresh token; the
//! new tokens are on disk before anyone uses them.
//!
//! A server with `grant: client_credentials` (the MCP extension
//! `io.modelcontextprotocol/oauth-client-credentials`, SEP-1046) has no
//! person behind it: the manager fetches a token with the client's own
//! credentials when there is none, when it is about to expire, and on a 401,
//! one fetch per credential at a time, and never asks anyone to log in. A
//! refused credential is said, naming the server and the config keys to
//! check, in `auth status`, `status` and `doctor`.

mod assertion;
mod browser;
mod callback;
mod client_credentials;
mod discovery;
mod flow;
mod os_keyring;
mod pkce;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing::{info, warn};
use url::Url;

pub use assertion::PrivateKey;
pub use browser::open;
pub use discovery::Challenge;
pub use flow::Settings;
pub use pkce::random_token;
pub use store::TokenStore;

use crate::lock;
use flow::Grant;
use store::{Credential, Store, Tokens};

/// An access token this close to its expiry is refreshed before it is used;
/// one whose whole lifetime is short, a tenth of its lifetime ahead (a
/// 60-second token refreshed a minute ahead would be refreshed on every use).
const REFRESH_AHEAD: Duration = Duration::from_secs(60);

/// The pause after the first refresh that could not reach the authorization
/// server (or met a 5xx); it doubles with each failure in a row, up to
/// [`BACKOFF_CAP`], and a success resets it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Refreshes of one credential that failed in a row for want of a reachable
/// authorization server, and when the next may be tried.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

impl Backoff {
    /// The backoff after one more failure.
    fn after(previous: Option<Backoff>, now: Instant) -> Backoff {
        let failures = previous.map_or(1, |b| b.failures.saturating_add(1));
        let pause = BACKOFF_FIRST.saturating_mul(1 << (failures - 1).min(16)).min(BACKOFF_CAP);
        Backoff { failures, until: now + pause }
    }
}

/// What `auth logout` did: whether a credential was forgotten, and how its
/// revocation went (`None`: nothing to revoke, or no `revocation_endpoint`).
#[derive(Debug, Clone, PartialEq)]
pub struct Logout {
    pub forgotten: bool,
    pub revoked: Option<Result<(), String>>,
}

/// A fixed redirect port claimed by a login; released when the login ends.
struct RedirectHeld {
    held: Arc<Mutex<HashMap<String, String>>>,
    port: String,
}

impl Drop for RedirectHeld {
    fn drop(&mut self) {
        lock(&self.held).remove(&self.port);
    }
}

/// Why an OAuth step failed. No variant carries a token or a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    #[error("discovering how to log in: {0}")]
    Discovery(String),
    #[error("registering the gateway with the authorization server: {0}")]
    Registration(String),
    #[error("the login's callback: {0}")]
    Callback(String),
    #[error("{0}")]
    Token(String),
    /// The authorization server could not be reached, or failed (5xx): the
    /// tokens are kept.
    #[error("{0}")]
    Unreachable(String),
    #[error("the token store: {0}")]
    Store(String),
    /// No usable token: a person has to log in.
    #[error("{0}")]
    LoginRequired(String),
    #[error("{0}")]
    Busy(String),
    /// The client's own credentials were refused or cannot be used (a
    /// client-credentials client): a config to fix, not a login.
    #[error("{0}")]
    Credentials(String),
}

/// What a server's 403 `insufficient_scope` comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum StepUp {
    /// A login asking for `scope` (every scope granted or asked for since)
    /// may be granted what the server wants.
    Login { scope: String },
    /// The last login asked for every scope the server wants already: the
    /// authorization server granted fewer, or the server refuses what it
    /// granted. Why, naming the scopes, for the tool error; no login is
    /// started for them again (the retry limit).
    Exhausted(String),
}

/// Whether the OS keyring can keep tokens now (a probe entry is written,
/// read back and deleted): the store's name, or what failed.
pub fn keyring_probe() -> Result<&'static str, String> {
    os_keyring::probe()
}

/// The command that logs a person in to `server`.
pub fn login_command(server: &str) -> String {
    format!("mcp-gateway auth login {server}")
}

/// One server's credential: which server, at which URL, for which credential
/// sharing key, with which client settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub server: String,
    pub url: String,
    pub credential_key: String,
    pub settings: Settings,
}

impl Target {
    /// Which credential this is, in the store and in every per-credential map.
    pub fn key(&self) -> String {
        Store::key(&self.url, &self.credential_key)
    }
}

/// A remote server's credential as its transport sees it.
#[derive(Debug, Clone)]
pub struct Binding {
    pub manager: Arc<Manager>,
    pub target: Target,
}

/// The OAuth client of every remote server (see the module doc).
pub struct Manager {
    store: Store,
    http: reqwest::Client,
    /// Per credential: held while it is refreshed.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per credential: held while a login is under way.
    logging_in: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The fixed redirect URIs (`oauth.redirect_uri`) a login listens on now,
    /// and for which server: a second login on one of them is told whose.
    fixed_redirects: Arc<Mutex<HashMap<String, String>>>,
    /// Per credential: refreshes that failed for want of a reachable
    /// authorization server (see [`Backoff`]).
    backoff: Mutex<HashMap<String, Backoff>>,
    /// Credentials whose server refused a request for want of a login (a
    /// final 401): the servers `status` and `doctor` say need a login, even
    /// when nobody has logged in yet.
    challenged: Mutex<HashSet<String>>,
    /// Per client-credentials credential: why the last token fetch failed
    /// (never a secret), until one succeeds: for `auth status`, `status`,
    /// `doctor` and the error of a call the server refused.
    failures: Mutex<HashMap<String, Failure>>,
}

/// Why a client-credentials token fetch failed.
#[derive(Debug, Clone)]
struct Failure {
    why: String,
    /// The credentials were refused or unusable (a config to fix): the
    /// settings refused, and the pause before a fetch with the same ones is
    /// sent again (see `Manager::check_refusal`). `None`: another failure.
    refused: Option<(Settings, Backoff)>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("store", &self.store.dir()).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn expiring(tokens: &Tokens) -> bool {
    let ahead = tokens.lifetime.map_or(REFRESH_AHEAD.as_secs(), |l| (l / 10).min(REFRESH_AHEAD.as_secs()));
    tokens.expires_at.is_some_and(|at| at <= now() + ahead)
}

fn tokens_of(answer: flow::TokenResponse, previous_refresh: Option<String>, asked_scope: Option<&str>) -> Tokens {
    Tokens {
        access_token: answer.access_token,
        // A server that rotates sends a new one; one that does not keeps the old valid.
        refresh_token: answer.refresh_token.or(previous_refresh),
        expires_at: answer.expires_in.map(|s| now() + s),
        lifetime: answer.expires_in,
        scope: answer.scope.or(asked_scope.map(str::to_string)),
    }
}

/// The scopes of every list, each once, in the order first seen; `None` when
/// there are none.
fn union_of(lists: &[Option<&str>]) -> Option<String> {
    let mut all: Vec<&str> = Vec::new();
    for scope in lists.iter().flatten().flat_map(|l| l.split_whitespace()) {
        if !all.contains(&scope) {
            all.push(scope);
        }
    }
    (!all.is_empty()).then(|| all.join(" "))
}

fn entry(map: &Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>, key: &str) -> Arc<tokio::sync::Mutex<()>> {
    lock(map).entry(key.to_string()).or_default().clone()
}

impl Manager {
    /// A manager whose credentials live in `dir` (`<home>/oauth`).
    pub fn new(dir: std::path::PathBuf) -> Manager {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Manager {
            store: Store::new(dir),
            http,
            refreshing: Mutex::default(),
            logging_in: Mutex::default(),
            fixed_redirects: Arc::default(),
            backoff: Mutex::default(),
            challenged: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Where token material goes from now on (`oauth_store:`); a credential
    /// is moved on its next save. Keyring trouble is logged here and said
    /// again by every save that needs it: nothing is kept elsewhere instead.
    pub fn set_token_store(&self, place: TokenStore) {
        if place == TokenStore::Keyring
            && self.store.token_store() != place
            && let Err(e) = os_keyring::probe()
        {
            tracing::error!("`oauth_store: keyring`: the OS keyring cannot be used, so logins will fail: {e}");
        }
        self.store.set_token_store(place);
    }

    /// The access token to send to `target`, refreshed first when it is about
    /// to expire; `None` when nobody has logged in.
    pub async fn bearer(&self, target: &Target) -> Result<Option<String>, OAuthError> {
        if target.settings.client_credentials {
            return self.client_bearer(target).await.map(Some);
        }
        let Some(tokens) = self.store.load(&target.key())?.and_then(|c| c.tokens) else { return Ok(None) };
        // Without a refresh token an old access token is still sent: the
        // server says whether it is still good (a 401 makes it a login).
        if !expiring(&tokens) || tokens.refresh_token.is_none() {
            return Ok(Some(tokens.access_token));
        }
        match self.refresh(target, Some(&tokens.access_token)).await {
            // The authorization server is down but the token has not expired
            // yet: use it while it lasts.
            Err(OAuthError::Unreachable(_)) if tokens.expires_at.is_some_and(|at| at > now()) => {
                Ok(Some(tokens.access_token))
            }
            answer => answer.map(Some),
        }
    }

    /// The server refused `sent`: a fresh token (someone else's refresh, or
    /// one made now). One refresh per credential at a time.
    pub async fn refresh(&self, target: &Target, sent: Option<&str>) -> Result<String, OAuthError> {
        if target.settings.client_credentials {
            return self.client_token(target, sent, false).await;
        }
        let key = target.key();
        let guard = entry(&self.refreshing, &key).lock_owned().await;
        let mut credential =
            self.store.load(&key)?.ok_or_else(|| self.login_required(target, "nobody has logged in"))?;
        let Some(tokens) = credential.tokens.clone() else {
            return Err(self.login_required(target, "the last refresh was refused"));
        };
        if sent.is_none_or(|s| s != tokens.access_token) && !expiring(&tokens) {
            return Ok(tokens.access_token);
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            // The server refused the token and there is no other: forget it,
            // so `auth status` says a login is needed.
            credential.tokens = None;
            self.store.save(&key, &credential)?;
            return Err(
                self.login_required(target, "the server refused the access token and no refresh token was issued")
            );
        };
        self.check_backoff(target, &key)?;
        let (http, store, server) = (self.http.clone(), self.store.clone(), target.server.clone());
        let login = login_command(&target.server);
        let (task_key, key) = (key.clone(), key);
        // An owned task: a caller that gives up does not cancel a refresh
        // whose rotated token must reach the disk.
        let task = tokio::spawn(async move {
            let _held = guard;
            let grant = Grant::Refresh { refresh_token: &refresh_token };
            let answer =
                flow::token(&http, &credential.metadata, &credential.client, grant, credential.resource.as_deref())
                    .await;
            match answer {
                Ok(answer) => {
                    let fresh = tokens_of(answer, Some(refresh_token.clone()), tokens.scope.as_deref());
                    let access = fresh.access_token.clone();
                    credential.tokens = Some(fresh);
                    store.save(&task_key, &credential)?;
                    info!(server, "refreshed the access token");
                    Ok(access)
                }
                Err(OAuthError::LoginRequired(why)) => {
                    warn!(server, "the refresh token was refused; a login is needed");
                    credential.tokens = None;
                    store.save(&task_key, &credential)?;
                    Err(OAuthError::LoginRequired(format!("{why}: log in again with `{login}`")))
                }
                Err(e) => Err(e),
            }
        });
        let answer = task.await.map_err(|e| OAuthError::Token(format!("the refresh stopped: {e}")))?;
        self.note_backoff(target, key, &answer);
        answer
    }

    /// A flapping authorization server gets one refresh per pause, not one
    /// per call: until the pause ends, callers hear why and when.
    fn check_backoff(&self, target: &Target, key: &str) -> Result<(), OAuthError> {
        if let Some(backoff) = lock(&self.backoff).get(key).copied()
            && let Some(left) = backoff.until.checked_duration_since(Instant::now())
        {
            return Err(OAuthError::Unreachable(format!(
                "the authorization server of `{}` failed {} refresh{} in a row; the next is tried in {} s",
                target.server,
                backoff.failures,
                if backoff.failures == 1 { "" } else { "es" },
                left.as_secs_f64().ceil() as u64
            )));
        }
        Ok(())
    }

    /// A token fetch with the client settings the authorization server
    /// refused last is not sent again before its pause is over: every call
    /// would ask again in vain, and a server may lock out a client that keeps
    /// trying a wrong secret. Changed settings (the config fixed) are tried
    /// at once, and so is `auth login`.
    fn check_refusal(&self, target: &Target, key: &str) -> Result<(), OAuthError> {
        let failures = lock(&self.failures);
        let Some(Failure { why, refused: Some((settings, pause)) }) = failures.get(key) else { return Ok(()) };
        match pause.until.checked_duration_since(Instant::now()) {
            Some(left) if *settings == target.settings => Err(OAuthError::Credentials(format!(
                "{why} (refused {} time{} in a row; asked again in {} s, or at once when the config changes)",
                pause.failures,
                if pause.failures == 1 { "" } else { "s" },
                left.as_secs_f64().ceil() as u64
            ))),
            _ => Ok(()),
        }
    }

    /// Starts or lengthens the pause after a refresh the authorization
    /// server could not answer; ends it after any other outcome.
    fn note_backoff(&self, target: &Target, key: String, answer: &Result<String, OAuthError>) {
        let mut backoff = lock(&self.backoff);
        match answer {
            Err(OAuthError::Unreachable(why)) => {
                let next = Backoff::after(backoff.get(&key).copied(), Instant::now());
                warn!(server = %target.server, failures = next.failures, why, "refresh failed; the tokens are kept");
                backoff.insert(key, next);
            }
            _ => {
                backoff.remove(&key);
            }
        }
    }

    /// The server refused a call for want of scopes (403
    /// `insufficient_scope`, asking for `scope`): the next login asks for
    /// those and every scope granted before (SEP-2350).
    pub fn need_scopes(&self, target: &Target, scope: Option<&str>) -> Result<(), OAuthError> {
        let key = target.key();
        let Some(mut credential) = self.store.load(&key)? else { return Ok(()) };
        let granted = credential.tokens.as_ref().and_then(|t| t.scope.clone());
        let wanted = union_of(&[granted.as_deref(), credential.wanted_scope.as_deref(), scope]);
        if wanted != credential.wanted_scope {
            credential.wanted_scope = wanted;
            self.store.save(&key, &credential)?;
        }
        Ok(())
    }

    /// What the scopes a server asked for (recorded by [`Manager::need_scopes`])
    /// come to: `None` when it asked for none since the last login.
    pub fn step_up(&self, target: &Target) -> Option<StepUp> {
        let credential = self.store.load(&target.key()).ok().flatten()?;
        let wanted = credential.wanted_scope?;
        let asked = credential.asked_scope.unwrap_or_default();
        if !wanted.split_whitespace().all(|s| asked.split_whitespace().any(|a| a == s)) {
            return Some(StepUp::Login { scope: wanted });
        }
        // The last login asked for all of them already: asking again would
        // be answered the same way, and a client sent to log in again and
        // again would loop.
        let granted = credential.tokens.and_then(|t| t.scope).unwrap_or_default();
        let missing: Vec<&str> =
            wanted.split_whitespace().filter(|s| !granted.split_whitespace().any(|g| g == *s)).collect();
        let command = login_command(&target.server);
        let granted = if granted.trim().is_empty() { "no scopes".to_string() } else { format!("`{granted}`") };
        Some(StepUp::Exhausted(if missing.is_empty() {
            format!(
                "the server refuses for want of scopes (403 insufficient_scope) and asks for `{wanted}`, which the \
                 last login asked for and was granted ({granted}); the gateway does not log in again for them: \
                 check what the server requires, then run `{command}` to try once more"
            )
        } else {
            format!(
                "the server asks for scopes `{wanted}` (403 insufficient_scope); the last login asked for them, but \
                 the authorization server granted {granted}, not `{}` (it may grant fewer scopes than asked), so \
                 the gateway does not log in again for them: once they can be granted, run `{command}`",
                missing.join(" ")
            )
        }))
    }

    fn login_required(&self, target: &Target, why: &str) -> OAuthError {
        OAuthError::LoginRequired(format!(
            "server `{}` needs a login ({why}): run `{}`",
            target.server,
            login_command(&target.server)
        ))
    }

    /// What a request without a token hears: 401 with its challenge.
    async fn probe(&self, url: &Url) -> Result<Challenge, OAuthError> {
        let send = || {
            self.http
                .post(url.clone())
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": "mcp-gateway-auth-probe", "method": "ping"}))
                .send()
        };
        // A kept-alive connection the server closed meanwhile (an earlier
        // login's) fails the first send: the probe is a ping, sent again once.
        let response = match send().await {
            Err(e) if e.is_request() || e.is_connect() => send().await,
            sent => sent,
        }
        .map_err(|e| OAuthError::Discovery(crate::redact::http_error(&e.without_url())))?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(Challenge::default());
        }
        let header = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
        Ok(Challenge::parse(header))
    }

    /// Logs in to `target`: discovery, registration, the browser (`open` is
    /// given the authorization URL), the loopback callback (at most
    /// `timeout`), the code exchange. Returns the new status.
    pub async fn login(
        &self,
        target: &Target,
        open: impl FnOnce(&str) -> Result<(), String>,
        timeout: Duration,
    ) -> Result<Value, OAuthError> {
        if target.settings.client_credentials {
            // No person and no browser: `auth login` fetches a token now.
            self.client_token(target, None, true).await?;
            return Ok(self.status(target));
        }
        let key = target.key();
        let slot = entry(&self.logging_in, &key);
        let Ok(_one) = slot.try_lock() else {
            return Err(OAuthError::Busy(format!(
                "a login to `{}` is already under way (finish it at the URL it opened, or wait for it to \
                 time out: a login waits {} minute(s) at most)",
                target.server,
                timeout.as_secs().div_ceil(60)
            )));
        };
        let url = Url::parse(&target.url).map_err(|e| OAuthError::Discovery(format!("the server's url: {e}")))?;
        let challenge = self.probe(&url).await?;
        let found = discovery::discover(&self.http, &url, &challenge).await?;
        for endpoint in [&found.metadata.authorization_endpoint, &found.metadata.token_endpoint] {
            let parsed =
                Url::parse(endpoint).map_err(|e| OAuthError::Discovery(format!("an endpoint is not a URL: {e}")))?;
            discovery::check_transport(&parsed, "the endpoint")?;
        }
        let state = pkce::random_token();
        let pkce = pkce::Pkce::new();
        let fixed = target.settings.redirect_uri.as_deref();
        let _fixed = fixed.map(|uri| self.hold_redirect(uri, &target.server)).transpose()?;
        let callback = callback::Callback::bind(state.clone(), fixed, &target.server).await?;
        let client = flow::register(&self.http, &found.metadata, &target.settings, &callback.redirect_uri).await?;
        // The config's scopes, else the challenge's (or the metadata's), with
        // those a 403 asked for since the last login (step-up, SEP-2350).
        let wanted = self.store.load(&key).ok().flatten().and_then(|c| c.wanted_scope);
        let scope = match &target.settings.scopes {
            Some(scopes) => union_of(&[Some(&scopes.join(" ")), wanted.as_deref()]),
            None => union_of(&[found.scope.as_deref(), wanted.as_deref()]),
        };
        let authorize = flow::authorization_url(
            &found.metadata,
            &client,
            &pkce.challenge,
            &state,
            scope.as_deref(),
            found.resource.as_deref(),
        )?;
        info!(server = %target.server, issuer = %found.metadata.issuer, registration = ?client.kind, "login: waiting for the browser");
        open(authorize.as_str()).map_err(OAuthError::Callback)?;
        let redirect = tokio::time::timeout(timeout, callback.wait()).await.map_err(|_| {
            OAuthError::Callback(format!("no answer from the browser within {} s", timeout.as_secs()))
        })??;
        flow::check_iss(&found.metadata, redirect.iss.as_deref())?;
        let grant = Grant::Code { code: &redirect.code, verifier: &pkce.verifier };
        let answer = flow::token(&self.http, &found.metadata, &client, grant, found.resource.as_deref()).await?;
        let mut credential =
            Credential::new(crate::redact::redacted_url(&target.url), found.resource, found.metadata, client);
        credential.tokens = Some(tokens_of(answer, None, scope.as_deref()));
        credential.asked_scope = scope;
        self.store.save(&key, &credential)?;
        lock(&self.challenged).remove(&key);
        lock(&self.backoff).remove(&key);
        info!(server = %target.server, "logged in");
        Ok(self.status(target))
    }

    /// Claims a fixed redirect URI for a login to `server` until the guard
    /// is dropped. Two servers registered with one redirect URI cannot log in
    /// at once (one port, one listener): the second hears which login holds
    /// it, rather than waiting for a login that may take minutes.
    fn hold_redirect(&self, uri: &str, server: &str) -> Result<RedirectHeld, OAuthError> {
        let mut held = lock(&self.fixed_redirects);
        // One port, whatever the path or the loopback name.
        let port = Url::parse(uri).ok().and_then(|u| u.port()).map_or_else(|| uri.to_string(), |p| p.to_string());
        if let Some(other) = held.get(&port) {
            return Err(OAuthError::Busy(format!(
                "the login to `{server}` listens on port {port} (its `oauth.redirect_uri`), which the login to \
                 `{other}` under way holds: finish that one first, or wait for it to time out"
            )));
        }
        held.insert(port.clone(), server.to_string());
        Ok(RedirectHeld { held: self.fixed_redirects.clone(), port })
    }

    /// `auth status` of one server: never token material.
    pub fn status(&self, target: &Target) -> Value {
        let credential = match self.store.load(&target.key()) {
            Ok(c) => c,
            Err(e) => return json!({ "server": target.server, "state": "error", "error": e.to_string() }),
        };
        if target.settings.client_credentials {
            return self.client_status(target, credential.as_ref());
        }
        let Some(credential) = credential else {
            return json!({ "server": target.server, "state": "logged_out", "login": login_command(&target.server) });
        };
        let tokens = credential.tokens.as_ref();
        let state = match tokens {
            None => "login_required",
            Some(t) if t.expires_at.is_some_and(|at| at <= now()) && t.refresh_token.is_none() => "expired",
            Some(_) => "logged_in",
        };
        json!({
            "server": target.server,
            "state": state,
            "issuer": credential.issuer,
            "resource": credential.resource,
            "registration": credential.client.kind,
            "scopes": tokens.and_then(|t| t.scope.clone()),
            "expires_in_secs": tokens.and_then(|t| t.expires_at).map(|at| at.saturating_sub(now())),
            "refreshable": tokens.is_some_and(|t| t.refresh_token.is_some()),
            // The server asked for more (403 insufficient_scope) since the
            // last login: the next login asks for these.
            "wanted_scopes": credential.wanted_scope,
            // Where the token material is: `keyring` (`oauth_store: keyring`) or `files`.
            "tokens_in": if credential.in_keyring { "keyring" } else { "files" },
        })
    }

    /// The server refused a request for want of a login (a final 401:
    /// `refused`), or answered one again after refusing.
    pub fn challenged(&self, target: &Target, refused: bool) {
        if refused {
            lock(&self.challenged).insert(target.key());
        } else {
            lock(&self.challenged).remove(&target.key());
        }
    }

    /// When `target` needs a person to log in: its state (`logged_out`,
    /// `expired`, `login_required`) and the command, for `status` and
    /// `doctor`. A server nobody logged in to counts only once it has asked
    /// for a login (a 401): a public remote server needs none.
    pub fn needs_login(&self, target: &Target) -> Option<Value> {
        // A machine client never waits for a person (see `credential_problem`).
        if target.settings.client_credentials {
            return None;
        }
        let status = self.status(target);
        let state = status["state"].as_str()?;
        let asked = lock(&self.challenged).contains(&target.key());
        let needed = matches!(state, "expired" | "login_required") || (state == "logged_out" && asked);
        needed.then(|| json!({ "server": target.server, "state": state, "login": login_command(&target.server) }))
    }

    /// Logs out of `target`: revokes its tokens where the authorization server
    /// offers RFC 7009 (the refresh token first, then the access token), then
    /// forgets the credential whatever the revocation's outcome.
    pub async fn logout(&self, target: &Target) -> Result<Logout, OAuthError> {
        let key = target.key();
        // A refresh under way would save its rotated tokens after the
        // credential is gone and bring it back: wait for it, and hold off
        // the next until the credential is forgotten.
        let _no_refresh = entry(&self.refreshing, &key).lock_owned().await;
        let credential = self.store.load(&key).ok().flatten();
        let revoked = match &credential {
            Some(c) => self.revoke(c, target).await,
            None => None,
        };
        if let Some(Err(why)) = &revoked {
            warn!(server = %target.server, why, "revocation failed; the tokens are forgotten anyway");
        }
        let forgotten = self.store.remove(&key)?;
        lock(&self.backoff).remove(&key);
        lock(&self.failures).remove(&key);
        // A server one was logged in to needs a login once logged out:
        // `status` and `doctor` say so now, not after its next refusal.
        if forgotten {
            lock(&self.challenged).insert(key);
        }
        Ok(Logout { forgotten, revoked })
    }

    /// RFC 7009 revocation of a credential's tokens; `None` when there is
    /// nothing to revoke or nowhere to.
    async fn revoke(&self, credential: &Credential, target: &Target) -> Option<Result<(), String>> {
        let endpoint = credential.metadata.revocation_endpoint.as_deref()?;
        // A client-credentials client's secret is the config's, not the store's.
        let client = if target.settings.client_credentials {
            flow::client_credentials_client(&credential.metadata, &target.settings).ok()?
        } else {
            credential.client.clone()
        };
        let tokens = credential.tokens.as_ref()?;
        let checked = Url::parse(endpoint)
            .map_err(|e| OAuthError::Discovery(format!("the revocation endpoint is not a URL: {e}")))
            .and_then(|url| discovery::check_transport(&url, "the revocation endpoint"));
        if let Err(e) = checked {
            return Some(Err(e.to_string()));
        }
        let mut failures = Vec::new();
        let each = [
            (tokens.refresh_token.as_deref(), flow::TokenKind::Refresh),
            (Some(tokens.access_token.as_str()), flow::TokenKind::Access),
        ];
        for (token, kind) in each {
            let Some(token) = token else { continue };
            // A `private_key_jwt` client proves itself as at the token
            // endpoint, with a fresh assertion for each request.
            let revoked = async {
                let assertion = target.settings.client_assertion(&client.client_id, &credential.metadata.issuer)?;
                flow::revoke(&self.http, endpoint, &client, assertion.as_deref(), token, kind).await
            }
            .await;
            if let Err(e) = revoked {
                let name = match kind {
                    flow::TokenKind::Refresh => "the refresh token",
                    flow::TokenKind::Access => "the access token",
                };
                failures.push(format!("{name}: {e}"));
            }
        }
        Some(if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) })
    }
}

#[cfg(test)]
mod tests;
