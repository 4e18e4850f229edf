//! The client-credentials grant (SEP-1046, the MCP extension
//! `io.modelcontextprotocol/oauth-client-credentials`): the gateway as a
//! machine client of a server with `grant: client_credentials`, for headless
//! boxes, CI and a team gateway's service account. Discovery is a login's
//! (the 401's challenge, protected resource metadata, authorization server
//! metadata); the token request is `grant_type=client_credentials` with the
//! RFC 8707 `resource` and the scopes a login would ask for, the client
//! authenticated with its secret (Basic or in the body, as the server
//! supports) or a `private_key_jwt` assertion. No refresh token is expected:
//! a token about to expire, or refused, is replaced by a new fetch.

use serde_json::{Value, json};
use tracing::{info, warn};
use url::Url;

use super::store::{Credential, Tokens};
use super::{Backoff, Failure, Manager, OAuthError, Target, discovery, entry, expiring, flow, lock, now, union_of};
use std::time::Instant;

impl Manager {
    /// The access token of a client-credentials server: the stored one while
    /// it is good, else a new one. While the authorization server cannot be
    /// reached, a token that has not expired yet is still used.
    pub(super) async fn client_bearer(&self, target: &Target) -> Result<String, OAuthError> {
        let stored = self.store.load(&target.key())?.and_then(|c| c.tokens);
        if let Some(tokens) = &stored
            && !expiring(tokens)
        {
            return Ok(tokens.access_token.clone());
        }
        match self.client_token(target, None, false).await {
            Err(OAuthError::Unreachable(_))
                if stored.as_ref().is_some_and(|t| t.expires_at.is_some_and(|at| at > now())) =>
            {
                Ok(stored.map(|t| t.access_token).unwrap_or_default())
            }
            answer => answer,
        }
    }

    /// A token for `target` fetched with its client credentials, one fetch per
    /// credential at a time: a caller that waited finds the new token. `sent`
    /// is a token the server refused (a 401): it is replaced, and discovery is
    /// done again (the server may have moved); `force` fetches whatever is
    /// stored (`auth login`).
    pub(super) async fn client_token(
        &self,
        target: &Target,
        sent: Option<&str>,
        force: bool,
    ) -> Result<String, OAuthError> {
        let key = target.key();
        let _one = entry(&self.refreshing, &key).lock_owned().await;
        let stored = self.store.load(&key)?;
        if !force
            && let Some(tokens) = stored.as_ref().and_then(|c| c.tokens.as_ref())
            && sent.is_none_or(|s| s != tokens.access_token)
            && !expiring(tokens)
        {
            return Ok(tokens.access_token.clone());
        }
        if !force {
            self.check_backoff(target, &key)?;
            self.check_refusal(target, &key)?;
        }
        let answer = self.fetch_client_token(target, stored, force || sent.is_some()).await;
        // Whoever hears it (a call's error, `auth login`, `doctor`) hears
        // which keys of which server to check; never their values.
        let answer = answer.map_err(|e| match e {
            OAuthError::Credentials(why) | OAuthError::LoginRequired(why) => OAuthError::Credentials(format!(
                "{why}: check {} of server `{}` in the gateway config (and the .env its ${{VAR}}s come from)",
                config_keys(target),
                target.server
            )),
            other => other,
        });
        match &answer {
            Ok(_) => {
                lock(&self.failures).remove(&key);
                lock(&self.challenged).remove(&key);
            }
            Err(e) => {
                warn!(server = %target.server, error = %e, "fetching a token with the client credentials failed");
                let mut failures = lock(&self.failures);
                // The same settings refused again: a longer pause.
                let previous =
                    failures.get(&key).and_then(|f| f.refused.as_ref()).filter(|(s, _)| *s == target.settings);
                let refused = matches!(e, OAuthError::Credentials(_))
                    .then(|| (target.settings.clone(), Backoff::after(previous.map(|(_, b)| *b), Instant::now())));
                failures.insert(key.clone(), Failure { why: e.to_string(), refused });
            }
        }
        self.note_backoff(target, key, &answer);
        answer
    }

