//! `mcp-gateway import` and `mcp-gateway setup CLIENT`: the command-line edge
//! (flags, confirmation, output) over [`crate::clients`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::clients::{self, Client, Env, Scope};
use crate::paths;

pub(super) const IMPORT_ABOUT: &str = "\
Copy the MCP servers your clients already define into the gateway config.

Reads (project files from the current directory, the others from $HOME):
  claude-code     .mcp.json; ~/.claude.json (mcpServers, and projects.<this dir or a parent>.mcpServers)
  cursor          .cursor/mcp.json; ~/.cursor/mcp.json
  codex           ~/.codex/config.toml ([mcp_servers.NAME]; $CODEX_HOME moves it)
  vscode          .vscode/mcp.json; the user mcp.json (~/.config/Code/User/, on macOS
                  ~/Library/Application Support/Code/User/)
  claude-desktop  ~/.config/Claude/claude_desktop_config.json
                  (~/Library/Application Support/Claude/ on macOS)

Writes the config the daemon loads (`mcp-gateway config path`; created as YAML if
there is none), keeping its comments and order; the previous version is kept as
<config>.bak. A running daemon picks the new servers up at once.

Secrets are not copied into the config: environment and header values that look
like secrets (names with TOKEN, KEY, SECRET, PASSWORD, PAT, AUTH, CREDENTIAL;
values like ghp_..., sk-..., xox..., long random strings; Authorization headers)
go to the gateway .env beside the config (mode 0600) and the config says
${VAR}. Secret values are never printed.

