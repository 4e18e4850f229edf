//! Where things live: the gateway home, the config file, the socket.
//!
//! These locations are part of the contract in DESIGN.md: other tools (the shim,
//! service units, editors' integrations) find the daemon through them, so every
//! lookup is centralised here and follows the documented precedence exactly.

use std::path::{Path, PathBuf};

/// The files and locations both binaries' `--help` ends with.
pub const FILES_HELP: &str = "\
Files:
  gateway home   $MCP_GATEWAY_HOME, else ~/.mcp-gateway/
  config         --config, else $MCP_GATEWAY_CONFIG, else config.yaml (or .toml) in the gateway home
  socket         --socket, else $MCP_GATEWAY_SOCKET, else $XDG_RUNTIME_DIR/mcp-gateway/gateway.sock,
                 else /run/user/$UID/mcp-gateway/gateway.sock when /run/user/$UID exists,
                 else /tmp/mcp-gateway-$UID/gateway.sock

Point an MCP client at `mcp-gateway-connect` instead of each server; it starts the daemon when needed.
Something wrong? `mcp-gateway doctor` checks the setup and says what to do.";

/// Environment variable overriding the gateway home.
pub const HOME_ENV: &str = "MCP_GATEWAY_HOME";
/// Environment variable overriding the config file.
pub const CONFIG_ENV: &str = "MCP_GATEWAY_CONFIG";
/// Environment variable overriding the socket path.
pub const SOCKET_ENV: &str = "MCP_GATEWAY_SOCKET";

