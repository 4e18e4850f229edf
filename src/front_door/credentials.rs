//! Who may use the front door, and which credential each request came with.
//!
//! The configured tokens and API keys are resolved from the config *in force*
//! (with `${VAR}` from the gateway `.env` or the daemon's environment) and
//! resolved again whenever either changes, so a token removed or changed by a
//! reload stops working at once, and so do the sessions it opened.
//!
//! Every credential has a [`CredentialId`]: a keyed hash of its kind, its value
//! and what it maps to (profile, workspace). An HTTP session keeps the id of the
//! credential that opened it, never the value, and is only usable with that
//! same credential (see `session_of` in the parent module). Because the id
//! covers the mapping too, a token remapped to another workspace by a reload
//! no longer reaches the sessions it opened in the old one.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::warn;

use crate::config::{HttpAuth, TokenEntry};
use crate::credentials::Hasher;
use crate::gateway::Gateway;
use crate::lock;

/// Which configured credential authenticated a request. Two are equal when
/// their digests are; the label only names the credential in logs (its place
/// in the config, never its value).
#[derive(Clone)]
pub(super) struct CredentialId {
    digest: String,
    label: Arc<str>,
}

impl CredentialId {
    pub(super) fn new(digest: String, label: impl Into<Arc<str>>) -> Self {
        CredentialId { digest, label: label.into() }
    }

    /// How logs name this credential, e.g. `bearer_tokens[1] (profile work)`.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// The keyed hash, for keying maps by credential.
    pub(super) fn digest(&self) -> &str {
        &self.digest
    }
}

impl PartialEq for CredentialId {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq::constant_time_eq(self.digest.as_bytes(), other.digest.as_bytes())
    }
}

impl Eq for CredentialId {}

/// Only the label: the digest is of a secret, and has no use to a reader.
impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// One usable token or API key.
pub(super) struct Credential {
    secret: String,
    pub id: CredentialId,
    pub profile: Option<String>,
    pub workspace: Option<String>,
}

/// Secrets stay out of `Debug`.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The credentials in force, and what they were resolved from.
pub(super) struct Credentials {
    /// What these were resolved from: the `auth:` section and each entry's
    /// expanded value, compared on every request to notice a change.
    source: (HttpAuth, Vec<Option<String>>),
    pub bearer: Vec<Credential>,
    pub api_keys: Vec<Credential>,
    pub api_key_header: String,
    /// The loopback identity, when `localhost: true`.
    pub localhost: Option<CredentialId>,
}

impl Credentials {
    /// Whether a session opened with `id` may still be used by someone.
    pub(super) fn still_configured(&self, id: &CredentialId) -> bool {
        self.bearer.iter().chain(&self.api_keys).map(|c| &c.id).chain(&self.localhost).any(|known| known == id)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bearer.is_empty() && self.api_keys.is_empty() && self.localhost.is_none()
    }
}

/// Compares a presented secret with every configured one, in constant time
/// per comparison and without stopping at the first match.
pub(super) fn matching<'a>(entries: &'a [Credential], presented: &str) -> Option<&'a Credential> {
    let mut found = None;
    for entry in entries {
        if constant_time_eq::constant_time_eq(entry.secret.as_bytes(), presented.as_bytes()) {
            found = Some(entry);
        }
    }
    found
}

/// Keeps [`Credentials`] in step with the config and the gateway `.env`.
pub(super) struct Authenticator {
    /// Keyed under a key made at daemon start: a [`CredentialId`] says nothing
    /// about the value to anyone who reads it (a core dump, a debugger).
    hasher: Hasher,
    current: Mutex<Option<Arc<Credentials>>>,
}

/// What [`Authenticator::current`] found.
pub(super) struct Current {
    pub credentials: Arc<Credentials>,
    /// The credentials differ from the ones the previous call saw (a reload).
    pub changed: bool,
}

impl Authenticator {
    pub(super) fn new() -> Self {
        Authenticator { hasher: Hasher::new(), current: Mutex::new(None) }
    }

    /// The credentials in force now: the last ones, unless the config's
    /// `auth:` section or a value its `${VAR}`s expand to has changed. (With no
    /// `http:` section left after a reload, nothing is accepted.)
    pub(super) fn current(&self, gateway: &Gateway) -> Current {
        let auth = gateway.config().http.as_ref().map(|http| http.auth.clone()).unwrap_or_default();
        let expanded: Vec<Option<String>> = auth
            .bearer_tokens
            .iter()
            .chain(&auth.api_keys)
            .map(|entry| gateway.expand_gateway_value(entry.token()).filter(|token| !token.is_empty()))
            .collect();
        let source = (auth, expanded);
        let mut current = lock(&self.current);
        if let Some(credentials) = current.as_ref()
            && credentials.source == source
        {
            return Current { credentials: credentials.clone(), changed: false };
        }
        let changed = current.is_some();
        let credentials = Arc::new(self.resolve(source));
        *current = Some(credentials.clone());
        Current { credentials, changed }
    }

