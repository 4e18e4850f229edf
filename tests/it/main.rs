//! The integration tests, one binary with a module per area.
//!
//! One binary rather than one per file: the 2-core CI machine compiles and links
//! the crate and its dependencies into a test executable once instead of once
//! per area. Each module's own doc comment says what it covers; `common` holds
//! the shared pieces (a gateway in a temp home, real binaries, an MCP client over
//! a real shim, the pinned test dependencies).
//!
//! Run one area with `cargo nextest run -E 'test(/^soak::/)'` or
//! `cargo test --test it soak::`.

mod common;

mod adversarial;
mod cli;
mod conformance;
mod conformance_client;
mod daemon;
mod docker;
mod http;
mod import;
mod in_process;
mod interop;
mod lazy;
mod limits;
mod manpages;
mod modern;
mod multiplexing;
mod oauth;
mod packaging;
mod readme;
mod real_clients;
mod reload;
mod remote;
mod restart;
mod service;
mod sharing;
mod soak;
mod structure;
mod supervision;
mod systemd;
mod teams;
mod trace;
