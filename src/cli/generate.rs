//! The files generated from the clap definitions of both binaries, committed so
//! that packages need no build step for them: man pages (`man/`) and shell
//! completions (`completions/`). `tests/manpages.rs` fails when either is stale.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use crate::shim::ConnectArgs;

/// The shells whose completions are generated (and packaged).
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The clap commands of both binaries.
fn commands() -> [clap::Command; 2] {
    [Cli::command(), ConnectArgs::command()]
}

/// Writes one man page per command and subcommand (`mcp-gateway-serve.1`, …) into `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for command in commands() {
        clap_mangen::generate_to(command, dir).with_context(|| format!("writing man pages to {}", dir.display()))?;
    }
    Ok(())
}

/// Writes bash, zsh and fish completions for both binaries into `dir`
/// (`mcp-gateway.bash`, `_mcp-gateway`, `mcp-gateway.fish`, and the same for the shim).
pub fn completions(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for command in commands() {
        let mut command = without_hidden_subcommands(command);
        let name = command.get_name().to_string();
        for shell in SHELLS {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, &name, &mut script);
            let mut script = String::from_utf8(script).context("completions are not UTF-8")?;
            if shell == Shell::Bash {
                script = fix_bash_state_labels(&script, &name);
            }
            let path = dir.join(clap_complete::Generator::file_name(&shell, &name));
            std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// clap_complete's bash script tracks the subcommand typed so far in a state
/// (`mcp__gateway__subcmd__service`) but, for a binary with a `-` in its name,
/// spells the `case` arms that use it differently (`mcp__subcmd__gateway__subcmd__service`),
/// so no subcommand's options ever complete (clap-rs/clap#6421, open as of
/// clap_complete 4.6.12). Respell the arms as the state is spelled; once fixed
/// upstream this replaces nothing.
fn fix_bash_state_labels(script: &str, bin: &str) -> String {
    let arm = format!("{}__subcmd__", bin.replace('-', "__subcmd__"));
    let state = format!("{}__subcmd__", bin.replace('-', "__"));
    script.replace(&arm, &state)
}

/// `command` without its hidden subcommands (`manpages`, `completions`):
/// clap_complete offers hidden subcommands like any other, and users have no use
/// for the maintainers' generators. clap cannot remove a subcommand, so this
/// rebuilds the top level around the visible ones (the process is short-lived:
/// leaking its few strings is fine).
fn without_hidden_subcommands(command: clap::Command) -> clap::Command {
    if !command.get_subcommands().any(clap::Command::is_hide_set) {
        return command;
    }
    let leak = |s: &str| -> &'static str { s.to_string().leak() };
    let mut visible = clap::Command::new(leak(command.get_name()))
        .args(command.get_arguments().cloned())
        .subcommands(command.get_subcommands().filter(|sub| !sub.is_hide_set()).cloned())
        .subcommand_required(command.is_subcommand_required_set())
        .arg_required_else_help(command.is_arg_required_else_help_set());
    if let Some(version) = command.get_version() {
        visible = visible.version(leak(version));
    }
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    visible
}
