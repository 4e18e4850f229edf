//! Workspaces: the project a session works in, found from its cwd, and what
//! the project itself may add (its `.env`, and, when trusted, its own servers
//! in `.mcp-gateway.yaml`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use indexmap::IndexMap;
use serde::Deserialize;
use tracing::warn;

use crate::config::{Config, ServerConfig, WORKSPACE_FILE};

/// The nearest ancestor of `cwd` (itself included) holding one of `markers`;
/// `cwd` itself when none does.
pub fn root_of(cwd: &Path, markers: &[String]) -> PathBuf {
    cwd.ancestors().find(|dir| markers.iter().any(|m| dir.join(m).exists())).unwrap_or(cwd).to_path_buf()
}

/// Why a session's working directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkingDirError {
    /// Relative paths (and `~`, which only a shell expands) would be resolved
    /// against the daemon's own working directory, not the client's.
    #[error(
        "the working directory {path:?} is not an absolute path; send the full path of an existing directory (`~` is not expanded)"
    )]
    NotAbsolute { path: PathBuf },
    #[error("the working directory {path:?} cannot be resolved: {source}")]
    Unresolvable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the working directory {path:?} is not a directory (it resolves to {resolved:?})")]
    NotADirectory { path: PathBuf, resolved: PathBuf },
}

/// The one place a session's working directory (the shim's preamble `cwd`, or
/// the front door's `X-MCP-Gateway-Cwd` header) becomes a path the gateway
/// decides on: absolute, `..` and symlinks resolved, an existing directory.
///
/// Every workspace and trust decision compares paths component by component,
/// so it must see the directory the client is really in: `<trusted>/../clone`
/// or a symlink inside a trusted directory would otherwise start with the
/// trusted path while naming another directory (issue 15).
pub fn resolve_working_dir(cwd: &Path) -> Result<PathBuf, WorkingDirError> {
    if !cwd.is_absolute() {
        return Err(WorkingDirError::NotAbsolute { path: cwd.to_path_buf() });
    }
    let resolved = std::fs::canonicalize(cwd)
        .map_err(|source| WorkingDirError::Unresolvable { path: cwd.to_path_buf(), source })?;
    if !resolved.is_dir() {
        return Err(WorkingDirError::NotADirectory { path: cwd.to_path_buf(), resolved });
    }
    Ok(resolved)
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

/// Canonical forms of the config's `workspaces:` paths, by the path as written.
/// `mapping_for` runs on every routed request, and resolving a path costs a
/// system call per component; the forms are worked out again whenever a
/// config is (re)loaded (`check_mappings`).
static CANONICAL_MAPPINGS: LazyLock<Mutex<HashMap<String, PathBuf>>> = LazyLock::new(Mutex::default);

/// A `workspaces:` path as the gateway compares it: `~` expanded, then `..`
/// and symlinks resolved when it exists (a path that does not exist matches
/// nothing real; it is kept as written, and resolved once it exists).
fn canonical_mapping_path(path: &str) -> PathBuf {
    if let Some(known) = crate::lock(&CANONICAL_MAPPINGS).get(path) {
        return known.clone();
    }
    let expanded = expand_home(path);
    match std::fs::canonicalize(&expanded) {
        Ok(canonical) => {
            crate::lock(&CANONICAL_MAPPINGS).insert(path.to_string(), canonical.clone());
            canonical
        }
        Err(_) => expanded,
    }
}

/// Whether `dir` (a config path: a `workspaces:` key or a server's
/// `projects:` entry) is `path` or one of its ancestors, both compared in
/// their canonical forms (`path` must be canonical already).
pub fn covers(dir: &str, path: &Path) -> bool {
    path.starts_with(canonical_mapping_path(dir))
}

/// The config's `workspaces:` entry that covers `workspace` (the longest path
/// that is it or one of its ancestors): its path and settings. `workspace`
/// must be canonical (a root found from `resolve_working_dir`'s result); the
/// config's paths are compared in their canonical forms too.
pub fn mapping_for<'c>(config: &'c Config, workspace: &Path) -> Option<(PathBuf, &'c crate::config::WorkspaceMapping)> {
    config
        .workspaces
        .iter()
        .map(|(path, mapping)| (canonical_mapping_path(path), mapping))
        .filter(|(path, _)| workspace.starts_with(path))
        .max_by_key(|(path, _)| path.as_os_str().len())
}

