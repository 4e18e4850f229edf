//! mcp-gateway: one shared set of MCP servers for every AI client on the machine.
//!
//! Clients launch the stdio shim (`mcp-gateway-connect`, [`shim`]) instead of each
//! MCP server. The shim relays to the per-user daemon ([`daemon`]) over a Unix
//! socket; the daemon serves each connection as an MCP server ([`session`]) and
//! multiplexes every session over one backend process per server and sharing key
//! ([`backend`], [`gateway`]).
//!
//! The routing core works on raw `serde_json::Value`s so that fields this crate does
//! not know about pass through unchanged.

pub mod backend;
pub mod catalog;
pub mod cli;
pub mod clients;
pub mod config;
pub mod control;
pub mod credentials;
pub mod daemon;
pub mod era;
pub mod framing;
pub mod front_door;
pub mod gateway;
pub mod install;
pub mod jsonrpc;
pub mod launchd;
pub mod logging;
pub mod memory;
pub mod paths;
pub mod preamble;
pub mod procinfo;
pub mod redact;
pub mod session;
pub mod shim;
pub mod sink;
pub mod startup;
pub mod trusted_socket;
pub mod watch;
pub mod workspace;

/// Locks a mutex, recovering it if a panic poisoned it: the daemon's maps stay
/// usable, which matters more than the poison flag in a long-lived service.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The version of this build, reported in the preamble reply and `serverInfo`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
