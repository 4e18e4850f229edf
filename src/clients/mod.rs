//! Other MCP clients' config files: reading the servers people already set up
//! there (`mcp-gateway import`), and pointing those clients at the shim
//! instead (`mcp-gateway setup CLIENT`).
//!
//! Each client writes its servers in its own dialect (JSON under `mcpServers`
//! or `servers`, opencode's under `mcp`, Codex's TOML under `mcp_servers`, with their own variable
//! syntax); [`json`] and [`codex`] turn each into one neutral
//! [`entry::Definition`] ([`read_servers`] picks the reader) so the
//! planning code ([`import`], [`setup`]) never cares where a server came from.
//! [`team`] imports a team gateway's virtual servers instead of a client's;
//! [`peer`] registers the front door in a team gateway, the other way round.

pub mod codex;
pub mod dotenv;
pub mod entry;
pub mod import;
pub mod json;
pub mod jsonc;
pub mod locations;
pub mod peer;
pub mod secrets;
pub mod setup;
pub mod team;
pub mod write;

use std::path::PathBuf;

use serde::Serialize;

pub use locations::{Env, SourceFile};

/// The servers a client file defines, read in its dialect (nothing when the
/// file does not exist).
pub fn read_servers(source: &SourceFile, env: &Env) -> Result<Vec<entry::Found>, ClientsError> {
    let Some(text) = read_optional(&source.path)? else { return Ok(Vec::new()) };
    match source.format {
        locations::Format::CodexToml => codex::read(source, &text),
        _ => json::read(source, &text, env),
    }
}

/// The clients whose config files are read and rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    ClaudeCode,
    Cursor,
    Codex,
    Vscode,
    ClaudeDesktop,
    GeminiCli,
    CopilotCli,
    Opencode,
}

impl Client {
    pub const ALL: [Client; 8] = [
        Client::ClaudeCode,
        Client::Cursor,
        Client::Codex,
        Client::Vscode,
        Client::ClaudeDesktop,
        Client::GeminiCli,
        Client::CopilotCli,
        Client::Opencode,
    ];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::Codex => "codex",
            Client::Vscode => "vscode",
            Client::ClaudeDesktop => "claude-desktop",
            Client::GeminiCli => "gemini-cli",
            Client::CopilotCli => "copilot-cli",
            Client::Opencode => "opencode",
        }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whose file: the user's (in the home directory) or the project's (in the
/// current directory, usually committed and shared with others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    Project,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::User => "user",
            Scope::Project => "project",
        })
    }
}

/// Why an import or a setup could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    #[error(transparent)]
    EnvFile(#[from] crate::credentials::EnvFileError),
    #[error(transparent)]
    Team(#[from] team::TeamError),
    #[error("{0}")]
    Usage(String),
}

impl ClientsError {
    pub(crate) fn file(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        ClientsError::File { path: path.to_path_buf(), message: message.to_string() }
    }
}

/// Reads a file, `None` when it does not exist.
pub(crate) fn read_optional(path: &std::path::Path) -> Result<Option<String>, ClientsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClientsError::file(path, e)),
    }
}
