//! The token store: one JSON file per credential under `<home>/oauth/`
//! (directory 0700, files 0600), each written to a temporary file in the same
//! directory, synced, then renamed over the old one, so a reader (or a crash)
//! sees the old credential or the new one, never half of either.
//!
//! A file's name is the SHA-256 of the server's URL and the credential
//! sharing key; the record inside is stamped with the resource and issuer it
//! was issued for, and is used only while those still hold.
//!
//! With `oauth_store: keyring` ([`TokenStore::Keyring`]) the token material
//! (access and refresh token, the client's secret) goes to the OS keyring
//! (`os_keyring`) and the file keeps the rest, marked `in_keyring`. Every
//! save bumps the record's `generation`, and the keyring's copy carries it:
//! the keyring is written first and the file second, so a crash between the
//! two leaves the keyring one generation ahead, and a load takes the
//! keyring's tokens whenever they are as new as the file's (a rotated
//! refresh token is never traded back for the spent one the file held).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::OAuthError;
use super::discovery::ServerMetadata;
use super::flow::Client;
use super::os_keyring::{self, Secrets};

/// The record format; a file of another version is ignored (log in again).
const FORMAT: u32 = 1;

/// The tokens of one credential. Never printed.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Tokens {
    /// Empty in a file whose tokens are in the keyring.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The `expires_in` the token was issued with, in seconds: how early it
    /// is refreshed depends on it (a 60-second token is not refreshed a
    /// minute ahead, which would be on every use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One server's credential: how it was obtained and the tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    pub format: u32,
    /// The server's URL, redacted (a `?token=` stays out of the file).
    pub server_url: String,
    /// The RFC 8707 resource the tokens are for (`None`: a 2025-03-26 server).
    pub resource: Option<String>,
    pub issuer: String,
    pub metadata: ServerMetadata,
    pub client: Client,
    /// `None` after `invalid_grant`: the registration is kept, a login is needed.
    pub tokens: Option<Tokens>,
    /// The scopes the server asked for on a 403 `insufficient_scope` (with
    /// those granted before): the next login asks for them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wanted_scope: Option<String>,
    /// The scopes the last login asked for: a 403 that wants no more than
    /// these is not worth another login (the retry limit of step-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_scope: Option<String>,
    /// One more on every save; the keyring's copy of the tokens carries it too.
    #[serde(default)]
    pub generation: u64,
    /// The token material is in the OS keyring, not in this file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_keyring: bool,
}

impl Credential {
    pub fn new(server_url: String, resource: Option<String>, metadata: ServerMetadata, client: Client) -> Self {
        Credential {
            format: FORMAT,
            server_url,
            resource,
            issuer: metadata.issuer.clone(),
            metadata,
            client,
            tokens: None,
            wanted_scope: None,
            asked_scope: None,
            generation: 0,
            in_keyring: false,
        }
    }

    /// The token material, for the keyring.
    fn secrets(&self, generation: u64) -> Secrets {
        Secrets {
            generation,
            client_id: self.client.client_id.clone(),
            access_token: self.tokens.as_ref().map(|t| t.access_token.clone()),
            refresh_token: self.tokens.as_ref().and_then(|t| t.refresh_token.clone()),
            client_secret: self.client.client_secret.clone(),
        }
    }

    /// The record without its token material, for a file beside the keyring.
    fn without_secrets(&self) -> Credential {
        let mut record = self.clone();
        if let Some(tokens) = &mut record.tokens {
            tokens.access_token.clear();
            tokens.refresh_token = None;
        }
        record.client.client_secret = None;
        record.in_keyring = true;
        record
    }

    /// The record with the keyring's token material: the tokens exist when
    /// the keyring has an access token (their expiry and scope are the
    /// file's, one save old after a crash: refreshed early, no harm).
    fn with_secrets(mut self, secrets: Secrets) -> Credential {
        self.generation = self.generation.max(secrets.generation);
        self.client.client_secret = secrets.client_secret;
        self.tokens = secrets.access_token.map(|access_token| Tokens {
            access_token,
            refresh_token: secrets.refresh_token,
            ..self.tokens.take().unwrap_or_default()
        });
        self
    }
}