/// The current user's home directory: `$HOME`, else the password database.
fn user_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$MCP_GATEWAY_HOME`, else `~/.mcp-gateway/`.
pub fn gateway_home() -> PathBuf {
    match std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => user_home().join(".mcp-gateway"),
    }
}

/// Where remote servers' OAuth credentials live (`<home>/oauth/`, 0700).
pub fn oauth_dir() -> PathBuf {
    gateway_home().join("oauth")
}

/// Where the config file is, and where else was looked, for messages.
#[derive(Debug, Clone)]
pub struct ConfigLocation {
    /// The file to load (it may not exist).
    pub path: PathBuf,
    /// Every path that was considered, in order.
    pub searched: Vec<PathBuf>,
}

/// `--config`, else `$MCP_GATEWAY_CONFIG`, else the first of `config.yaml`,
/// `config.yml`, `config.toml` that exists in the gateway home (else `config.yaml`).
pub fn config_location(explicit: Option<&Path>) -> ConfigLocation {
    if let Some(path) = explicit {
        return ConfigLocation { path: path.to_path_buf(), searched: vec![path.to_path_buf()] };
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return ConfigLocation { path: path.clone(), searched: vec![path] };
    }
    let home = gateway_home();
    let searched: Vec<PathBuf> = ["config.yaml", "config.yml", "config.toml"].iter().map(|n| home.join(n)).collect();
    let path = searched.iter().find(|p| p.exists()).unwrap_or(&searched[0]).clone();
    ConfigLocation { path, searched }
}

/// The gateway `.env`, beside the config file.
pub fn gateway_dotenv(config: &Path) -> PathBuf {
    config.parent().unwrap_or_else(|| Path::new(".")).join(".env")
}

/// `--socket`, else `$MCP_GATEWAY_SOCKET`, else `$XDG_RUNTIME_DIR`, else the
/// user's runtime directory `/run/user/$UID` when it exists, else
/// `/tmp/mcp-gateway-$UID/` (`gateway.sock` in the last three).
///
/// The uid's runtime directory comes before `/tmp` because a shim does not
/// choose its environment: Codex starts its servers with a few whitelisted
/// variables, the TypeScript SDK with fewer still, so a shim under one of them
/// never sees the `XDG_RUNTIME_DIR` the terminal's daemon saw. Where that
/// directory exists (systemd's `pam_systemd` makes it, and it is what
/// `$XDG_RUNTIME_DIR` names there) both find the same socket whatever their
/// environment; elsewhere `mcp-gateway setup` writes `--socket` into the
/// client's entry whenever the socket is not [`default_socket_path`].
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(runtime).join("mcp-gateway").join("gateway.sock");
    }
    default_socket_path()
}

/// The socket a process with no `--socket` and no gateway variables finds
/// (what a shim started by a client that filters its environment uses): the
/// uid's runtime directory when it exists, else `/tmp/mcp-gateway-$UID/`.
pub fn default_socket_path() -> PathBuf {
    match uid_runtime_dir() {
        Some(runtime) => runtime.join("mcp-gateway").join("gateway.sock"),
        None => tmp_socket(),
    }
}

/// Every socket a process of this user could find the daemon on, whatever
/// its environment: `$MCP_GATEWAY_SOCKET`, `$XDG_RUNTIME_DIR`'s, the uid's
/// runtime directory's and `/tmp`'s, in that order, without repeats. `doctor`
/// and `status` look for a daemon on each, since clients whose environments
/// differ (Codex and the TypeScript SDK filter theirs) can each autostart one.
pub fn candidate_sockets() -> Vec<PathBuf> {
    let mut sockets = Vec::new();
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        sockets.push(PathBuf::from(path));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        sockets.push(PathBuf::from(runtime).join("mcp-gateway").join("gateway.sock"));
    }
    if let Some(runtime) = uid_runtime_dir() {
        sockets.push(runtime.join("mcp-gateway").join("gateway.sock"));
    }
    sockets.push(tmp_socket());
    let mut seen = std::collections::HashSet::new();
    sockets.retain(|s| seen.insert(s.clone()));
    sockets
}

/// `/run/user/$UID`, when it is a directory.
fn uid_runtime_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/run/user/{}", nix::unistd::getuid()));
    dir.is_dir().then_some(dir)
}

fn tmp_socket() -> PathBuf {
    PathBuf::from(format!("/tmp/mcp-gateway-{}", nix::unistd::getuid())).join("gateway.sock")
}

/// The lock a daemon holds for as long as it serves a socket, so that two daemons
/// started at once (two shims racing to autostart) never both bind it.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    socket.with_file_name(name)
}

/// Where each running daemon records the socket it serves (one file per
/// daemon holding the socket's path, removed when it stops), so that
/// `doctor` and `status` find a daemon on a socket no lookup would find
/// (one given with `--socket`).
pub fn daemon_records_dir() -> PathBuf {
    gateway_home().join("daemons")
}

/// The log file a daemon started by the shim writes to.
pub fn daemon_log_path() -> PathBuf {
    gateway_home().join("daemon.log")
}

/// The persisted catalog of backend listings (tools, prompts, resources).
pub fn catalog_cache_path() -> PathBuf {
    gateway_home().join("cache").join("catalog.json")
}

/// The marker a deliberate `mcp-gateway stop` leaves beside the socket, so that
/// running shims know the daemon went away on purpose and do not autostart it
/// again (a crash or a restart leaves no marker: they reconnect as usual). The
/// next daemon to bind the socket removes it.
pub fn stopped_marker(socket: &Path) -> PathBuf {
    let mut name = socket.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".stopped");
    socket.with_file_name(name)
}

/// Why a socket directory cannot be trusted: someone other than this user could
/// have put (or could replace) a listener there.
#[derive(Debug, thiserror::Error)]
pub enum SocketDirError {
    #[error(
        "socket directory {dir} is a symbolic link; someone may have planted it to redirect the socket. Remove it \
         (`rm {dir}`), or choose another socket with --socket, MCP_GATEWAY_SOCKET or XDG_RUNTIME_DIR"
    )]
    Symlink { dir: PathBuf },
    #[error(
        "socket directory {dir} is not a directory; remove it, or choose another socket with --socket, MCP_GATEWAY_SOCKET or XDG_RUNTIME_DIR"
    )]
    NotADirectory { dir: PathBuf },
    #[error(
        "socket directory {dir} is owned by uid {owner}, not by this user (uid {uid}); whoever owns it could be \
         listening there. Remove it (as its owner or root: `rm -r {dir}`), or choose another socket with \
         --socket, MCP_GATEWAY_SOCKET or XDG_RUNTIME_DIR"
    )]
    Owner { dir: PathBuf, owner: u32, uid: u32 },
    #[error(
        "socket directory {dir} (mode {mode:04o}) is writable by other users, who could replace the socket; \
         run `chmod go-w {dir}` or choose a private directory with --socket, MCP_GATEWAY_SOCKET or XDG_RUNTIME_DIR"
    )]
    Writable { dir: PathBuf, mode: u32 },
    #[error("cannot inspect socket directory {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
}

/// The rule for a directory that holds the gateway's socket (the one tmux and
/// OpenSSH apply): owned by this user (or root, who could read everything
/// anyway) and not writable by group or others. A 0755 directory of the user's
/// own is fine; a shared one such as `/tmp` itself is not, since anyone could
/// bind the socket's name there first.
pub fn check_socket_dir_owner(dir: &Path, owner: u32, mode: u32) -> Result<(), SocketDirError> {
    let uid = nix::unistd::getuid().as_raw();
    if owner != uid && owner != 0 {
        return Err(SocketDirError::Owner { dir: dir.to_path_buf(), owner, uid });
    }
    if mode & 0o022 != 0 {
        return Err(SocketDirError::Writable { dir: dir.to_path_buf(), mode: mode & 0o7777 });
    }
    Ok(())
}

/// Checks the directory of `socket` without following a symlink, before a
/// client sends anything through it. `Ok(false)`: it does not exist (yet).
pub fn verify_socket_dir(socket: &Path) -> Result<bool, SocketDirError> {
    use std::os::unix::fs::MetadataExt;
    let dir = socket_dir(socket);
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(SocketDirError::Io { dir: dir.to_path_buf(), source }),
    };
    if meta.file_type().is_symlink() {
        return Err(SocketDirError::Symlink { dir: dir.to_path_buf() });
    }
    if !meta.is_dir() {
        return Err(SocketDirError::NotADirectory { dir: dir.to_path_buf() });
    }
    check_socket_dir_owner(dir, meta.uid(), meta.mode())?;
    Ok(true)
}

/// The directory a socket path lives in (`.` for a bare file name).
pub fn socket_dir(socket: &Path) -> &Path {
    match socket.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}
