//! Where a server's `${VAR}`s come from, and the keyed hashes that let the
//! gateway tell credential sets apart without ever keeping them in the clear.
//!
//! Resolution order, highest first (DESIGN.md, "Credentials"): the workspace's
//! `.env`, the gateway's `.env`, the profile's `env:` block, the environment the
//! client ran in (forwarded by the shim), the daemon's own environment.
//!
//! `.env` files are re-read when they change (by modification time, size and
//! inode), so the next call after an edit uses the new values.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hmac::{KeyInit, Mac};
use tracing::warn;

/// Variables parsed from one `.env` file.
pub type Vars = Arc<HashMap<String, String>>;

/// A `.env` file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct EnvFileError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// Parses a `.env` file's text (dotenvy's syntax); errors name the line.
pub fn parse_env(path: &Path, text: &str) -> Result<HashMap<String, String>, EnvFileError> {
    let mut vars = HashMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                vars.insert(key, value);
            }
            Err(dotenvy::Error::LineParse(bad, column)) => {
                let first = bad.lines().next().unwrap_or_default().trim();
                let line = text.lines().position(|l| l.trim() == first).map_or(0, |i| i + 1);
                return Err(EnvFileError {
                    path: path.display().to_string(),
                    line,
                    message: format!("cannot parse this line (at column {})", column + 1),
                });
            }
            Err(e) => {
                return Err(EnvFileError { path: path.display().to_string(), line: 0, message: e.to_string() });
            }
        }
    }
    Ok(vars)
}

#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

struct Cached {
    stamp: Option<Stamp>,
    vars: Vars,
}

/// `.env` files, parsed once per change.
#[derive(Default)]
pub struct EnvFiles {
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

impl EnvFiles {
    /// The variables of `path`: empty when it does not exist or cannot be parsed
    /// (then a warning names the file and line, once per version of the file).
    pub fn load(&self, path: &Path) -> Vars {
        let meta = std::fs::metadata(path).ok();
        let stamp = meta.as_ref().map(|m| Stamp { modified: m.modified().ok(), len: m.len(), inode: m.ino() });
        let mut cache = crate::lock(&self.cache);
        if let Some(cached) = cache.get(path)
            && cached.stamp == stamp
        {
            return cached.vars.clone();
        }
        let vars = match (&meta, std::fs::read_to_string(path)) {
            (Some(meta), Ok(text)) => {
                if meta.mode() & 0o004 != 0 {
                    warn!(path = %path.display(), "this .env file is readable by every user on the machine; chmod 600 it");
                }
                match parse_env(path, &text) {
                    Ok(vars) => vars,
                    Err(e) => {
                        warn!("ignoring a .env file that cannot be parsed: {e}");
                        HashMap::new()
                    }
                }
            }
            _ => HashMap::new(),
        };
        let vars = Arc::new(vars);
        cache.insert(path.to_path_buf(), Cached { stamp, vars: vars.clone() });
        vars
    }
}

/// The sources of one lookup, highest first.
pub struct Sources {
    pub workspace_env: Option<Vars>,
    pub gateway_env: Vars,
    pub profile_env: BTreeMap<String, String>,
    pub client_env: crate::preamble::ClientEnv,
}

impl Sources {
    /// The value of `name`: the first source that has it, else the daemon's environment.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.workspace_env.as_ref().and_then(|v| v.get(name).cloned()).or_else(|| self.lookup_beyond_workspace(name))
    }

    /// The value of `name` from every source but the workspace's `.env`: what
    /// an untrusted workspace's fields that are not credential values see.
    pub fn lookup_beyond_workspace(&self, name: &str) -> Option<String> {
        self.gateway_env
            .get(name)
            .cloned()
            .or_else(|| self.profile_env.get(name).cloned())
            .or_else(|| self.client_env.0.get(name).cloned())
            .or_else(|| std::env::var(name).ok())
    }
}

