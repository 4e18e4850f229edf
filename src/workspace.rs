//! Workspaces: the project a session works in, found from its cwd, and what
//! the project itself may add (its `.env`, and, when trusted, its own servers
//! in `.mcp-gateway.yaml`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::Deserialize;
use tracing::warn;

use crate::config::{Config, ServerConfig};

/// The file a workspace may hold to add servers (when trusted) or pick a profile.
pub const WORKSPACE_FILE: &str = ".mcp-gateway.yaml";

/// The default markers of a workspace root.
pub fn default_markers() -> Vec<String> {
    vec![WORKSPACE_FILE.into(), ".env".into(), ".git".into()]
}

/// The nearest ancestor of `cwd` (itself included) holding one of `markers`;
/// `cwd` itself when none does.
pub fn root_of(cwd: &Path, markers: &[String]) -> PathBuf {
    cwd.ancestors().find(|dir| markers.iter().any(|m| dir.join(m).exists())).unwrap_or(cwd).to_path_buf()
}

/// `~` and `~/…` expanded with the daemon user's home.
pub fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

/// The config's `workspaces:` entry that covers `workspace` (the longest path
/// that is it or one of its ancestors): its path and settings.
pub fn mapping_for<'c>(config: &'c Config, workspace: &Path) -> Option<(PathBuf, &'c crate::config::WorkspaceMapping)> {
    config
        .workspaces
        .iter()
        .map(|(path, mapping)| (expand_home(path), mapping))
        .filter(|(path, _)| workspace.starts_with(path))
        .max_by_key(|(path, _)| path.as_os_str().len())
}

/// Warns about `workspaces:` entries whose path does not exist (they are ignored).
pub fn check_mappings(config: &Config) {
    for path in config.workspaces.keys() {
        if !expand_home(path).exists() {
            warn!(path, "the workspace path in the config does not exist; ignoring it");
        }
    }
}

/// What a workspace's `.mcp-gateway.yaml` says.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceFile {
    /// Servers for this workspace only (used only when the workspace is trusted).
    #[serde(default)]
    pub servers: IndexMap<String, ServerConfig>,
    /// The profile sessions in this workspace use (unless the shim names one).
    #[serde(default)]
    pub profile: Option<String>,
    /// How tools are exposed to sessions in this workspace.
    #[serde(default)]
    pub tools: Option<crate::config::ToolsMode>,
}

#[derive(Clone, PartialEq)]
struct Stamp(Option<std::time::SystemTime>, u64);

/// Workspace files, parsed once per change.
#[derive(Default)]
pub struct WorkspaceFiles {
    cache: Mutex<std::collections::HashMap<PathBuf, (Stamp, Arc<WorkspaceFile>)>>,
}

impl WorkspaceFiles {
    /// The workspace file of `root`; empty when absent or broken (a warning says
    /// file, line and reason, once per version of the file). Shared, not
    /// copied: it is read on every routed request.
    pub fn load(&self, root: &Path) -> Arc<WorkspaceFile> {
        let path = root.join(WORKSPACE_FILE);
        let meta = std::fs::metadata(&path).ok();
        let stamp = Stamp(meta.as_ref().and_then(|m| m.modified().ok()), meta.as_ref().map_or(0, |m| m.len()));
        let mut cache = crate::lock(&self.cache);
        if let Some((cached, file)) = cache.get(&path)
            && *cached == stamp
        {
            return file.clone();
        }
        let file = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => serde_norway::from_str(&text).unwrap_or_else(|e| {
                let line = e.location().map_or(0, |l| l.line());
                warn!("ignoring {}:{line}: {e}", path.display());
                WorkspaceFile::default()
            }),
            _ => WorkspaceFile::default(),
        };
        let file = Arc::new(file);
        cache.insert(path, (stamp, file.clone()));
        file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_nearest_marked_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let deep = project.join("src/module");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(project.join(".git")).unwrap();
        let markers = default_markers();
        assert_eq!(root_of(&deep, &markers), project);
        std::fs::write(project.join("src/.env"), "A=1").unwrap();
        assert_eq!(root_of(&deep, &markers), project.join("src"));
        let bare = dir.path().join("bare");
        std::fs::create_dir(&bare).unwrap();
        // No marker anywhere up to the temp dir's ancestors: probably none; if the
        // machine has one above, it is an ancestor, never a sibling.
        assert!(bare.starts_with(root_of(&bare, &markers)));
    }

    #[test]
    fn expands_home() {
        let home = PathBuf::from(std::env::var("HOME").unwrap());
        assert_eq!(expand_home("~/src/acme"), home.join("src/acme"));
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("/abs"), PathBuf::from("/abs"));
        assert_eq!(expand_home("~other/x"), PathBuf::from("~other/x"));
    }

    #[test]
    fn workspace_files_load_and_survive_errors() {
        let dir = tempfile::tempdir().unwrap();
        let files = WorkspaceFiles::default();
        assert_eq!(*files.load(dir.path()), WorkspaceFile::default());
        std::fs::write(dir.path().join(WORKSPACE_FILE), "profile: work\nservers:\n  db:\n    command: db-mcp\n")
            .unwrap();
        let file = files.load(dir.path());
        assert_eq!(file.profile.as_deref(), Some("work"));
        assert_eq!(file.servers["db"].command.as_deref(), Some("db-mcp"));
        std::fs::write(dir.path().join(WORKSPACE_FILE), "servers: [oops\n").unwrap();
        assert_eq!(*files.load(dir.path()), WorkspaceFile::default());
    }
}