/// Where token material is kept (`oauth_store:` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenStore {
    #[default]
    Files,
    Keyring,
}

/// What was last read or written per key (`None`: no file), so a request
/// to a remote server does not read the disk: the daemon is the only writer.
type Cache = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Option<Credential>>>>;

/// Where credentials live. Clones share one cache and one [`TokenStore`].
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    cache: Cache,
    tokens: std::sync::Arc<std::sync::Mutex<TokenStore>>,
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Store { dir, cache: Cache::default(), tokens: Default::default() }
    }

    /// Where the next save puts token material.
    pub fn set_token_store(&self, place: TokenStore) {
        *crate::lock(&self.tokens) = place;
    }

    pub fn token_store(&self) -> TokenStore {
        *crate::lock(&self.tokens)
    }

    /// The keyring entry of a credential: the store's directory names the
    /// gateway home, so two homes (or two tests) never share an entry.
    fn entry_name(&self, key: &str) -> String {
        format!("{}:{key}", self.dir.display())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name of a credential: hex SHA-256 of the URL and sharing key.
    pub fn key(server_url: &str, credential_key: &str) -> String {
        let mut hash = Sha256::new();
        hash.update(server_url.as_bytes());
        hash.update([0x1f]);
        hash.update(credential_key.as_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The credential under `key`, if there is a readable one of this format.
    pub fn load(&self, key: &str) -> Result<Option<Credential>, OAuthError> {
        if let Some(known) = crate::lock(&self.cache).get(key) {
            return Ok(known.clone());
        }
        let loaded = self.read(key)?;
        crate::lock(&self.cache).insert(key.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The file's record with the keyring's token material, when the file
    /// says they are there or the keyring is where they go now (a save that
    /// moved them there may have been cut before the file was written).
    fn read(&self, key: &str) -> Result<Option<Credential>, OAuthError> {
        let Some(record) = self.read_file(key)? else { return Ok(None) };
        if !record.in_keyring && self.token_store() == TokenStore::Files {
            return Ok(Some(record));
        }
        let secrets = os_keyring::read(&self.entry_name(key)).map_err(|e| {
            OAuthError::Store(format!(
                "the tokens of {} are kept in the OS keyring (`oauth_store: keyring`), which cannot be read: {e}",
                record.server_url
            ))
        })?;
        let current = secrets.filter(|s| s.generation >= record.generation && s.client_id == record.client.client_id);
        Ok(Some(match current {
            Some(secrets) => record.with_secrets(secrets),
            None if record.in_keyring => {
                tracing::warn!(
                    server_url = %record.server_url,
                    "the OS keyring no longer holds this credential's tokens (the kernel keyring forgets them at \
                     reboot); a login is needed"
                );
                let mut record = record;
                record.tokens = None;
                record.client.client_secret = None;
                record
            }
            // A file that holds its own tokens, newer than any the keyring has.
            None => record,
        }))
    }

    fn read_file(&self, key: &str) -> Result<Option<Credential>, OAuthError> {
        let path = self.path(key);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(OAuthError::Store(format!("{}: {e}", path.display()))),
        };
        match serde_json::from_slice::<Credential>(&text) {
            Ok(c) if c.format == FORMAT => Ok(Some(c)),
            Ok(_) => Ok(None),
            // serde's message may quote the file: it holds tokens, so say only where.
            Err(e) => Err(OAuthError::Store(format!(
                "{} is not a credential this gateway wrote (line {}, column {}); `mcp-gateway auth logout` removes it",
                path.display(),
                e.line(),
                e.column()
            ))),
        }
    }

    /// Writes `credential` under `key`: its token material to the keyring
    /// first when that is where it goes, then the file, atomically, 0600 in
    /// a 0700 directory. Tokens that leave the keyring are deleted from it
    /// once the file holds them. A save that fails still holds the
    /// credential in memory (see below) and says why.
    pub fn save(&self, key: &str, credential: &Credential) -> Result<(), OAuthError> {
        let previous = match self.load(key) {
            Ok(previous) => previous,
            Err(_) => self.read_file(key).ok().flatten(),
        };
        let generation = previous.as_ref().map_or(0, |p| p.generation.max(credential.generation)) + 1;
        let was_in_keyring = previous.as_ref().is_some_and(|p| p.in_keyring);
        let mut saved = credential.clone();
        saved.generation = generation;
        let written = match self.token_store() {
            TokenStore::Keyring => os_keyring::write(&self.entry_name(key), &saved.secrets(generation))
                .map_err(|e| {
                    OAuthError::Store(format!(
                        "`oauth_store: keyring`: cannot keep the tokens of {} in the OS keyring, and they are kept \
                         nowhere else: {e}",
                        saved.server_url
                    ))
                })
                .and_then(|()| {
                    saved.in_keyring = true;
                    self.write_file(key, &saved.without_secrets())
                }),
            TokenStore::Files => {
                saved.in_keyring = false;
                self.write_file(key, &saved)
            }
        };
        if let Err(e) = written {
            // Not on disk, but not lost: a rotated refresh token (the old
            // one is spent) stays in memory for this daemon's next refresh,
            // and the next save tries again.
            saved.in_keyring = was_in_keyring;
            crate::lock(&self.cache).insert(key.to_string(), Some(saved));
            return Err(e);
        }
        if was_in_keyring
            && !saved.in_keyring
            && let Err(e) = os_keyring::delete(&self.entry_name(key))
        {
            // The file's generation is ahead: what is left there is never read.
            tracing::warn!(server_url = %saved.server_url, "the old tokens stay in the OS keyring: {e}");
        }
        crate::lock(&self.cache).insert(key.to_string(), Some(saved));
        Ok(())
    }

    fn write_file(&self, key: &str, credential: &Credential) -> Result<(), OAuthError> {
        let fail = |what: &Path, e: std::io::Error| OAuthError::Store(format!("{}: {e}", what.display()));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(|e| fail(&self.dir, e))?;
        // An existing directory made by someone else's umask: tighten it.
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| fail(&self.dir, e))?;
        let body = serde_json::to_vec_pretty(credential).map_err(|e| OAuthError::Store(e.to_string()))?;
        let temp = self.dir.join(format!(".{key}.{}.tmp", super::pkce::random_token()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&temp, self.path(key))?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(fail(&self.path(key), e));
        }
        Ok(())
    }

    /// Forgets the credential under `key`; `true` when there was one. Its
    /// tokens leave the keyring first: a crash between leaves a file that
    /// asks for a login, never a secret nobody knows is there.
    pub fn remove(&self, key: &str) -> Result<bool, OAuthError> {
        let record = self.read_file(key).ok().flatten();
        let in_keyring = record.as_ref().is_some_and(|c| c.in_keyring);
        // With the keyring chosen, an entry may be there with no file (a
        // first login cut between its two writes): it goes too.
        if (in_keyring || self.token_store() == TokenStore::Keyring)
            && let Err(e) = os_keyring::delete(&self.entry_name(key))
        {
            if record.is_some() {
                return Err(OAuthError::Store(format!(
                    "cannot delete the tokens from the OS keyring (the credential is kept): {e}"
                )));
            }
            tracing::warn!("no credential to forget, and the OS keyring cannot be asked: {e}");
        }
        crate::lock(&self.cache).insert(key.to_string(), None);
        match std::fs::remove_file(self.path(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(OAuthError::Store(format!("{}: {e}", self.path(key).display()))),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::oauth::discovery::fallback_metadata;
    use crate::oauth::flow::{AuthMethod, RegistrationKind};

    /// A dynamically registered public client, as the tests store it.
    pub(crate) fn public_client() -> Client {
        Client {
            client_id: "c".into(),
            client_secret: None,
            auth_method: AuthMethod::None,
            kind: RegistrationKind::Dynamic,
            redirect_uri: "http://127.0.0.1:9/callback".into(),
        }
    }

    pub(crate) fn credential(access: &str) -> Credential {
        let metadata = fallback_metadata(&url::Url::parse("http://localhost:1/mcp").unwrap());
        let mut c = Credential::new("http://localhost:1/mcp".into(), None, metadata, public_client());
        c.tokens = Some(Tokens {
            access_token: access.into(),
            refresh_token: Some("r".into()),
            expires_at: None,
            lifetime: None,
            scope: None,
        });
        c
    }

    #[test]
    fn files_are_private_and_replaced_whole() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().join("oauth"));
        let key = Store::key("http://localhost:1/mcp", "global");
        assert!(store.load(&key).unwrap().is_none());
        store.save(&key, &credential("one")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.path(&key)), 0o600);
        store.save(&key, &credential("two")).unwrap();
        let loaded = store.load(&key).unwrap().unwrap();
        assert_eq!(loaded.tokens.unwrap().access_token, "two");
        let from_disk = Store::new(store.dir().to_path_buf()).load(&key).unwrap().unwrap();
        assert_eq!(from_disk.tokens.unwrap().access_token, "two", "what is on disk, not only in memory");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(store.dir()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(store.remove(&key).unwrap());
        assert!(!store.remove(&key).unwrap());
    }

    #[test]
    fn a_loose_directory_is_tightened_and_a_damaged_file_is_named_not_quoted() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("oauth");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::new(dir.clone());
        let key = Store::key("u", "k");
        store.save(&key, &credential("a")).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::write(store.path(&key), b"{\"access_token\": \"secret-value\"").unwrap();
        // A store that has not seen the file (the daemon's next start).
        let error = Store::new(dir).load(&key).unwrap_err().to_string();
        assert!(!error.contains("secret-value"), "{error}");
        assert!(error.contains(&key), "{error}");
    }

    #[test]
    fn keys_separate_servers_and_sharing_keys() {
        assert_ne!(Store::key("a", "bc"), Store::key("ab", "c"));
        assert_ne!(Store::key("u", "global"), Store::key("u", "credential:x"));
        assert_eq!(Store::key("u", "k").len(), 64);
    }

    /// A confidential client's credential with every kind of secret.
    fn secret_credential(refresh: &str) -> Credential {
        let mut c = credential("access-secret");
        c.client.client_secret = Some("client-secret".into());
        if let Some(t) = &mut c.tokens {
            t.refresh_token = Some(refresh.into());
            t.expires_at = Some(4_000_000_000);
            t.scope = Some("read".into());
        }
        c
    }

    fn store_in(dir: &Path, place: TokenStore) -> Store {
        let store = Store::new(dir.join("oauth"));
        store.set_token_store(place);
        store
    }

    #[cfg(not(feature = "os-keyring"))]
    #[test]
    fn keyring_without_the_feature_is_refused_and_nothing_is_written() {
        let home = tempfile::tempdir().unwrap();
        let store = store_in(home.path(), TokenStore::Keyring);
        let key = Store::key("http://localhost:1/mcp", "global");
        let error = store.save(&key, &secret_credential("r")).unwrap_err().to_string();
        assert!(error.contains("`os-keyring` cargo feature"), "{error}");
        assert!(error.contains("kept nowhere else"), "{error}");
        assert!(!store.path(&key).exists(), "no file was written instead");
        // A rotated refresh token that could not be kept is not lost while the daemon runs.
        let kept = store.load(&key).unwrap().unwrap().tokens.unwrap();
        assert_eq!(kept.refresh_token.as_deref(), Some("r"));
    }

    #[cfg(feature = "os-keyring")]
    mod keyring {
        use super::*;

        /// A deleted keyutils key may still be found for a moment by the
        /// process that deleted it (the crate says so): poll.
        fn gone(store: &Store, key: &str) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while os_keyring::read(&store.entry_name(key)).unwrap().is_some() {
                assert!(std::time::Instant::now() < deadline, "the keyring entry is still there");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }

        #[test]
        fn keyring_holds_the_secrets_and_the_file_the_rest() {
            let home = tempfile::tempdir().unwrap();
            let store = store_in(home.path(), TokenStore::Keyring);
            let key = Store::key("http://localhost:1/mcp", "global");
            store.save(&key, &secret_credential("refresh-secret")).unwrap();
            let file = std::fs::read_to_string(store.path(&key)).unwrap();
            for secret in ["access-secret", "refresh-secret", "client-secret"] {
                assert!(!file.contains(secret), "{secret} in the file: {file}");
            }
            assert!(file.contains("\"in_keyring\": true") && file.contains("\"scope\": \"read\""), "{file}");
            // A daemon started anew, with either setting, finds it whole.
            for place in [TokenStore::Keyring, TokenStore::Files] {
                let loaded = store_in(home.path(), place).load(&key).unwrap().unwrap();
                let tokens = loaded.tokens.unwrap();
                assert_eq!(tokens.access_token, "access-secret");
                assert_eq!(tokens.refresh_token.as_deref(), Some("refresh-secret"));
                assert_eq!(tokens.expires_at, Some(4_000_000_000));
                assert_eq!(loaded.client.client_secret.as_deref(), Some("client-secret"));
            }
            assert!(store.remove(&key).unwrap());
            gone(&store, &key);
            assert!(!store.path(&key).exists());
        }

        #[test]
        fn keyring_written_but_not_the_file_keeps_the_rotated_refresh_token() {
            let home = tempfile::tempdir().unwrap();
            let store = store_in(home.path(), TokenStore::Keyring);
            let key = Store::key("http://localhost:1/mcp", "global");
            store.save(&key, &secret_credential("spent")).unwrap();
            let saved = store.load(&key).unwrap().unwrap();
            // A refresh's first write lands, then the daemon dies.
            let mut rotated = saved.clone();
            rotated.tokens.as_mut().unwrap().refresh_token = Some("rotated".into());
            os_keyring::write(&store.entry_name(&key), &rotated.secrets(saved.generation + 1)).unwrap();
            let next = store_in(home.path(), TokenStore::Keyring).load(&key).unwrap().unwrap();
            assert_eq!(next.tokens.unwrap().refresh_token.as_deref(), Some("rotated"));
            assert_eq!(next.generation, saved.generation + 1);
            store.remove(&key).unwrap();
        }

        #[test]
        fn keyring_to_files_and_back_never_revives_an_old_token() {
            let home = tempfile::tempdir().unwrap();
            let store = store_in(home.path(), TokenStore::Keyring);
            let key = Store::key("http://localhost:1/mcp", "global");
            store.save(&key, &secret_credential("one")).unwrap();
            // Switched to files: the file holds the tokens, the keyring forgets them.
            store.set_token_store(TokenStore::Files);
            store.save(&key, &secret_credential("two")).unwrap();
            assert!(std::fs::read_to_string(store.path(&key)).unwrap().contains("two"));
            gone(&store, &key);
            // A stale copy left in the keyring (a delete that failed) is older
            // than the file, and loses to it once the keyring is chosen again.
            let stale = store.load(&key).unwrap().unwrap();
            os_keyring::write(&store.entry_name(&key), &secret_credential("one").secrets(stale.generation - 1))
                .unwrap();
            let back = store_in(home.path(), TokenStore::Keyring).load(&key).unwrap().unwrap();
            assert_eq!(back.tokens.unwrap().refresh_token.as_deref(), Some("two"));
            os_keyring::delete(&store.entry_name(&key)).unwrap();
        }

        #[test]
        fn keyring_that_lost_the_tokens_asks_for_a_login() {
            let home = tempfile::tempdir().unwrap();
            let store = store_in(home.path(), TokenStore::Keyring);
            let key = Store::key("http://localhost:1/mcp", "global");
            store.save(&key, &secret_credential("r")).unwrap();
            // A reboot empties the kernel keyring.
            os_keyring::delete(&store.entry_name(&key)).unwrap();
            gone(&store, &key);
            let after = store_in(home.path(), TokenStore::Keyring).load(&key).unwrap().unwrap();
            assert!(after.tokens.is_none() && after.client.client_secret.is_none());
            assert_eq!(after.issuer, store.load(&key).unwrap().unwrap().issuer, "the rest is kept");
        }

        #[test]
        fn keyring_probe_writes_reads_and_deletes() {
            assert!(os_keyring::probe().unwrap().contains("keyring") || cfg!(target_os = "macos"));
        }
    }

    #[test]
    fn debug_shows_no_token() {
        let c = credential("very-secret");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
