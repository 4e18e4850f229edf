//! Where each client keeps its MCP servers.
//!
//! Home files are found from `$HOME` (so tests, and people trying things out,
//! can point everything at a scratch directory); project files from the
//! current directory only, because that is where the client would read them
//! when started there.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Client, Scope};

/// The two directories every lookup starts from.
#[derive(Debug, Clone)]
pub struct Env {
    pub home: PathBuf,
    pub cwd: PathBuf,
}

impl Env {
    /// `$HOME` (else the password database) and the current directory.
    pub fn from_process() -> std::io::Result<Env> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.dir))
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(Env { home, cwd: std::env::current_dir()? })
    }

    /// `path` relative to the current directory (`./…`) or with the home
    /// directory shown as `~`, for messages.
    pub fn show(&self, path: &Path) -> String {
        if let Ok(rest) = path.strip_prefix(&self.cwd)
            && self.cwd != self.home
            && !rest.as_os_str().is_empty()
        {
            return format!("./{}", rest.display());
        }
        match path.strip_prefix(&self.home) {
            Ok(rest) if !self.home.as_os_str().is_empty() && self.home != Path::new("/") => {
                format!("~/{}", rest.display())
            }
            _ => path.display().to_string(),
        }
    }
}

/// How a file lays out its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// JSON (comments allowed) with the servers under `mcpServers`.
    McpServers,
    /// JSON with the servers under `mcpServers`, and per-project servers under
    /// `projects.<dir>.mcpServers` (Claude Code's `~/.claude.json`).
    ClaudeJson,
    /// VS Code: JSON with the servers under `servers` (and `inputs`).
    VscodeServers,
    /// Codex: TOML with `[mcp_servers.NAME]` tables.
    CodexToml,
    /// opencode: JSON (comments allowed) with the servers under `mcp`, each
    /// `{"type": "local", "command": [program, args…], "environment": {…}}`
    /// or `{"type": "remote", "url": …, "headers": {…}}`.
    OpencodeMcp,
}

/// One file a client reads its servers from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    pub client: Client,
    pub scope: Scope,
    pub path: PathBuf,
    #[serde(skip)]
    pub format: Format,
}

fn xdg_config(env: &Env) -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| env.home.join(".config"))
}

/// The per-OS directory where desktop apps keep their settings.
fn app_config(env: &Env) -> PathBuf {
    if cfg!(target_os = "macos") { env.home.join("Library/Application Support") } else { xdg_config(env) }
}

/// `dir/opencode.jsonc` when it exists (and `opencode.json` does not), else `dir/opencode.json`.
fn json_or_jsonc(dir: &Path) -> PathBuf {
    let json = dir.join("opencode.json");
    let jsonc = dir.join("opencode.jsonc");
    if !json.exists() && jsonc.exists() { jsonc } else { json }
}

/// The file a client reads for a scope, or `None` when it has no such scope.
pub fn file_for(client: Client, scope: Scope, env: &Env) -> Option<SourceFile> {
    let (path, format) = match (client, scope) {
        (Client::ClaudeCode, Scope::User) => (env.home.join(".claude.json"), Format::ClaudeJson),
        (Client::ClaudeCode, Scope::Project) => (env.cwd.join(".mcp.json"), Format::McpServers),
        (Client::Cursor, Scope::User) => (env.home.join(".cursor/mcp.json"), Format::McpServers),
        (Client::Cursor, Scope::Project) => (env.cwd.join(".cursor/mcp.json"), Format::McpServers),
        (Client::Codex, Scope::User) => {
            let home = std::env::var_os("CODEX_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| env.home.join(".codex"));
            (home.join("config.toml"), Format::CodexToml)
        }
        (Client::Codex, Scope::Project) => return None,
        (Client::Vscode, Scope::User) => (app_config(env).join("Code/User/mcp.json"), Format::VscodeServers),
        (Client::Vscode, Scope::Project) => (env.cwd.join(".vscode/mcp.json"), Format::VscodeServers),
        (Client::ClaudeDesktop, Scope::User) => {
            (app_config(env).join("Claude/claude_desktop_config.json"), Format::McpServers)
        }
        (Client::ClaudeDesktop, Scope::Project) => return None,
        // Gemini CLI merges the project's `.gemini/settings.json` over the user's.
        (Client::GeminiCli, Scope::User) => (env.home.join(".gemini/settings.json"), Format::McpServers),
        (Client::GeminiCli, Scope::Project) => (env.cwd.join(".gemini/settings.json"), Format::McpServers),
        // Copilot CLI keeps its servers in `$COPILOT_HOME/mcp-config.json`
        // (`~/.copilot/`); a project's servers are the `.mcp.json` Claude Code
        // reads too, which `setup claude-code --scope project` writes.
        (Client::CopilotCli, Scope::User) => {
            let home = std::env::var_os("COPILOT_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| env.home.join(".copilot"));
            (home.join("mcp-config.json"), Format::McpServers)
        }
        (Client::CopilotCli, Scope::Project) => return None,
        // opencode reads `opencode.json` or `opencode.jsonc`: the one that exists.
        (Client::Opencode, Scope::User) => (json_or_jsonc(&xdg_config(env).join("opencode")), Format::OpencodeMcp),
        (Client::Opencode, Scope::Project) => (json_or_jsonc(&env.cwd), Format::OpencodeMcp),
    };
    Some(SourceFile { client, scope, path, format })
}

/// Every file `import` reads, project files first (they are what the current
/// directory's sessions were using), for one client or all of them.
pub fn all_files(from: Option<Client>, env: &Env) -> Vec<SourceFile> {
    let clients: Vec<Client> = from.map_or_else(|| Client::ALL.to_vec(), |c| vec![c]);
    let mut files = Vec::new();
    for client in clients {
        for scope in [Scope::Project, Scope::User] {
            if let Some(file) = file_for(client, scope, env) {
                files.push(file);
            }
        }
    }
    files
}
