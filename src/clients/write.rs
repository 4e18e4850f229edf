//! Rewriting another program's config file safely: a backup first (never
//! replacing an older backup, which may be the only copy of the original), then
//! an atomic replace with the file's own permissions (`~/.claude.json` is 0600
//! and holds tokens; so does its backup), refusing if the client changed the
//! file since we read it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ClientsError;

/// The suffix of the backups `setup` keeps.
pub const BACKUP_SUFFIX: &str = ".bak-mcp-gateway";

/// Where the backup of `path` goes: `<file>.bak-mcp-gateway`, or the first
/// `<file>.bak-mcp-gateway.N` that is free, unless one already holds `content`.
pub fn backup_path(path: &Path, content: &str) -> PathBuf {
    let base = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(BACKUP_SUFFIX);
        path.with_file_name(name)
    };
    for n in 0.. {
        let candidate = if n == 0 {
            base.clone()
        } else {
            let mut name = base.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".{n}"));
            base.with_file_name(name)
        };
        match std::fs::read_to_string(&candidate) {
            Ok(old) if old == content => return candidate,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return candidate,
            Err(_) => continue,
        }
    }
    unreachable!("an unbounded range always yields a free name")
}

/// Writes `after` to `path`. `before` is the text the change was made from
/// (`None`: the file did not exist); returns the backup written, if any.
pub fn replace(path: &Path, before: Option<&str>, after: &str) -> Result<Option<PathBuf>, ClientsError> {
    let io = |e: std::io::Error| ClientsError::file(path, e);
    if super::read_optional(path)?.as_deref() != before {
        return Err(ClientsError::file(path, "changed since it was read (is the client running?); run again"));
    }
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o644);
    let backup = match before {
        Some(before) => {
            let backup = backup_path(path, before);
            if !backup.exists() {
                write_new(&backup, before, mode).map_err(|e| ClientsError::file(&backup, e))?;
            }
            Some(backup)
        }
        None => None,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-mcp-gateway.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = write_new(&tmp, after, mode).and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(backup)
}

/// Creates a file that must not exist yet, with `mode`, and syncs it.
fn write_new(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_backups_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "one").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let first = replace(&path, Some("one"), "two").unwrap().unwrap();
        assert_eq!(first, dir.path().join("mcp.json.bak-mcp-gateway"));
        let second = replace(&path, Some("two"), "three").unwrap().unwrap();
        assert_eq!(second, dir.path().join("mcp.json.bak-mcp-gateway.1"));
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "two");
        assert_eq!(std::fs::metadata(&second).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(replace(&path, Some("stale"), "x").is_err());
    }
}
