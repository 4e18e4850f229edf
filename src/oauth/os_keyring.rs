//! The OS keyring, where a credential's token material goes with
//! `oauth_store: keyring` (a build with the `os-keyring` cargo feature): the
//! kernel keyring (keyutils) on Linux, the Keychain on macOS, through the
//! `keyring` crate. One entry per credential holds its [`Secrets`] as one
//! JSON value, so a save replaces all of them at once.
//!
//! Linux uses keyutils rather than the Secret Service (GNOME Keyring,
//! KWallet): it is a system call, so it needs no D-Bus session (a daemon
//! started by systemd or over SSH has none), no system library and none of
//! the ~50 crates the pure-Rust D-Bus client (zbus) adds. What it keeps
//! lasts until reboot (and a few days unused: the persistent keyring's
//! expiry); a credential whose tokens are gone asks for a login, as after
//! `invalid_grant`.
//!
//! Without the feature (or on another platform) every call says so: nothing
//! falls back to a place the user did not choose.

use serde::{Deserialize, Serialize};

/// The `service` of every entry; the `user` names the credential (see
/// `Store::entry_name`).
#[cfg_attr(not(all(feature = "os-keyring", any(target_os = "linux", target_os = "macos"))), allow(dead_code))]
const SERVICE: &str = "mcp-gateway";

/// One credential's token material, as kept in its keyring entry.
/// `generation` and `client_id` tie it to the file record it belongs to (see
/// `Store::save`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Secrets {
    pub generation: u64,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("generation", &self.generation)
            .field("client_id", &self.client_id)
            .field("access_token", &self.access_token.is_some())
            .field("refresh_token", &self.refresh_token.is_some())
            .field("client_secret", &self.client_secret.is_some())
            .finish()
    }
}

#[cfg(all(feature = "os-keyring", any(target_os = "linux", target_os = "macos")))]
mod native {
    use super::{SERVICE, Secrets};
    use keyring::credential::CredentialPersistence;

    /// What the store is, for errors and `doctor`.
    pub const NAME: &str =
        if cfg!(target_os = "linux") { "the kernel keyring (keyutils)" } else { "the macOS Keychain" };

    /// On Linux, an entry kept in the user's persistent keyring itself.
    /// keyring's own keyutils entries add the key to the calling thread's
    /// session keyring and link it into the persistent one: another session
    /// (a daemon started from another terminal, another thread of this one)
    /// then adds a key of its own, and the first session's stale copy shadows
    /// the newer one for whoever searches from it. One key in the one
    /// persistent keyring of the user has no copies to go stale. A thread
    /// with no session keyring (a container, a service started without a PAM
    /// session) joins an anonymous one first: the persistent keyring is
    /// linked into it, which is what makes it the thread's own to write.
    #[cfg(target_os = "linux")]
    fn entry(name: &str) -> Result<keyring::Entry, String> {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        let _ = KeyRing::from_special_id(KeyRingIdentifier::Session, true);
        let persistent = KeyRing::get_persistent(KeyRingIdentifier::Session)
            .map_err(|e| format!("{NAME}: the user's persistent keyring cannot be used: {e}"))?;
        let credential = keyring::keyutils::KeyutilsCredential {
            session: persistent,
            persistent: None,
            description: format!("{SERVICE}:{name}"),
        };
        Ok(keyring::Entry::new_with_credential(Box::new(credential)))
    }

    #[cfg(not(target_os = "linux"))]
    fn entry(name: &str) -> Result<keyring::Entry, String> {
        keyring::Entry::new(SERVICE, name).map_err(|e| describe(&e))
    }

    /// A keyring error without anything it may have read.
    fn describe(e: &keyring::Error) -> String {
        match e {
            keyring::Error::BadEncoding(_) => format!("{NAME}: an entry is not text"),
            other => format!("{NAME}: {other}"),
        }
    }

    pub fn read(name: &str) -> Result<Option<Secrets>, String> {
        match entry(name)?.get_password() {
            Ok(text) => serde_json::from_str(&text)
                // serde's message may quote the value: say only what it is.
                .map(Some)
                .map_err(|_| format!("{NAME}: the entry `{SERVICE}` / `{name}` is not one this gateway wrote")),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(describe(&e)),
        }
    }

    pub fn write(name: &str, secrets: &Secrets) -> Result<(), String> {
        let text = serde_json::to_string(secrets).map_err(|e| e.to_string())?;
        entry(name)?.set_password(&text).map_err(|e| describe(&e))
    }

    pub fn delete(name: &str) -> Result<(), String> {
        match entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }

    pub fn check() -> Result<(), String> {
        // The crate falls back to an in-memory mock when no native store is
        // compiled in: that would lose every token at the daemon's exit.
        let persistence = keyring::default::default_credential_builder().persistence();
        if matches!(persistence, CredentialPersistence::EntryOnly | CredentialPersistence::ProcessOnly) {
            return Err(format!("{NAME}: this build has no native keyring (it would keep nothing)"));
        }
        Ok(())
    }
}

#[cfg(not(all(feature = "os-keyring", any(target_os = "linux", target_os = "macos"))))]
mod native {
    use super::Secrets;

    pub const NAME: &str = "the OS keyring";

    fn absent() -> String {
        if cfg!(feature = "os-keyring") {
            "the OS keyring: this platform has none mcp-gateway can use (Linux and macOS only)".into()
        } else {
            "the OS keyring: this mcp-gateway was built without it (the `os-keyring` cargo feature)".into()
        }
    }

    pub fn read(_: &str) -> Result<Option<Secrets>, String> {
        Err(absent())
    }

    pub fn write(_: &str, _: &Secrets) -> Result<(), String> {
        Err(absent())
    }

    pub fn delete(_: &str) -> Result<(), String> {
        Err(absent())
    }

    pub fn check() -> Result<(), String> {
        Err(absent())
    }
}

pub use native::{NAME, check, delete, read, write};

/// Whether the keyring can be used now: built in, a native store, and an
/// entry can be written, read back and deleted. For `doctor` and the daemon's
/// start; the answer names the store and what failed.
pub fn probe() -> Result<&'static str, String> {
    check()?;
    let name = format!("probe-{}", super::pkce::random_token());
    let secrets = Secrets {
        generation: 1,
        client_id: "mcp-gateway-probe".into(),
        access_token: Some("probe".into()),
        refresh_token: None,
        client_secret: None,
    };
    write(&name, &secrets)?;
    let back = read(&name);
    delete(&name)?;
    match back? {
        Some(read) if read == secrets => Ok(NAME),
        _ => Err(format!("{NAME}: an entry written was not read back")),
    }
}
