//! The daemon: the socket, the accept loop, signals and an orderly shutdown.
//!
//! `serve` is a library function so tests can run a daemon in-process; the
//! `mcp-gateway serve` binary is a thin wrapper around it.

mod connection;
mod control;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::catalog::ListingCache;
use crate::config::{Config, ConfigError};
use crate::gateway::Gateway;
use crate::paths;
use crate::preamble::PreambleReply;
use crate::watch::{Change, Watcher};

/// How long a new daemon waits for the socket lock held by another. A daemon
/// that shuts down gives the lock up as soon as it stops accepting (see
/// [`run`]), so this covers only that moment, however long its drain.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long shutdown waits for sessions to finish writing, beyond the grace
/// their calls in flight get (`shutdown_grace_secs`).
const SESSION_DRAIN: Duration = Duration::from_secs(3);

/// How `serve` gets its listener and tells its starter it is up.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--socket`.
    pub socket: Option<PathBuf>,
    /// A listener handed over by the service manager (systemd's LISTEN_FDS).
    pub listener: Option<std::os::unix::net::UnixListener>,
    /// Where to write the start-up handshake (`ready <pid>` or `error <reason>`):
    /// the pipe a shim that autostarted the daemon waits on.
    pub ready: Option<File>,
    /// Where the listing cache is kept; `None`: [`paths::catalog_cache_path`]
    /// (in the gateway home). Lets an in-process test daemon keep it in its temp
    /// dir, as the environment is the whole test process's.
    pub listing_cache: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("another mcp-gateway daemon is already listening on {0}")]
    AlreadyRunning(PathBuf),
    #[error("another mcp-gateway daemon holds {path}{holder}; it did not exit within {secs} s")]
    Locked { path: PathBuf, holder: String, secs: u64 },
    #[error("socket directory {path}: {reason}")]
    SocketDir { path: PathBuf, reason: String },
    #[error("refusing to listen there: {0}")]
    Untrusted(paths::SocketDirError),
    #[error("cannot start the HTTP front door on {listen}: {source}")]
    Http { listen: String, source: std::io::Error },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: std::io::Error },
}

/// A bound socket, removed again when dropped (only by the daemon that made it).
struct OwnedSocket {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// This daemon's record of its socket in [`paths::daemon_records_dir`],
/// removed again when dropped. Best effort: a daemon that cannot write it
/// serves all the same (only the second-daemon check misses it).
struct SocketRecord(Option<PathBuf>);

impl SocketRecord {
    fn write(socket: &Path) -> SocketRecord {
        use std::hash::{Hash, Hasher};
        let dir = paths::daemon_records_dir();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        socket.hash(&mut hasher);
        let path = dir.join(format!("{}-{:016x}", std::process::id(), hasher.finish()));
        let written = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .and_then(|()| std::fs::write(&path, socket.as_os_str().as_encoded_bytes()));
        match written {
            Ok(()) => SocketRecord(Some(path)),
            Err(error) => {
                warn!(path = %path.display(), %error, "cannot record the socket for `doctor` and `status`");
                SocketRecord(None)
            }
        }
    }
}

impl Drop for SocketRecord {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Runs the daemon until `shutdown` is cancelled (or SIGTERM/SIGINT arrives).
pub async fn serve(options: ServeOptions, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let mut ready = options.ready;
    let signals = Signals::install().map_err(DaemonError::Signals)?;
    let cache = options.listing_cache.unwrap_or_else(paths::catalog_cache_path);
    match start(options.config.as_deref(), options.socket.as_deref(), options.listener, &cache, &shutdown).await {
        Ok((gateway, listener, owned, socket)) => {
            let record = SocketRecord::write(&socket);
            if let Some(ready) = ready.as_mut() {
                crate::startup::write_ready(ready);
            }
            drop(ready);
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            info!(socket = %socket.display(), pid = std::process::id(), "mcp-gateway {} listening", crate::VERSION);
            // Start-up ran code that serving never runs again (argument and
            // config parsing, binding): its pages need not stay resident.
            crate::memory::drop_mapped_code();
            tokio::spawn(supervise(gateway.clone(), shutdown.clone(), owned.is_none()));
            run(gateway, listener, (owned, record), signals, shutdown).await;
            Ok(())
        }
        Err(e) => {
            if let Some(ready) = ready.as_mut() {
                crate::startup::write_error(ready, &e.to_string());
            }
            Err(e)
        }
    }
}

type Started = (Arc<Gateway>, UnixListener, Option<OwnedSocket>, PathBuf);

/// Talks to the service manager while the daemon runs: `WATCHDOG=1` at half the
/// watchdog interval (from the event loop, so a wedged loop stops it), `STATUS=`
/// when the counts change, and the idle exit of a socket-activated daemon.
async fn supervise(gateway: Arc<Gateway>, shutdown: CancellationToken, socket_activated: bool) {
    let watchdog = sd_notify::watchdog_enabled();
    let tick = watchdog.map_or(Duration::from_secs(1), |w| (w / 2).min(Duration::from_secs(1)));
    let mut interval = tokio::time::interval(tick);
    let mut last_status = String::new();
    let mut idle_since = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        if watchdog.is_some() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
        let sessions = gateway.session_count();
        let backends = gateway.running_servers().len();
        let status = format!("{sessions} session(s), {backends} backend(s) running");
        if status != last_status {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&status)]);
            last_status = status;
        }
        if sessions > 0 || backends > 0 {
            idle_since = Instant::now();
        } else if let Some(limit) = gateway.config().idle_exit.filter(|_| socket_activated)
            && idle_since.elapsed() >= limit
        {
            info!(idle = ?limit, "no sessions and no backends: exiting until the next connect");
            shutdown.cancel();
            return;
        }
    }
}

