//! The adversarial suite: what another user on the same machine, a cloned
//! repository, a second HTTP client or a careless backend tries against the
//! gateway, each attempt a regression test for a defect it once found.
//!
//! One module per kind of attacker, so the suite reads as a threat list.

/// Another local user: a squatted socket directory, a planted symlink.
mod socket;

/// Backends that outlive their daemon: process chains that ignore EOF and SIGTERM.
mod processes;

/// A cloned repository: `..` and symlinked workspace paths, an untrusted `.env`.
mod workspace;

/// A second HTTP client: another credential's session id, duplicate headers, CORS.
mod front_door;

/// Careless backends and clients: a hung server, a repeated id, an unread backlog.
mod routing;

/// Everything the gateway prints: secrets in URLs, preambles, crashed servers' stderr.
mod outputs;