/// A field of a server definition that `${VAR}` expands in.
///
/// An untrusted workspace is a directory anyone may have cloned, so its `.env`
/// may fill credential values only, never where a request goes or what runs
/// (issue 15: a clone that set the variable of a server's `url:` was sent the
/// bearer token from the gateway's own `.env`). See [`Field::is_credential`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Command,
    Args,
    Cwd,
    Url,
    Image,
    Volumes,
    /// An `env:` value, by its variable's name.
    Env(&'a str),
    /// A `headers:` value, by the header's name.
    Header(&'a str),
    /// An `oauth:` value: `client_id` and `client_secret` are credentials,
    /// `client_metadata_url` says where the client's identity lives.
    OAuth(&'a str),
}

/// Words of an `env:` name (split at `_`) that say the variable picks where a
/// server connects or what it loads, not a credential: `GITHUB_HOST`,
/// `OPENAI_BASE_URL`, `HTTPS_PROXY`, `NODE_PATH`.
const LOCATION_WORDS: &[&str] = &[
    "URL",
    "URLS",
    "URI",
    "URIS",
    "HOST",
    "HOSTS",
    "HOSTNAME",
    "ENDPOINT",
    "ENDPOINTS",
    "PROXY",
    "DOMAIN",
    "SERVER",
    "ADDR",
    "ADDRESS",
    "BASE",
    "PATH",
];

/// `env:` names that change what a process runs or loads, whole.
const EXECUTION_VARIABLES: &[&str] = &[
    "NODE_OPTIONS",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "PERL5OPT",
    "RUBYOPT",
    "RUBYLIB",
    "BASH_ENV",
    "ENV",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "GIT_SSH_COMMAND",
];

impl Field<'_> {
    /// Whether this field holds a credential value, which an untrusted
    /// workspace's `.env` may fill: an `env:` value, unless its name says it
    /// picks a location or what runs (a word of [`LOCATION_WORDS`], one of
    /// [`EXECUTION_VARIABLES`], or `LD_*`/`DYLD_*`), and a `headers:` value
    /// other than `Host`. `command`, `args`, `cwd`, `url`, `image` and
    /// `volumes` never are.
    pub fn is_credential(&self) -> bool {
        match self {
            Field::Env(name) => {
                let upper = name.to_ascii_uppercase();
                !(EXECUTION_VARIABLES.contains(&upper.as_str())
                    || upper.starts_with("LD_")
                    || upper.starts_with("DYLD_")
                    || upper.split('_').any(|word| LOCATION_WORDS.contains(&word)))
            }
            Field::Header(name) => !name.eq_ignore_ascii_case("host"),
            // A URL the authorization server fetches, or a file the daemon reads: locations.
            Field::OAuth(name) => !matches!(*name, "client_metadata_url" | "private_key_file"),
            Field::Command | Field::Args | Field::Cwd | Field::Url | Field::Image | Field::Volumes => false,
        }
    }
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Command => f.write_str("command"),
            Field::Args => f.write_str("args"),
            Field::Cwd => f.write_str("cwd"),
            Field::Url => f.write_str("url"),
            Field::Image => f.write_str("image"),
            Field::Volumes => f.write_str("volumes"),
            Field::Env(name) => write!(f, "env.{name}"),
            Field::Header(name) => write!(f, "headers.{name}"),
            Field::OAuth(name) => write!(f, "oauth.{name}"),
        }
    }
}

/// A keyed hash (HMAC-SHA256 under a key made at daemon start): it tells equal
/// credential sets apart from different ones, and says nothing about the values
/// to anyone without the key, which never leaves the daemon's memory.
pub struct Hasher {
    key: [u8; 32],
    /// Digests already worked out, by their input (see `digest_memo`).
    memo: std::sync::Mutex<HashMap<Vec<u8>, String>>,
}

/// How many digests `digest_memo` keeps before it starts over.
const MEMO_ENTRIES: usize = 1024;

impl Hasher {
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        if let Err(e) =
            std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        {
            // Still keyed by something no other process knows; never a constant.
            warn!(error = %e, "no /dev/urandom; keying credential hashes with the clock");
            let seed = format!("{:?}{:?}", SystemTime::now(), std::process::id());
            key[..seed.len().min(32)].copy_from_slice(&seed.as_bytes()[..seed.len().min(32)]);
        }
        Self { key, memo: std::sync::Mutex::default() }
    }

    /// A short hex digest of `parts`, each length-prefixed so no two lists collide.
    pub fn digest<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        hex8(&mac.finalize().into_bytes())
    }

    /// `digest`, remembered: the instance of a server is worked out on every
    /// routed request, from inputs that rarely change, and HMAC-SHA256 was a
    /// fifth of the daemon's work per call. The inputs stay in this process's
    /// memory only (as the resolved definitions they come from do).
    pub fn digest_memo<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> String {
        let mut input = Vec::new();
        for part in parts {
            input.extend_from_slice(&(part.len() as u64).to_le_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        if let Some(digest) = crate::lock(&self.memo).get(&input) {
            return digest.clone();
        }
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&input);
        let digest = hex8(&mac.finalize().into_bytes());
        let mut memo = crate::lock(&self.memo);
        if memo.len() >= MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(input, digest.clone());
        digest
    }
}