Entries that already run mcp-gateway-connect, and servers the gateway already
runs, are left out; a name the gateway already uses for something else is
reported, not overwritten; the same name defined differently in two clients is
imported twice (the second gets the client's name as a suffix). VS Code
${input:...} prompts cannot be imported as values: they become ${VAR}s to set in
the gateway .env.

Shows the plan first and asks before writing (on a terminal); elsewhere it only
shows the plan unless --yes is given. Then run `mcp-gateway setup CLIENT` to
point each client at the gateway.";

pub(super) const SETUP_ABOUT: &str = "\
Point a client at the gateway: one `gateway` entry that runs mcp-gateway-connect,
in place of the servers the gateway now runs.

Edits one file: the client's user file (--scope user, the default) or the
project's file in the current directory (--scope project), the same files
`mcp-gateway import` reads:
                  --scope user                                  --scope project
  claude-code     ~/.claude.json (also this dir's local servers) .mcp.json
  cursor          ~/.cursor/mcp.json                            .cursor/mcp.json
  codex           ~/.codex/config.toml                          -
  vscode          ~/.config/Code/User/mcp.json                  .vscode/mcp.json
  claude-desktop  ~/.config/Claude/claude_desktop_config.json   -
(on macOS the last two user files are under ~/Library/Application Support/).

Entries the gateway runs (same command, arguments and environment as a gateway
server) are removed; everything else stays: other servers, other settings, key
order (and comments, in Codex's TOML; a JSON file with comments is not
rewritten: use --print and edit it by hand).

Servers the gateway does not run yet are left in place and listed: run
`mcp-gateway import` first, then setup again (setup never adds servers to the
gateway itself, so what it removes is always already there).

The previous file is kept beside it as <file>.bak-mcp-gateway (an older backup
is never overwritten: the next one is .bak-mcp-gateway.1, ...); the file is
replaced atomically with its own permissions. The shim entry uses the absolute
path of the mcp-gateway-connect beside this binary when there is one.";

/// How `import` and `setup` go from plan to change.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Only show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the plan as JSON (for scripts; applies only with --yes).
    #[arg(long)]
    pub json: bool,
}

/// `mcp-gateway import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Read only this client's files.
    #[arg(long, value_enum, value_name = "CLIENT")]
    pub from: Option<Client>,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// The gateway config to add to (default: the one the daemon loads).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// `mcp-gateway setup CLIENT`.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// The client whose config to rewrite.
    #[arg(value_enum)]
    pub client: Client,
    /// Print the entry to paste into the client's config; change nothing.
    #[arg(long)]
    pub print: bool,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Which of the client's files: the user's (in $HOME) or this project's.
    #[arg(long, value_enum, default_value_t = Scope::User)]
    pub scope: Scope,
    /// The gateway config whose servers count as served (default: the one the daemon loads).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// What to do once the plan is shown.
enum Decision {
    Apply,
    Stop,
}

/// `--yes` applies; a terminal is asked; anything else only gets the plan.
fn decide(dry_run: bool, yes: bool, question: &str, rerun: &str) -> anyhow::Result<Decision> {
    if dry_run {
        return Ok(Decision::Stop);
    }
    if yes {
        return Ok(Decision::Apply);
    }
    if !std::io::stdin().is_terminal() {
        println!("\nNothing was written. Re-run with --yes to apply: {rerun}");
        return Ok(Decision::Stop);
    }
    print!("\n{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(Decision::Apply)
    } else {
        println!("Nothing was written.");
        Ok(Decision::Stop)
    }
}

/// The command line again, with `--yes`, for the "re-run" hint.
fn rerun_hint() -> String {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.insert(0, "mcp-gateway".into());
    args.push("--yes".into());
    args.join(" ")
}

pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process().context("finding the current directory")?;
    let config = paths::config_location(args.config.as_deref()).path;
    let mut plan = clients::import::plan(args.from, &config, &env)?;
    let nothing = plan.add.is_empty();
    if args.apply.json {
        if args.apply.yes && !args.apply.dry_run && !nothing {
            clients::import::apply(&mut plan)?;
            // Applied now for the next command; the JSON on stdout says the rest.
            let _ = crate::control::reload_if_running(&crate::paths::socket_path(None));
        }
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", clients::import::render(&plan, &env));
    if nothing {
        return Ok(ExitCode::SUCCESS);
    }
    let question = format!("Add {} server(s) to {}?", plan.add.len(), env.show(&config));
    if let Decision::Stop = decide(args.apply.dry_run, args.apply.yes, &question, &rerun_hint())? {
        return Ok(ExitCode::SUCCESS);
    }
    let backup = clients::import::apply(&mut plan)?;
    println!(
        "\nAdded {} server(s) to {}{}.",
        plan.add.len(),
        env.show(&config),
        backup.map(|b| format!(" (previous version: {})", env.show(&b))).unwrap_or_default()
    );
    if !plan.dotenv_added.is_empty() {
        println!("Wrote {} to {} (mode 0600).", plan.dotenv_added.join(", "), env.show(&plan.dotenv));
    }
    if !plan.add.is_empty() {
        super::tell_daemon(&config);
    }
    let setups = plan.setups();
    if !setups.is_empty() {
        println!("Next, point the clients at the gateway:\n  {}", setups.join("\n  "));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn setup(args: SetupArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process().context("finding the current directory")?;
    let command = match args.scope {
        clients::Scope::Project => clients::setup::shared_connect_command(),
        clients::Scope::User => clients::setup::connect_command(),
    };
    let connect_args = clients::setup::connect_args();
    if args.print {
        print!("{}", clients::setup::snippet(args.client, args.scope, &env, &command, &connect_args)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = paths::config_location(args.config.as_deref()).path;
    let mut plan = clients::setup::plan(args.client, args.scope, &config, &env, &command, &connect_args)?;
    if args.apply.json {
        if args.apply.yes && !args.apply.dry_run {
            clients::setup::apply(&mut plan)?;
        }
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", clients::setup::render(&plan, &env));
    if !plan.changed {
        return Ok(ExitCode::SUCCESS);
    }
    let question = format!("Rewrite {}?", env.show(&plan.file));
    if let Decision::Stop = decide(args.apply.dry_run, args.apply.yes, &question, &rerun_hint())? {
        return Ok(ExitCode::SUCCESS);
    }
    clients::setup::apply(&mut plan)?;
    println!(
        "\nRewrote {}{}. Restart {} (or reload its MCP servers) to use the gateway.",
        env.show(&plan.file),
        plan.backup.as_ref().map(|b| format!("; the previous version is {}", env.show(b))).unwrap_or_default(),
        plan.client
    );
    let next = clients::setup::next_steps(plan.client, plan.scope);
    if !next.is_empty() {
        println!("{next}");
    }
    Ok(ExitCode::SUCCESS)
}
