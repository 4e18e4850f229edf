//! The start-up handshake between a shim that autostarts the daemon and that
//! daemon, both sides in one file (as sccache's client waits for its server).
//!
//! The shim makes a pipe, hands the daemon its write end by number in
//! [`READY_FD_ENV`], and waits; the daemon writes one line, `ready <pid>` once
//! it listens or `error <reason>` when it cannot start, so the shim reports the
//! daemon's own reason at once instead of timing out.

use std::io::Write;

/// The environment variable carrying the start-up pipe's write end.
pub const READY_FD_ENV: &str = "MCP_GATEWAY_READY_FD";

/// The daemon's side: it listens now.
pub fn write_ready(pipe: &mut impl Write) {
    let _ = writeln!(pipe, "ready {}", std::process::id());
}

/// The daemon's side: it cannot start, and why (on one line).
pub fn write_error(pipe: &mut impl Write, reason: &str) {
    let _ = writeln!(pipe, "error {}", reason.replace('\n', " "));
}

/// The shim's side: the reason in the first `error` line among the whole
/// lines of `said` (the message may arrive in pieces; a partial last line is
/// not read yet).
pub fn failure(said: &[u8]) -> Option<String> {
    let whole = said.iter().rposition(|b| *b == b'\n').map_or(&said[..0], |end| &said[..end]);
    String::from_utf8_lossy(whole).lines().find_map(|l| l.strip_prefix("error ")).map(str::to_string)
}

/// The write end of the shim's start-up pipe, if the shim started us.
pub fn take_ready_fd() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    let fd: i32 = std::env::var(READY_FD_ENV).ok()?.parse().ok()?;
    // Only adopt it if it really is an open descriptor (not stdin/out/err).
    // SAFETY: fcntl(F_GETFD) on any integer is harmless; it fails for a closed fd.
    if fd <= 2 || unsafe { libc_fcntl_getfd(fd) } < 0 {
        return None;
    }
    // SAFETY: the fd is open, was handed to us for this purpose, and nothing else owns it.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    Some(file)
}

/// `fcntl(fd, F_GETFD)` on a raw descriptor number.
unsafe fn libc_fcntl_getfd(fd: i32) -> i32 {
    // SAFETY: the caller only asks about the descriptor; borrowing it for one call
    // is sound even if it is closed (the call then fails with EBADF).
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_are_read() {
        let mut said = Vec::new();
        write_error(&mut said, "cannot bind\nthe socket");
        assert_eq!(failure(&said[..said.len() - 1]), None);
        assert_eq!(failure(&said).as_deref(), Some("cannot bind the socket"));
        let mut ok = Vec::new();
        write_ready(&mut ok);
        assert_eq!(failure(&ok), None);
    }
}