async fn start(
    explicit: Option<&Path>,
    socket: Option<&Path>,
    inherited: Option<std::os::unix::net::UnixListener>,
    cache: &Path,
    shutdown: &CancellationToken,
) -> Result<Started, DaemonError> {
    let location = paths::config_location(explicit);
    let config = match Config::load(&location.path)? {
        Some(config) => {
            info!(path = %location.path.display(), servers = config.servers.len(), "config loaded");
            config
        }
        None => {
            let looked: Vec<String> = location.searched.iter().map(|p| p.display().to_string()).collect();
            info!(
                "no config file found (looked at {}); starting with no servers. To add one, create {} with for example:\n\
                 servers:\n  everything:\n    command: npx\n    args: [\"-y\", \"@modelcontextprotocol/server-everything\"]",
                looked.join(", "),
                location.path.display()
            );
            Config::default()
        }
    };
    let socket = paths::socket_path(socket);
    let (listener, owned) = match inherited {
        Some(listener) => {
            info!("using the listening socket passed by the service manager");
            listener.set_nonblocking(true).map_err(|source| DaemonError::Bind { path: socket.clone(), source })?;
            (listener, None)
        }
        None => {
            let (listener, owned) = bind(&socket).await?;
            (listener, Some(owned))
        }
    };
    let listener =
        UnixListener::from_std(listener).map_err(|source| DaemonError::Bind { path: socket.clone(), source })?;
    // A daemon serves again: a deliberate `stop` before this no longer holds
    // running shims back from reconnecting (or autostarting) after a crash.
    let _ = std::fs::remove_file(paths::stopped_marker(&socket));
    let cache = ListingCache::load(cache);
    let gateway = Gateway::new(config, &location.path, explicit.map(Path::to_path_buf), cache);
    watch_files(&gateway, location.path.parent().unwrap_or(Path::new(".")));
    if let Some(http) = &gateway.config().http {
        crate::front_door::serve(gateway.clone(), shutdown.clone())
            .await
            .map_err(|source| DaemonError::Http { listen: http.listen.clone(), source })?;
    }
    Ok((gateway, listener, owned, socket))
}

