//! The token store: one JSON file per credential under `<home>/oauth/`
//! (directory 0700, files 0600), each written to a temporary file in the same
//! directory, synced, then renamed over the old one, so a reader (or a crash)
//! sees the old credential or the new one, never half of either.
//!
//! A file's name is the SHA-256 of the server's URL and the credential
//! sharing key; the record inside is stamped with the resource and issuer it
//! was issued for, and is used only while those still hold.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::OAuthError;
use super::discovery::ServerMetadata;
use super::flow::Client;

/// The record format; a file of another version is ignored (log in again).
const FORMAT: u32 = 1;

/// The tokens of one credential. Never printed.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
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
        }
    }
}

/// What was last read or written per key (`None`: no file), so a request
/// to a remote server does not read the disk: the daemon is the only writer.
type Cache = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Option<Credential>>>>;

/// Where credentials live. Clones share one cache.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    cache: Cache,
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Store { dir, cache: Cache::default() }
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

    fn read(&self, key: &str) -> Result<Option<Credential>, OAuthError> {
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

    /// Writes `credential` under `key` atomically, 0600 in a 0700 directory.
    pub fn save(&self, key: &str, credential: &Credential) -> Result<(), OAuthError> {
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
        crate::lock(&self.cache).insert(key.to_string(), Some(credential.clone()));
        Ok(())
    }

    /// Forgets the credential under `key`; `true` when there was one.
    pub fn remove(&self, key: &str) -> Result<bool, OAuthError> {
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

    #[test]
    fn debug_shows_no_token() {
        let c = credential("very-secret");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