    fn resolve(&self, source: (HttpAuth, Vec<Option<String>>)) -> Credentials {
        let (auth, expanded) = &source;
        let mut values = expanded.iter();
        let mut resolve = |entries: &[TokenEntry], kind: &str| -> Vec<Credential> {
            entries
                .iter()
                .enumerate()
                .filter_map(|(index, entry)| {
                    let Some(secret) = values.next().cloned().flatten() else {
                        warn!(
                            "the HTTP credential {kind}[{index}] is empty or names an unset variable; it is disabled"
                        );
                        return None;
                    };
                    let (profile, workspace) =
                        (entry.profile().map(str::to_string), entry.workspace().map(str::to_string));
                    let mut label = format!("{kind}[{index}]");
                    if let Some(profile) = &profile {
                        label.push_str(&format!(" (profile {profile})"));
                    }
                    if let Some(workspace) = &workspace {
                        label.push_str(&format!(" (workspace {workspace})"));
                    }
                    let mapping = serde_json::to_string(&(&profile, &workspace)).unwrap_or_default();
                    let digest = self.hasher.digest(["http-credential", kind, &secret, &mapping]);
                    Some(Credential { secret, id: CredentialId::new(digest, label), profile, workspace })
                })
                .collect()
        };
        let bearer = resolve(&auth.bearer_tokens, "bearer_tokens");
        let api_keys = resolve(&auth.api_keys, "api_keys");
        let localhost = auth
            .localhost
            .then(|| CredentialId::new(self.hasher.digest(["http-credential", "localhost"]), "localhost trust"));
        let api_key_header = auth.api_key_header.clone();
        let credentials = Credentials { source, bearer, api_keys, api_key_header, localhost };
        if credentials.is_empty() {
            warn!("the HTTP front door has no credentials configured: every request will be refused");
        }
        credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(authenticator: &Authenticator, secret: &str, profile: Option<&str>) -> Credential {
        let mapping = serde_json::to_string(&(profile, None::<&str>)).unwrap_or_default();
        let digest = authenticator.hasher.digest(["http-credential", "bearer_tokens", secret, &mapping]);
        Credential {
            secret: secret.into(),
            id: CredentialId::new(digest, "test"),
            profile: profile.map(str::to_string),
            workspace: None,
        }
    }

    #[test]
    fn token_matching_checks_every_entry() {
        let authenticator = Authenticator::new();
        let entries = vec![credential(&authenticator, "alpha", None), credential(&authenticator, "beta", Some("p"))];
        assert!(matching(&entries, "alpha").is_some());
        assert_eq!(matching(&entries, "beta").and_then(|c| c.profile.as_deref()), Some("p"));
        assert!(matching(&entries, "alph").is_none());
        assert!(matching(&entries, "").is_none());
    }

    #[test]
    fn a_credential_id_names_the_entry_and_never_shows_the_value() {
        let authenticator = Authenticator::new();
        let resolved = authenticator.resolve((
            HttpAuth {
                bearer_tokens: vec![
                    TokenEntry::Plain("first-secret".into()),
                    TokenEntry::Mapped { token: "second-secret".into(), profile: Some("work".into()), workspace: None },
                ],
                ..HttpAuth::default()
            },
            vec![Some("first-secret".into()), Some("second-secret".into())],
        ));
        let second = &resolved.bearer[1].id;
        assert_eq!(second.label(), "bearer_tokens[1] (profile work)");
        let shown = format!("{second:?} {:?}", resolved.bearer[1]);
        assert!(!shown.contains("second-secret") && !shown.contains(second.digest()), "{shown}");
        assert_ne!(resolved.bearer[0].id, *second);
    }

    #[test]
    fn the_same_token_mapped_elsewhere_is_another_credential() {
        let authenticator = Authenticator::new();
        let (plain, mapped) = (credential(&authenticator, "tok", None), credential(&authenticator, "tok", Some("p")));
        assert_ne!(plain.id, mapped.id, "a session opened under one mapping is not reachable under another");
        assert_eq!(plain.id, credential(&authenticator, "tok", None).id);
    }
}