    /// Discovery (when nothing is stored, or `rediscover`: the server
    /// refused a token and may have moved to another authorization server;
    /// a stored credential's metadata is used when that discovery fails),
    /// the client checked against the server's metadata, the token request;
    /// the new token is stored before it is returned.
    async fn fetch_client_token(
        &self,
        target: &Target,
        stored: Option<Credential>,
        rediscover: bool,
    ) -> Result<String, OAuthError> {
        let wanted = stored.as_ref().and_then(|c| c.wanted_scope.clone());
        let found = match &stored {
            Some(_) if !rediscover => None,
            _ => match self.discover(target).await {
                Ok(found) => Some(found),
                Err(e) if stored.is_some() => {
                    warn!(server = %target.server, error = %e, "discovery failed; using the authorization server found before");
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let (metadata, resource, base_scope) = match (found, stored) {
            (Some(found), _) => (found.metadata, found.resource, found.scope),
            (None, Some(c)) => (c.metadata, c.resource, c.asked_scope),
            (None, None) => return Err(OAuthError::Discovery("nothing was discovered".into())),
        };
        let endpoint = Url::parse(&metadata.token_endpoint)
            .map_err(|e| OAuthError::Discovery(format!("the token endpoint is not a URL: {e}")))?;
        discovery::check_transport(&endpoint, "the token endpoint")?;
        let client = flow::client_credentials_client(&metadata, &target.settings)?;
        // The config's scopes, else the challenge's (or the metadata's), with
        // those a 403 asked for since (step-up).
        let scope = match &target.settings.scopes {
            Some(scopes) => union_of(&[Some(&scopes.join(" ")), wanted.as_deref()]),
            None => union_of(&[base_scope.as_deref(), wanted.as_deref()]),
        };
        let assertion = target.settings.client_assertion(&client.client_id, &metadata.issuer)?;
        let grant = flow::Grant::ClientCredentials { scope: scope.as_deref(), assertion: assertion.as_deref() };
        let answer = flow::token(&self.http, &metadata, &client, grant, resource.as_deref()).await?;
        let access = answer.access_token.clone();
        // The secret stays in the config: the store keeps the client's id and method only.
        let client = flow::Client { client_secret: None, ..client };
        let mut credential = Credential::new(crate::redact::redacted_url(&target.url), resource, metadata, client);
        credential.tokens = Some(Tokens {
            access_token: answer.access_token,
            // Nothing to refresh with: a new token is fetched instead.
            refresh_token: None,
            expires_at: answer.expires_in.map(|s| now() + s),
            lifetime: answer.expires_in,
            scope: answer.scope.or(scope.clone()),
        });
        credential.asked_scope = scope;
        self.store.save(&target.key(), &credential)?;
        info!(server = %target.server, issuer = %credential.issuer, "fetched an access token with the client credentials");
        Ok(access)
    }

    /// What a token-less request to the server and the metadata it points
    /// at say about its authorization server.
    async fn discover(&self, target: &Target) -> Result<discovery::Discovered, OAuthError> {
        let url = Url::parse(&target.url).map_err(|e| OAuthError::Discovery(format!("the server's url: {e}")))?;
        let challenge = self.probe(&url).await?;
        discovery::discover(&self.http, &url, &challenge).await
    }

    /// `auth status` of a client-credentials server: `logged_in` with a good
    /// token, `no_token` when the next call fetches one, `credentials_refused`
    /// or `error` (with why) when the last fetch failed. Never a secret.
    pub(super) fn client_status(&self, target: &Target, credential: Option<&Credential>) -> Value {
        let failure = lock(&self.failures).get(&target.key()).cloned();
        let tokens = credential.and_then(|c| c.tokens.as_ref());
        let good = tokens.is_some_and(|t| t.expires_at.is_none_or(|at| at > now()));
        let state = match &failure {
            Some(f) if f.refused.is_some() => "credentials_refused",
            Some(_) if !good => "error",
            _ if good => "logged_in",
            _ => "no_token",
        };
        json!({
            "server": target.server,
            "state": state,
            "issuer": credential.map(|c| c.issuer.clone()),
            "resource": credential.and_then(|c| c.resource.clone()),
            "registration": flow::RegistrationKind::ClientCredentials,
            "scopes": tokens.and_then(|t| t.scope.clone()),
            "expires_in_secs": tokens.and_then(|t| t.expires_at).map(|at| at.saturating_sub(now())),
            "refreshable": false,
            "wanted_scopes": credential.and_then(|c| c.wanted_scope.clone()),
            "tokens_in": credential.map(|c| if c.in_keyring { "keyring" } else { "files" }),
            "error": failure.map(|f| f.why),
        })
    }

    /// Why the last token fetch of a client-credentials server failed, for
    /// `status` and `doctor`: `None` when it did not (or the server logs in
    /// with a person).
    pub fn credential_problem(&self, target: &Target) -> Option<Value> {
        if !target.settings.client_credentials {
            return None;
        }
        let failure = lock(&self.failures).get(&target.key()).cloned()?;
        let state = if failure.refused.is_some() { "credentials_refused" } else { "error" };
        Some(json!({ "server": target.server, "state": state, "error": failure.why }))
    }

    /// Why a client-credentials server refused a call (a final 401): the last
    /// fetch's failure, else that the fetched token itself was refused.
    pub fn client_refusal(&self, target: &Target) -> String {
        match lock(&self.failures).get(&target.key()) {
            Some(failure) => failure.why.clone(),
            None => format!(
                "the server refused the token the gateway fetched with its client credentials (401): check that \
                 the client {} may use this server",
                config_keys(target)
            ),
        }
    }
}

/// The config keys that hold a client-credentials client's identity.
fn config_keys(target: &Target) -> String {
    let secret = target.settings.private_key.as_ref().map_or("oauth.client_secret", |k| k.config_key());
    format!("`oauth.client_id` and `{secret}`")
}
