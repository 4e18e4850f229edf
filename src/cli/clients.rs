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
  gemini-cli      .gemini/settings.json; ~/.gemini/settings.json
  copilot-cli     ~/.copilot/mcp-config.json ($COPILOT_HOME moves it)
  opencode        opencode.json (or .jsonc); ~/.config/opencode/opencode.json (or .jsonc)

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
shows the plan unless --yes is given. Each server added is then listed once
(through the running daemon, else in this process) so its tools are in the
catalog before the first client attaches. Then run `mcp-gateway setup CLIENT`
to point each client at the gateway.

A team gateway: `--from URL` (its base URL) reads the virtual servers of an IBM
ContextForge gateway (GET <URL>/servers) with the bearer token in
$MCP_GATEWAY_TEAM_TOKEN (or --token), and adds each as a remote server at its
MCP endpoint, <URL>/servers/<id>/mcp, named after it in lower case (with
--prefix before it; a taken name gets the first 8 characters of the id). The
token goes to the gateway .env as TEAM_GATEWAY_TOKEN (<PREFIX>_TOKEN with a
prefix) and each server's `Authorization: Bearer ${VAR}` names it. Virtual
servers the config already points at are left out.";

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
  gemini-cli      ~/.gemini/settings.json                       .gemini/settings.json
  copilot-cli     ~/.copilot/mcp-config.json                    - (it reads .mcp.json: claude-code's)
  opencode        ~/.config/opencode/opencode.json (or .jsonc)  opencode.json (or .jsonc)
(on macOS the vscode and claude-desktop user files are under ~/Library/Application Support/).

Entries the gateway runs (same command, arguments and environment as a gateway
server) are removed; everything else stays: other servers, other settings, key
order and comments (a JSON file with comments is edited in place).

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
    /// Read only this client's files (claude-code, cursor, codex, vscode,
    /// claude-desktop, gemini-cli, copilot-cli, opencode), or a team gateway's
    /// virtual servers (its base URL, `https://…`: IBM ContextForge).
    #[arg(long, value_name = "CLIENT|URL", value_parser = parse_source)]
    pub from: Option<Source>,
    /// With --from URL: the team gateway's bearer token (a JWT or API token).
    /// Kept in the gateway .env, never in the config; prefer the variable to
    /// the flag, which other users can see in the process list.
    #[arg(long, value_name = "TOKEN", env = "MCP_GATEWAY_TEAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With --from URL: put this before every imported server's name (`team-`).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Do not list the new servers now for the catalog; each is listed on its first use.
    #[arg(long)]
    pub no_prefetch: bool,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// The gateway config to add to (default: the one the daemon loads).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub socket: super::SocketArg,
}

/// What `import --from` reads.
#[derive(Debug, Clone)]
pub enum Source {
    Client(Client),
    /// A team gateway's base URL.
    Team(String),
}

fn parse_source(text: &str) -> Result<Source, String> {
    if text.contains("://") {
        return Ok(Source::Team(text.to_string()));
    }
    <Client as clap::ValueEnum>::from_str(text, true).map(Source::Client).map_err(|_| {
        let names: Vec<&str> = Client::ALL.iter().map(|c| c.name()).collect();
        format!("neither a client ({}) nor a team gateway's URL (http://… or https://…)", names.join(", "))
    })
}

pub(super) const FEDERATE_ABOUT: &str = "\
Register the HTTP front door in a team gateway (IBM ContextForge: POST <URL>/gateways)
as a federated peer, so the team gateway reaches this machine's servers, and only
those of one profile.

