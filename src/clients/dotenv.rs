//! The gateway's `.env` (beside the config file), where imported secrets go.
//!
//! The file is only ever added to: existing lines (and comments) stay as they
//! are, a variable already there with the same value is reused, and one there
//! with another value makes the import pick another name. It is written
//! atomically with mode 0600, since it holds tokens.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::ClientsError;
use crate::credentials::parse_env;

/// The gateway `.env` as it is, plus what an import will add.
#[derive(Debug, Clone)]
pub struct GatewayEnv {
    pub path: PathBuf,
    before: Option<String>,
    existing: HashMap<String, String>,
    added: Vec<(String, String)>,
}

impl GatewayEnv {
    /// Reads the file (absent is empty; unparsable is an error: we would not
    /// know which names are taken).
    pub fn load(path: &Path) -> Result<GatewayEnv, ClientsError> {
        let before = super::read_optional(path)?;
        let existing = match &before {
            Some(text) => parse_env(path, text)?,
            None => HashMap::new(),
        };
        Ok(GatewayEnv { path: path.to_path_buf(), before, existing, added: Vec::new() })
    }

    /// The value of a variable, existing or planned.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.added
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or(self.existing.get(name).map(String::as_str))
    }

    /// Stores `value` under the first of `names` that is free or already holds
    /// it (then numbered variants of the last); returns the name used.
    pub fn store(&mut self, names: &[String], value: &str) -> Result<String, ClientsError> {
        let numbered = names.last().map(|last| (2..).map(move |n| format!("{last}_{n}"))).into_iter().flatten();
        for name in names.iter().cloned().chain(numbered).take(names.len() + 1000) {
            match self.get(&name) {
                Some(current) if current == value => return Ok(name),
                Some(_) => continue,
                None => {
                    render_line(&self.path, &name, value)?;
                    self.added.push((name.clone(), value.to_string()));
                    return Ok(name);
                }
            }
        }
        Err(ClientsError::file(&self.path, "no free variable name"))
    }

    /// The variables this import adds (names only: values are never shown).
    pub fn added_names(&self) -> Vec<String> {
        self.added.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Whether a variable is set in the file (or will be).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every variable with its value, for comparing definitions.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| self.get(name).map(str::to_string)
    }

    /// Appends the new variables: atomic, 0600, refusing if the file changed meanwhile.
    pub fn write(&self) -> Result<(), ClientsError> {
        if self.added.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        if super::read_optional(path)? != self.before {
            return Err(ClientsError::file(path, "changed while the import was prepared; run it again"));
        }
        let mut text = self.before.clone().unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# added by `mcp-gateway import`\n");
        for (name, value) in &self.added {
            text.push_str(&render_line(path, name, value)?);
        }
        let io = |e: std::io::Error| ClientsError::file(path, e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_file_name(format!(".env.tmp.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    }
}

/// `NAME='value'` in a form dotenv reads back as exactly `value` (checked).
fn render_line(path: &Path, name: &str, value: &str) -> Result<String, ClientsError> {
    let line = if !value.contains(['\'', '\n']) {
        format!("{name}='{value}'\n")
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('\n', "\\n");
        format!("{name}=\"{escaped}\"\n")
    };
    match parse_env(path, &line) {
        Ok(vars) if vars.get(name).map(String::as_str) == Some(value) => Ok(line),
        _ => Err(ClientsError::file(path, format!("the value of {name} cannot be written to a .env file safely"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appends_reuses_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "# mine\nGITHUB_TOKEN=old\n").unwrap();
        let mut env = GatewayEnv::load(&path).unwrap();
        assert_eq!(env.store(&["GITHUB_TOKEN".into()], "old").unwrap(), "GITHUB_TOKEN");
        assert_eq!(env.store(&["GITHUB_TOKEN".into(), "GH_GITHUB_TOKEN".into()], "new").unwrap(), "GH_GITHUB_TOKEN");
        assert_eq!(env.store(&["X".into()], "it's $weird \"q\"").unwrap(), "X");
        env.write().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# mine\nGITHUB_TOKEN=old\n"));
        let vars = parse_env(&path, &text).unwrap();
        assert_eq!(vars["GH_GITHUB_TOKEN"], "new");
        assert_eq!(vars["X"], "it's $weird \"q\"");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
