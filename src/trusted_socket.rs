//! Connecting to the daemon's socket only when this user's daemon can be the
//! one listening there.
//!
//! Every client of the socket (the shim, which sends the client's whole
//! environment in its preamble, and the command line's control commands,
//! whose answers the user acts on) goes through [`connect`]: a directory that
//! someone else owns or can write to, or a listener of another uid, is refused
//! before a byte is sent.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::paths::{self, SocketDirError};

/// Why the socket is not this user's daemon's.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedSocket {
    #[error("refusing to use the socket {socket}, nothing was sent: {reason}")]
    Directory { socket: PathBuf, reason: SocketDirError },
    #[error(
        "refusing to use the socket {socket}, nothing was sent: the process listening on it runs as uid {peer}, \
         not as this user (uid {uid}), so it is not your mcp-gateway daemon. Remove the socket's directory \
         {dir} (as its owner or root), or choose another socket with --socket, MCP_GATEWAY_SOCKET or XDG_RUNTIME_DIR"
    )]
    ForeignPeer { socket: PathBuf, dir: PathBuf, peer: u32, uid: u32 },
    #[error("cannot tell who listens on the socket {socket} ({source}); nothing was sent")]
    PeerUnknown { socket: PathBuf, source: std::io::Error },
}

/// Connects to `socket` if this user's daemon can be the one listening: its
/// directory must be the user's and private (checked before connecting, so a
/// squatter learns nothing, not even that a client tried), and the listener
/// must run as this user (`SO_PEERCRED`, checked before anything is sent).
/// `Ok(Err(io))`: nothing usable listens (absent, refused).
pub fn connect(socket: &Path) -> Result<std::io::Result<UnixStream>, UntrustedSocket> {
    paths::verify_socket_dir(socket)
        .map_err(|reason| UntrustedSocket::Directory { socket: socket.to_path_buf(), reason })?;
    let stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) => return Ok(Err(e)),
    };
    let peer =
        peer_uid(&stream).map_err(|source| UntrustedSocket::PeerUnknown { socket: socket.to_path_buf(), source })?;
    let uid = nix::unistd::getuid().as_raw();
    if peer != uid {
        return Err(UntrustedSocket::ForeignPeer {
            socket: socket.to_path_buf(),
            dir: paths::socket_dir(socket).to_path_buf(),
            peer,
            uid,
        });
    }
    Ok(Ok(stream))
}

/// The uid of the process that made the listening socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(cred.uid())
}

/// The uid of the process that made the listening socket.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    let (uid, _gid) = nix::unistd::getpeereid(stream)?;
    Ok(uid.as_raw())
}