/// Warns about `workspaces:` entries whose path does not exist (they are
/// ignored), and works out the canonical form of those that do.
pub fn check_mappings(config: &Config) {
    crate::lock(&CANONICAL_MAPPINGS).clear();
    for path in config.workspaces.keys() {
        if !expand_home(path).exists() {
            warn!(path, "the workspace path in the config does not exist; ignoring it");
        }
        canonical_mapping_path(path);
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

/// One workspace file as last read.
struct Cached {
    stamp: Stamp,
    file: Arc<WorkspaceFile>,
    /// The "servers ignored: not trusted" warning was logged for this version.
    untrusted_warned: bool,
}

/// Workspace files, parsed once per change.
#[derive(Default)]
pub struct WorkspaceFiles {
    cache: Mutex<std::collections::HashMap<PathBuf, Cached>>,
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
        if let Some(cached) = cache.get(&path)
            && cached.stamp == stamp
        {
            return cached.file.clone();
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
        cache.insert(path, Cached { stamp, file: file.clone(), untrusted_warned: false });
        file
    }

    /// Whether the warning that `root`'s own servers are ignored (the
    /// workspace is not trusted) is still to be logged: true once per version
    /// of the file, as the servers are worked out on every routed request and
    /// one line says all there is to say.
    pub fn untrusted_warning_due(&self, root: &Path) -> bool {
        let mut cache = crate::lock(&self.cache);
        match cache.get_mut(&root.join(WORKSPACE_FILE)) {
            Some(cached) => !std::mem::replace(&mut cached.untrusted_warned, true),
            // Not loaded through this cache (never the case on the gateway's
            // paths, which load first): nothing to remember it by.
            None => true,
        }
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
        let markers = crate::config::default_markers();
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
    fn working_dirs_are_resolved_before_any_decision() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let (trusted, clone) = (base.join("trusted"), base.join("clone"));
        std::fs::create_dir_all(&trusted).unwrap();
        std::fs::create_dir_all(&clone).unwrap();
        std::os::unix::fs::symlink(&clone, trusted.join("link")).unwrap();
        assert_eq!(resolve_working_dir(&trusted.join("../clone")).unwrap(), clone);
        assert_eq!(resolve_working_dir(&trusted.join("link")).unwrap(), clone);
        assert_eq!(resolve_working_dir(&trusted).unwrap(), trusted);
        for refused in ["relative/dir", "~", "~/src", "."] {
            let error = resolve_working_dir(Path::new(refused)).unwrap_err();
            assert!(matches!(error, WorkingDirError::NotAbsolute { .. }), "{refused}: {error}");
            assert!(error.to_string().contains(refused), "says which path: {error}");
        }
        let missing = resolve_working_dir(&base.join("gone")).unwrap_err();
        assert!(matches!(missing, WorkingDirError::Unresolvable { .. }), "{missing}");
        std::fs::write(base.join("file"), "").unwrap();
        let file = resolve_working_dir(&base.join("file")).unwrap_err();
        assert!(matches!(file, WorkingDirError::NotADirectory { .. }), "{file}");
    }

    #[test]
    fn mappings_compare_canonical_paths() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let (trusted, clone) = (base.join("trusted"), base.join("clone"));
        std::fs::create_dir_all(&trusted).unwrap();
        std::fs::create_dir_all(&clone).unwrap();
        std::os::unix::fs::symlink(&trusted, base.join("alias")).unwrap();
        let yaml = format!(
            "workspaces:\n  {:?}: {{ trust: true }}\n  {:?}: {{ profile: p }}\nprofiles: {{ p: {{}} }}\n",
            base.join("alias").display().to_string(),
            base.join("trusted/../clone").display().to_string()
        );
        let config = Config::parse(Path::new("config.yaml"), &yaml).unwrap();
        check_mappings(&config);
        let (path, mapping) = mapping_for(&config, &trusted.join("sub")).expect("the alias covers the real path");
        assert_eq!((path, mapping.trust), (trusted.clone(), true));
        let (path, mapping) = mapping_for(&config, &clone).expect("`..` in the config is resolved");
        assert_eq!((path, mapping.trust), (clone.clone(), false));
        assert!(mapping_for(&config, &base).is_none());
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
