//! Watching the files the gateway reads: the config directory (config file and
//! gateway `.env`) and the workspace roots of connected sessions.
//!
//! Directories are watched, not files: editors save by writing a new file and
//! renaming it over the old one, which a watch on the old file would miss.
//! Events are debounced, so one save gives one reload.
//!
//! The watcher only says what changed ([`Change`]); the daemon decides what a
//! change means (a reload, a workspace refresh), so this floor knows nothing of
//! the gateway above it.

use crate::lock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::WORKSPACE_FILE;

const DEBOUNCE: Duration = Duration::from_millis(150);

/// What a batch of file events changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A config file in the config directory (or the gateway `.env` beside it).
    Config,
    /// A workspace file (`.mcp-gateway.yaml`) in a watched workspace root.
    Workspace,
}

/// The file watcher of a running gateway.
pub struct Watcher {
    debouncer: Mutex<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
    /// Watched workspace roots, by how many sessions are in each.
    roots: Mutex<HashMap<PathBuf, usize>>,
    config_dir: PathBuf,
}

impl Watcher {
    /// Starts watching `config_dir`; what changes comes out of the receiver
    /// (which ends when the watcher is dropped).
    pub fn start(config_dir: &Path) -> notify::Result<(Arc<Watcher>, mpsc::UnboundedReceiver<Change>)> {
        let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
            Ok(events) => {
                for event in events {
                    for path in &event.paths {
                        let _ = tx.send(path.clone());
                    }
                }
            }
            Err(errors) => warn!(?errors, "file watching reported errors"),
        })?;
        if !config_dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(config_dir);
        }
        debouncer.watch(config_dir, RecursiveMode::NonRecursive)?;
        info!(dir = %config_dir.display(), "watching the config directory");
        let watcher = Arc::new(Watcher {
            debouncer: Mutex::new(debouncer),
            roots: Mutex::new(HashMap::new()),
            config_dir: config_dir.to_path_buf(),
        });
        let (changes, out) = mpsc::unbounded_channel();
        tokio::spawn(sort(watcher.config_dir.clone(), rx, changes));
        Ok((watcher, out))
    }

    /// A session entered a workspace: watch its root (once per root).
    pub fn enter(&self, root: &Path) {
        let mut roots = lock(&self.roots);
        let count = roots.entry(root.to_path_buf()).or_default();
        *count += 1;
        if *count == 1
            && root != self.config_dir
            && let Err(e) = lock(&self.debouncer).watch(root, RecursiveMode::NonRecursive)
        {
            debug!(root = %root.display(), error = %e, "cannot watch a workspace root");
        }
    }

    /// A session left a workspace: stop watching it when it was the last.
    pub fn leave(&self, root: &Path) {
        let mut roots = lock(&self.roots);
        let Some(count) = roots.get_mut(root) else { return };
        *count -= 1;
        if *count == 0 {
            roots.remove(root);
            if root != self.config_dir {
                let _ = lock(&self.debouncer).unwatch(root);
            }
        }
    }
}

/// Turns batches of changed paths into [`Change`]s: one of each kind at most
/// per batch, so one save gives one reload.
async fn sort(
    config_dir: PathBuf,
    mut paths: mpsc::UnboundedReceiver<PathBuf>,
    changes: mpsc::UnboundedSender<Change>,
) {
    while let Some(first) = paths.recv().await {
        // Take everything that arrived together.
        let mut batch = vec![first];
        while let Ok(more) = paths.try_recv() {
            batch.push(more);
        }
        let config_changed = batch.iter().any(|p| p.parent() == Some(config_dir.as_path()) && is_config_file(p));
        let workspace_changed = batch.iter().any(|p| p.file_name().is_some_and(|n| n == WORKSPACE_FILE));
        let sent = [(config_changed, Change::Config), (workspace_changed, Change::Workspace)]
            .into_iter()
            .filter(|(changed, _)| *changed)
            .all(|(_, change)| changes.send(change).is_ok());
        if !sent {
            return;
        }
    }
}

fn is_config_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "toml"))
}