/// The first 8 bytes of a digest, in hex.
fn hex8(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(16);
    for b in bytes.iter().take(8) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_files_and_names_the_bad_line() {
        let vars = parse_env(Path::new(".env"), "A=1\n# comment\nexport B=\"two words\"\n\nC='x'\n").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x");
        let err = parse_env(Path::new("/w/.env"), "A=1\nB=2\nthis is not a line\n").unwrap_err();
        assert_eq!((err.path.as_str(), err.line), ("/w/.env", 3), "{err}");
        assert!(err.to_string().starts_with("/w/.env:3:"), "{err}");
    }

    #[test]
    fn env_files_are_reread_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let files = EnvFiles::default();
        assert!(files.load(&path).is_empty());
        std::fs::write(&path, "TOKEN=one\n").unwrap();
        assert_eq!(files.load(&path)["TOKEN"], "one");
        std::fs::write(&path, "TOKEN=second\n").unwrap();
        assert_eq!(files.load(&path)["TOKEN"], "second");
        std::fs::write(&path, "broken line\n").unwrap();
        assert!(files.load(&path).is_empty(), "a broken file contributes nothing");
    }

    #[test]
    fn lookup_follows_the_documented_order() {
        let vars = |pairs: &[(&str, &str)]| -> Vars {
            Arc::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        let sources = Sources {
            workspace_env: Some(vars(&[("A", "workspace")])),
            gateway_env: vars(&[("A", "gateway"), ("B", "gateway")]),
            profile_env: [("A", "profile"), ("B", "profile"), ("C", "profile")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            client_env: crate::preamble::ClientEnv(Arc::new(
                [("A", "client"), ("D", "client")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            )),
        };
        assert_eq!(sources.lookup("A").as_deref(), Some("workspace"));
        assert_eq!(sources.lookup("B").as_deref(), Some("gateway"));
        assert_eq!(sources.lookup("C").as_deref(), Some("profile"));
        assert_eq!(sources.lookup("D").as_deref(), Some("client"));
        assert_eq!(sources.lookup("PATH"), std::env::var("PATH").ok());
    }

    #[test]
    fn only_credential_values_may_come_from_an_untrusted_workspace() {
        for credential in [
            Field::Env("GITHUB_PERSONAL_ACCESS_TOKEN"),
            Field::Env("API_KEY"),
            Field::Env("db_password"),
            Field::Header("Authorization"),
            Field::Header("X-Api-Key"),
        ] {
            assert!(credential.is_credential(), "{credential}");
        }
        for location in [
            Field::Command,
            Field::Args,
            Field::Cwd,
            Field::Url,
            Field::Image,
            Field::Volumes,
            Field::Env("GITHUB_HOST"),
            Field::Env("OPENAI_BASE_URL"),
            Field::Env("https_proxy"),
            Field::Env("PATH"),
            Field::Env("NODE_PATH"),
            Field::Env("NODE_OPTIONS"),
            Field::Env("LD_PRELOAD"),
            Field::Env("DYLD_INSERT_LIBRARIES"),
            Field::Header("host"),
        ] {
            assert!(!location.is_credential(), "{location}");
        }
        assert_eq!(Field::Env("TOKEN").to_string(), "env.TOKEN");
        assert_eq!(Field::Header("Authorization").to_string(), "headers.Authorization");
    }

    #[test]
    fn a_lookup_beyond_the_workspace_skips_only_its_env() {
        let vars = |pairs: &[(&str, &str)]| -> Vars {
            Arc::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        let sources = Sources {
            workspace_env: Some(vars(&[("A", "workspace"), ("ONLY_HERE", "workspace")])),
            gateway_env: vars(&[("A", "gateway")]),
            profile_env: BTreeMap::new(),
            client_env: crate::preamble::ClientEnv::default(),
        };
        assert_eq!(sources.lookup_beyond_workspace("A").as_deref(), Some("gateway"));
        assert_eq!(sources.lookup_beyond_workspace("ONLY_HERE"), None);
        assert_eq!(sources.lookup("ONLY_HERE").as_deref(), Some("workspace"));
    }

    #[test]
    fn digests_are_keyed_and_unambiguous() {
        let a = Hasher::new();
        let b = Hasher::new();
        assert_eq!(a.digest(["x", "y"]), a.digest(["x", "y"]));
        assert_ne!(a.digest(["x", "y"]), b.digest(["x", "y"]), "another key, another digest");
        assert_ne!(a.digest(["xy", ""]), a.digest(["x", "y"]));
        assert_eq!(a.digest(["secret"]).len(), 16);
    }
}
