//! Where the daemon's own log goes, and telling others where that is.
//!
//! Under systemd stderr is the journal (structured fields and levels); started
//! by the shim it is `~/.mcp-gateway/daemon.log`; in a terminal it is the
//! terminal. `mcp-gateway logs` asks the daemon which, so it can show the log
//! without guessing.

use serde::{Deserialize, Serialize};

/// Where the daemon's log lines end up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogDestination {
    /// The systemd journal (`journalctl --user -u mcp-gateway`).
    Journal,
    /// A regular file (the shim's autostart writes `daemon.log`).
    File(std::path::PathBuf),
    /// A terminal or pipe that only whoever started the daemon can read.
    Stderr,
}

/// Whether stderr is the journal: `JOURNAL_STREAM` names its device and inode.
fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var("JOURNAL_STREAM").ok() else { return false };
    let Ok(meta) = nix::sys::stat::fstat(std::io::stderr()) else { return false };
    expected == format!("{}:{}", meta.st_dev, meta.st_ino)
}

/// Where this process's stderr goes now.
pub fn destination() -> LogDestination {
    if stderr_is_journal() {
        return LogDestination::Journal;
    }
    let is_file = nix::sys::stat::fstat(std::io::stderr()).is_ok_and(|meta| {
        nix::sys::stat::SFlag::from_bits_truncate(meta.st_mode) & nix::sys::stat::SFlag::S_IFMT
            == nix::sys::stat::SFlag::S_IFREG
    });
    match std::fs::read_link("/proc/self/fd/2") {
        Ok(path) if is_file && path.is_absolute() => LogDestination::File(path),
        _ => LogDestination::Stderr,
    }
}

/// Sets up the daemon's logging: `MCP_GATEWAY_LOG` (else `RUST_LOG`, else
/// `info`) filters; the journal gets levels and fields, anything else plain
/// text. `spans` (the trace exporter's layer, when spans are exported) has a
/// filter of its own, so the log level does not decide which spans exist.
/// Without it the log's filter is the only one, and filters globally: a
/// per-layer filter looks the span up on every enter and exit, and the
/// session's and backends' spans are entered on every poll of their tasks
/// (about 2,500 instructions per call).
pub fn init<L>(spans: Option<L>)
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
{
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("MCP_GATEWAY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    match spans {
        Some(spans) => tracing_subscriber::registry().with(spans).with(log_layer().with_filter(filter)).init(),
        None => tracing_subscriber::registry().with(filter).with(log_layer()).init(),
    }
}

/// The log's own layer: the journal's when stderr is the journal, else plain text.
fn log_layer<S>() -> impl tracing_subscriber::Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    let journald = stderr_is_journal().then(|| tracing_journald::layer().ok()).flatten();
    let fmt =
        journald.is_none().then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false));
    Layer::and_then(journald, fmt)
}