/// Watches the config directory and the sessions' workspace roots: a config
/// change reloads, a workspace file change refreshes the sessions in it. The
/// task holds the gateway weakly, so it ends with the gateway.
fn watch_files(gateway: &Arc<Gateway>, config_dir: &Path) {
    match Watcher::start(config_dir) {
        Ok((watcher, mut changes)) => {
            gateway.set_watcher(watcher);
            let gateway = Arc::downgrade(gateway);
            tokio::spawn(async move {
                while let Some(change) = changes.recv().await {
                    let Some(gateway) = gateway.upgrade() else { return };
                    match change {
                        Change::Config => gateway.reload(),
                        Change::Workspace => gateway.workspace_changed(),
                    }
                }
            });
        }
        Err(e) => warn!(error = %e, "cannot watch the config; SIGHUP still reloads it"),
    }
}

/// Prepares the socket directory without ever following a symlink planted in
/// its place: created 0700 when missing, then opened with `O_NOFOLLOW |
/// O_DIRECTORY` and judged by `fstat` on that descriptor (so what is checked is
/// what is there, not what a path resolved to a moment earlier). It must be
/// owned by this user (or root) and not writable by group or others (the rule
/// of [`paths::check_socket_dir_owner`]); the gateway's own directory
/// (`mcp-gateway…`) is tightened to 0700 through the same descriptor, a
/// directory the user chose with `--socket` is left as it is.
fn prepare_dir(dir: &Path) -> Result<(), DaemonError> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::{Mode, fchmod, fstat};
    let fail = |reason: String| DaemonError::SocketDir { path: dir.to_path_buf(), reason };
    if std::fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(|e| fail(e.to_string()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            // Someone made it in between: it is judged below like any other.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let fd = match open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
    {
        Ok(fd) => fd,
        // A symlink fails with ELOOP, or ENOTDIR (O_DIRECTORY is checked on the
        // link itself): tell which it is from the link, never its target.
        Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
            let dir = dir.to_path_buf();
            let symlink = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink());
            return Err(DaemonError::Untrusted(if symlink {
                paths::SocketDirError::Symlink { dir }
            } else {
                paths::SocketDirError::NotADirectory { dir }
            }));
        }
        Err(errno) => return Err(fail(errno.desc().to_string())),
    };
    let stat = fstat(&fd).map_err(|e| fail(e.desc().to_string()))?;
    let mode = stat.st_mode as u32;
    let uid = nix::unistd::getuid().as_raw();
    let ours = dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("mcp-gateway"));
    if ours && stat.st_uid == uid && mode & 0o077 != 0 {
        fchmod(&fd, Mode::from_bits_truncate(0o700)).map_err(|e| fail(e.desc().to_string()))?;
        return Ok(());
    }
    paths::check_socket_dir_owner(dir, stat.st_uid, mode).map_err(DaemonError::Untrusted)
}

fn try_lock(path: &Path) -> Result<Option<Flock<File>>, DaemonError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| DaemonError::Bind { path: path.to_path_buf(), source })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = writeln!(&mut *lock, "{}", std::process::id());
            Ok(Some(lock))
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(DaemonError::Bind { path: path.to_path_buf(), source: errno.into() }),
    }
}