The front door must be on (an `http:` section) with a bearer token mapped to the
profile, its value in the gateway .env:

  profiles: { team: { servers: [docs, search] } }
  http:
    listen: \"0.0.0.0:8989\"
    allowed_hosts: [\"laptop.example.com:8989\"]
    auth: { bearer_tokens: [{ token: \"${PEER_TOKEN}\", profile: team }] }

The team gateway is given the front door's URL (http://<http.listen>/mcp, or
--front-door-url) and that token; it connects, lists the profile's tools (as
<name>-<tool>) and calls them through the front door, like any of its peers. A
front door on loopback is refused for a team gateway on another machine, which
could not reach it. The peer is private to you in the team gateway unless
--visibility says otherwise; --print shows the registration (without the token)
and sends nothing. The team gateway's token comes from $MCP_GATEWAY_TEAM_TOKEN
(or --token).";

/// `mcp-gateway federate URL --profile NAME`.
#[derive(Debug, clap::Args)]
pub struct FederateArgs {
    /// The team gateway's base URL.
    pub url: String,
    /// The profile whose servers the team gateway may reach (the front-door token mapped to it is what it gets).
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// The peer's name in the team gateway (default: `$USER-PROFILE`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The front door's MCP URL as the team gateway reaches it (default: http://<http.listen>/mcp).
    #[arg(long, value_name = "URL")]
    pub front_door_url: Option<String>,
    /// Who in the team gateway sees the peer: private (you), team or public.
    #[arg(long, value_name = "WHO", default_value = "private", value_parser = ["private", "team", "public"])]
    pub visibility: String,
    /// The team gateway's bearer token (a JWT or API token); prefer the variable.
    #[arg(long, value_name = "TOKEN", env = "MCP_GATEWAY_TEAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the registration (the token as where it comes from) and send nothing.
    #[arg(long)]
    pub print: bool,
    /// The gateway config (default: the one the daemon loads).
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

/// The command line again, with `--yes`, for the "re-run" hint (a token
/// given as `--token` is not repeated: it is shown as `…`).
fn rerun_hint() -> String {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut after_token = false;
    for arg in &mut args {
        if std::mem::take(&mut after_token) {
            *arg = "…".into();
        } else if arg == "--token" {
            after_token = true;
        } else if arg.starts_with("--token=") {
            *arg = "--token=…".into();
        }
    }
    args.insert(0, "mcp-gateway".into());
    args.push("--yes".into());
    args.join(" ")
}

pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process().context("finding the current directory")?;
    let config = paths::config_location(args.config.as_deref()).path;
    let socket = args.socket.path();
    let from = match &args.from {
        Some(Source::Team(url)) => return import_team(url, &args, &config, &socket, &env),
        Some(Source::Client(client)) => Some(*client),
        None => None,
    };
    if args.prefix.is_some() {
        anyhow::bail!("--prefix is for a team gateway's servers (`--from URL`)");
    }
    let mut plan = clients::import::plan(from, &config, &env)?;
    let nothing = plan.add.is_empty();
    let names: Vec<String> =
        if args.no_prefetch { Vec::new() } else { plan.add.iter().map(|p| p.name.clone()).collect() };
    if args.apply.json {
        if args.apply.yes && !args.apply.dry_run && !nothing {
            clients::import::apply(&mut plan)?;
            // Applied now for the next command; the JSON on stdout says the rest.
            let _ = crate::control::reload_if_running(&socket);
            super::servers::prefetch(&config, &socket, &names);
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
    super::tell_daemon(&config, &socket);
    super::servers::print_prefetched(&super::servers::prefetch(&config, &socket, &names));
    let setups = plan.setups();
    if !setups.is_empty() {
        println!("Next, point the clients at the gateway:\n  {}", setups.join("\n  "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `import --from URL`: a team gateway's virtual servers.
fn import_team(
    url: &str,
    args: &ImportArgs,
    config: &std::path::Path,
    socket: &std::path::Path,
    env: &Env,
) -> anyhow::Result<ExitCode> {
    use clients::team;
    let base = team::base_url(url)?;
    let token = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let prefix = match args.prefix.as_deref() {
        Some(p) if !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
            anyhow::bail!("--prefix {p:?}: a server name may only use letters, digits, `_` and `-`")
        }
        Some(p) => p,
        None => "",
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let catalog = runtime.block_on(team::fetch_catalog(&base, token))?;
    let mut plan = team::plan(&base, &catalog, token, prefix, config)?;
    let nothing = plan.add.is_empty();
    let names = if args.no_prefetch { Vec::new() } else { plan.names() };
    if args.apply.json {
        if args.apply.yes && !args.apply.dry_run && !nothing {
            team::apply(&mut plan)?;
            let _ = crate::control::reload_if_running(socket);
            super::servers::prefetch(config, socket, &names);
        }
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", team::render(&plan, &|p| env.show(p)));
    if nothing {
        return Ok(ExitCode::SUCCESS);
    }
    let question = format!("Add {} server(s) to {}?", plan.add.len(), env.show(config));
    if let Decision::Stop = decide(args.apply.dry_run, args.apply.yes, &question, &rerun_hint())? {
        return Ok(ExitCode::SUCCESS);
    }
    let backup = team::apply(&mut plan)?;
    println!(
        "\nAdded {} server(s) to {}{}.",
        plan.add.len(),
        env.show(config),
        backup.map(|b| format!(" (previous version: {})", env.show(&b))).unwrap_or_default()
    );
    if !plan.dotenv_added.is_empty() {
        println!("Wrote {} to {} (mode 0600).", plan.dotenv_added.join(", "), env.show(&plan.dotenv));
    }
    super::tell_daemon(config, socket);
    super::servers::print_prefetched(&super::servers::prefetch(config, socket, &names));
    println!("Their tools appear in every client under `<server>__<tool>`.");
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

/// `mcp-gateway federate URL --profile NAME`.
pub fn federate(args: FederateArgs) -> anyhow::Result<ExitCode> {
    use clients::peer;
    let config = paths::config_location(args.config.as_deref()).path;
    let registration = peer::registration(
        &config,
        &args.url,
        &args.profile,
        args.name.as_deref(),
        args.front_door_url.as_deref(),
        &args.visibility,
    )?;
    if args.print {
        println!("POST {}/gateways", crate::redact::redacted_url(&registration.team_gateway).trim_end_matches('/'));
        println!("{}", serde_json::to_string_pretty(&registration.body(false))?);
        return Ok(ExitCode::SUCCESS);
    }
    let token = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let registered = runtime.block_on(peer::register(&registration, token))?;
    println!(
        "registered the front door ({}, profile `{}`) in the team gateway at {} as `{}` (id {}, visibility {})",
        registration.front_door,
        registration.profile,
        crate::redact::redacted_url(&registration.team_gateway),
        registration.name,
        registered.id,
        registration.visibility
    );
    if registered.tools.is_empty() {
        println!("it lists no tools from it yet");
    } else {
        println!("it lists {} tool(s) from it: {}", registered.tools.len(), registered.tools.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
