//! mcp-gateway: one shared set of MCP servers for every AI client on the machine.
//!
//! Clients launch the stdio shim (`mcp-gateway-connect`, [`shim`]) instead of each
//! MCP server. The shim relays to the per-user daemon ([`daemon`]) over a Unix
//! socket; the daemon serves each connection as an MCP server (`session`) and
//! multiplexes every session over one backend process per server and sharing key
//! ([`backend`], `gateway`).
//!
//! The routing core works on raw `serde_json::Value`s so that fields this crate does
//! not know about pass through unchanged.
//!
//! # Layout
//!
//! Modules by floor: each uses only modules on floors below its own, so the
//! request path reads one way, top to bottom. `tests/it/structure.rs` reads
//! this list and fails when an import points sideways or up, or a module is
//! missing from it.
//!
//! Floor 8, the command line:
//! - [`cli`]: `mcp-gateway`'s clap types and subcommands (`status`, `doctor`, `servers`, `setup`, …).
//!
//! Floor 7, the daemon:
//! - [`daemon`]: lock, bind, accept, peer check, signals, sd_notify, idle exit; reads each
//!   connection's preamble and hands it to a control command or a session.
//!
//! Floor 6, the HTTP front door:
//! - `front_door`: Streamable HTTP at `/mcp`: auth, Origin/Host, `Mcp-Session-Id`, stream sorting.
//!
//! Floor 5, what faces a client:
//! - `session`: one client connection served as an MCP server (the method table, meta-tools, the modern client).
//! - `clients`: other clients' config files, for `import` and `setup`.
//!
//! Floor 4:
//! - `gateway`: the [`Gateway`](gateway::Gateway): config in force, sessions, the pool, listings, and
//!   one file per routing rule (subscriptions, server requests and the instances asking calls get, tasks,
//!   log levels).
//! - `install`: adding and removing servers in a config file without disturbing it.
//! - [`shim`]: `mcp-gateway-connect`: autostart, version check, preamble, relay, reconnect.
//!
//! Floor 3:
//! - [`backend`]: one backend instance, its transports (stdio, HTTP, Docker), the pool and supervision.
//! - `catalog`: a session's tools, prompts and resources under gateway names; the listing cache.
//! - `control`: the command line's side of control connections.
//! - `registry`: the servers one can install (shipped, and the user's `catalog.yaml`).
//! - `watch`: the file watcher (config directory, workspace roots); says what changed.
//! - `workspace`: a session's project root, and what its workspace file may add.
//!
//! Floor 2:
//! - [`config`]: the config file's schema, parsing, `${VAR}` expansion, tool filters.
//! - [`credentials`]: `.env` files, credential sources and the keyed hash.
//! - `oauth`: the OAuth client of remote servers: discovery, registration, login, refresh, the token store.
//! - `routing_headers`: the modern HTTP headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`) and their codec.
//! - [`sink`]: a session's outbound queue, bounded in messages and bytes.
//! - `trusted_socket`: connecting only to a socket this user's daemon can own.
//! - `trace`: W3C trace context on every call (`_meta.traceparent`), its spans, and their OTLP export.
//!
//! Floor 1, no crate module below:
//! - `era`: the two protocol eras: the modern envelope, versions, era-specific codes.
//! - [`framing`]: newline-delimited JSON with a size limit that keeps the stream.
//! - `jsonrpc`: JSON-RPC 2.0 on raw values: kinds, builders, error codes, the ids the gateway mints.
//! - `launchd`: macOS socket activation and the LaunchAgent plist.
//! - `logging`: where the daemon's own log goes.
//! - `memory`: giving memory back once idle.
//! - `paths`: where the home, config and socket live.
//! - [`preamble`]: the first line of every connection to the daemon.
//! - `procinfo`: what /proc says about a backend's processes.
//! - `raw_answer`: a backend's answer kept as its bytes, relayed with only the id spliced.
//! - `redact`: URLs without their secrets.
//! - `startup`: the autostart handshake between a shim and the daemon it started.
//!
//! Only what the binaries, the integration tests and the fuzz targets use is
//! public; the rest is private so the compiler reports dead code.

pub mod backend;
mod catalog;
pub mod cli;
mod clients;
pub mod config;
mod control;
pub mod credentials;
pub mod daemon;
mod era;
pub mod framing;
mod front_door;
mod gateway;
mod install;
mod jsonrpc;
mod launchd;
mod logging;
mod memory;
mod oauth;
mod paths;
pub mod preamble;
mod procinfo;
mod raw_answer;
mod redact;
mod registry;
mod routing_headers;
mod session;
pub mod shim;
pub mod sink;
mod startup;
mod trace;
mod trusted_socket;
mod watch;
mod workspace;

/// Locks a mutex, recovering it if a panic poisoned it: the daemon's maps stay
/// usable, which matters more than the poison flag in a long-lived service.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The version of this build, reported in the preamble reply and `serverInfo`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