async fn bind(socket: &Path) -> Result<(std::os::unix::net::UnixListener, OwnedSocket), DaemonError> {
    prepare_dir(paths::socket_dir(socket))?;
    let lock_path = paths::lock_path(socket);
    let deadline = Instant::now() + LOCK_WAIT;
    let lock = loop {
        if let Some(lock) = try_lock(&lock_path)? {
            break lock;
        }
        // The holder is serving: nothing to wait for. (It may also be starting up
        // or shutting down; then wait a little for it to settle.)
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(DaemonError::AlreadyRunning(socket.to_path_buf()));
        }
        if Instant::now() >= deadline {
            let holder = std::fs::read_to_string(&lock_path)
                .ok()
                .map(|pid| format!(" (pid {})", pid.trim()))
                .unwrap_or_default();
            return Err(DaemonError::Locked { path: lock_path, holder, secs: LOCK_WAIT.as_secs() });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if socket.exists() {
        // We hold the lock, so no daemon of ours serves this file; but something
        // else (a service manager's socket) might, so probe before replacing it.
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(DaemonError::AlreadyRunning(socket.to_path_buf()));
        }
        info!(socket = %socket.display(), "replacing a stale socket file");
        std::fs::remove_file(socket).map_err(|source| DaemonError::Bind { path: socket.to_path_buf(), source })?;
    }
    let listener = std::os::unix::net::UnixListener::bind(socket)
        .map_err(|source| DaemonError::Bind { path: socket.to_path_buf(), source })?;
    let owned = OwnedSocket { path: socket.to_path_buf(), _lock: lock };
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| DaemonError::Bind { path: socket.to_path_buf(), source })?;
    listener.set_nonblocking(true).map_err(|source| DaemonError::Bind { path: socket.to_path_buf(), source })?;
    Ok((listener, owned))
}

/// Accepts sessions until shutdown, then drains them and stops the backends.
///
/// `claim` (the socket file, its lock and the daemon's record) is given up as
/// soon as this daemon stops accepting, not when it exits: while it drains, a
/// next daemon (started by a new terminal's shim, or an upgrade) can bind the
/// socket at once instead of waiting out the drain, which may be far longer
/// than its wait for the lock.
async fn run(
    gateway: Arc<Gateway>,
    listener: UnixListener,
    claim: impl Sized,
    signals: Signals,
    shutdown: CancellationToken,
) {
    tokio::spawn(signals.handle(gateway.clone(), shutdown.clone()));
    let sessions = TaskTracker::new();
    let uid = nix::unistd::getuid().as_raw();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == uid => {}
            Ok(cred) => {
                warn!(peer_uid = cred.uid(), pid = ?cred.pid(), "refused a connection from another user");
                refuse(
                    stream,
                    format!("this gateway belongs to uid {uid}; connections from uid {} are refused", cred.uid()),
                );
                continue;
            }
            Err(e) => {
                warn!(error = %e, "refused a connection whose peer cannot be identified");
                continue;
            }
        }
        sessions.spawn(connection::serve(gateway.clone(), stream, shutdown.clone()));
    }
    info!(sessions = gateway.session_count(), "shutting down");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    drop(listener);
    drop(claim);
    sessions.close();
    // Each session lets its calls in flight finish within the grace, then ends.
    let drain = Duration::from_secs(gateway.config().shutdown_grace_secs) + SESSION_DRAIN;
    if tokio::time::timeout(drain, sessions.wait()).await.is_err() {
        warn!("sessions did not finish within {drain:?}");
    }
    gateway.shutdown_backends().await;
    info!("stopped");
}

fn refuse(stream: tokio::net::UnixStream, reason: String) {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        let mut line = serde_json::to_vec(&PreambleReply::refused(reason)).unwrap_or_default();
        line.push(b'\n');
        let _ = stream.write_all(&line).await;
        let _ = stream.shutdown().await;
    });
}

/// The signals the daemon handles, registered before the socket is bound: a
/// SIGTERM that arrives as soon as a client can connect must already mean a
/// clean shutdown (socket removed, backends stopped), not the default death.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// SIGTERM/SIGINT cancel `shutdown`; SIGHUP reloads the config.
    async fn handle(mut self, gateway: Arc<Gateway>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.term.recv() => {
                    info!("SIGTERM received");
                    break;
                }
                _ = self.int.recv() => {
                    info!("SIGINT received");
                    break;
                }
                _ = self.hup.recv() => {
                    info!("SIGHUP received: reloading the config");
                    let mut reloading = vec![sd_notify::NotifyState::Reloading];
                    reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
                    let _ = sd_notify::notify(&reloading);
                    gateway.reload();
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                }
            }
        }
        shutdown.cancel();
    }
}
