# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mcp_gateway_global_optspecs
    string join \n h/help V/version
end

function __fish_mcp_gateway_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mcp_gateway_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mcp_gateway_using_subcommand
    set -l cmd (__fish_mcp_gateway_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -s V -l version -d 'Print version'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "serve" -d 'Run the daemon in the foreground (what the service manager or the shim starts)'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "status" -d 'Show the running daemon: each backend (sharing key, state, pid, memory, uptime, restarts, sessions), each session (client, workspace, profile), and what per-terminal spawning would cost instead'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "servers" -d 'List, add, remove, enable or disable servers in the config (the daemon applies each edit at once; comments and order are kept, the previous file is kept as `<file>.bak`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "logs" -d 'Show the daemon\'s log, or a server\'s captured stderr'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "restart" -d 'Stop a server\'s running instances now; its next call starts a fresh one (backoff and circuit breaker reset). Calls in flight on them fail'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "auth" -d 'Log in to remote servers that need OAuth, see their logins, forget them (all through the daemon, which keeps and refreshes the tokens for every terminal)'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "stop" -d 'Stop the running daemon (its backends are stopped with it)'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "config" -d 'Check or locate the config file'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "service" -d 'Install, remove or inspect the per-user service (systemd user units, or a LaunchAgent on macOS) that starts the daemon on the first connect'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "doctor" -d 'Check the setup (socket, permissions, service, config, each server\'s command, Node/npx/uvx/docker) and say what to do about each problem'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "import" -d 'Copy the MCP servers your clients (Claude Code, Cursor, Codex, VS Code, Claude Desktop) define into the gateway config'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "setup" -d 'Point a client at the gateway: one mcp-gateway-connect entry in place of the servers the gateway now runs'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "federate" -d 'Register the HTTP front door in a team gateway (IBM ContextForge) as a federated peer, so the team gateway reaches this machine\'s servers of one profile'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -l config -d 'The config file (YAML or TOML, by extension)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -l socket -d 'The Unix socket to listen on' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -l worker-threads -d 'Threads that run sessions and backends. One is the fastest for a per-user daemon: every call is a few hops between tasks, and a second thread mostly adds wake-ups between threads (measured in BENCHMARKS.md); more only help many busy terminals on many cores' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand status" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand status" -l json -d 'Print JSON (stable: see `schema_version`) instead of a table'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand status" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -f -a "list" -d 'List the configured servers, with their state in the running daemon'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -f -a "add" -d 'Add a server: from the catalog by name (`mcp-gateway servers add memory`), or a command (`… add NAME -- npx -y PACKAGE`), or a URL (`--url`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -f -a "remove" -d 'Remove a server (its running instances finish their calls, then stop)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -f -a "enable" -d 'Turn a server back on'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -f -a "disable" -d 'Turn a server off without removing it (`enabled: false`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and not __fish_seen_subcommand_from list add remove enable disable help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from list" -l config -d 'The config file (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from list" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l url -d 'A remote server\'s URL (MCP Streamable HTTP, or the older HTTP+SSE)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l env -d 'An environment variable for the server, `NAME=VALUE` (use `NAME=${VAR}` to take the value from the credential sources)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l header -d 'An HTTP header for a remote server, `NAME=VALUE`' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l share -d 'Who shares one process: global, workspace, credential or session' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l scope -d 'Which file to change' -r -f -a "global\t'The gateway config: every session sees the server'
workspace\t'The `.mcp-gateway.yaml` of the current directory\'s workspace: only sessions there see it, and only once the config trusts that workspace'"
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l config -d 'The config file (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l test -d 'Start the server once (not through the daemon) and list its tools before writing anything'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -l no-prefetch -d 'Do not list the new server now (through the running daemon, else in this process) for the catalog; it is listed on its first use'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from remove" -l scope -r -f -a "global\t'The gateway config: every session sees the server'
workspace\t'The `.mcp-gateway.yaml` of the current directory\'s workspace: only sessions there see it, and only once the config trusts that workspace'"
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from remove" -l config -d 'The config file (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from remove" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from enable" -l scope -r -f -a "global\t'The gateway config: every session sees the server'
workspace\t'The `.mcp-gateway.yaml` of the current directory\'s workspace: only sessions there see it, and only once the config trusts that workspace'"
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from enable" -l config -d 'The config file (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from enable" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from disable" -l scope -r -f -a "global\t'The gateway config: every session sees the server'
workspace\t'The `.mcp-gateway.yaml` of the current directory\'s workspace: only sessions there see it, and only once the config trusts that workspace'"
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from disable" -l config -d 'The config file (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from disable" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the configured servers, with their state in the running daemon'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a server: from the catalog by name (`mcp-gateway servers add memory`), or a command (`… add NAME -- npx -y PACKAGE`), or a URL (`--url`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a server (its running instances finish their calls, then stop)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Turn a server back on'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Turn a server off without removing it (`enabled: false`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand servers; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand logs" -s n -l lines -d 'How many of the last lines to show first' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand logs" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand logs" -s f -l follow -d 'Keep printing new lines as they come'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand logs" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand restart" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand restart" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "login" -d 'Log in to a remote server: the daemon discovers its authorization server, opens the browser (`$MCP_GATEWAY_BROWSER`, else `$BROWSER`, else `xdg-open`/`open`, given the URL) and waits for it to come back'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "status" -d 'Each remote server\'s login: state, issuer, scopes, expiry, how the gateway is registered (never a token)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "logout" -d 'Forget a server\'s tokens (the next call needs a login again)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from login" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from login" -l no-browser -d 'Open no browser: print the URL, and take the address the browser ends on (`http://127.0.0.1:…/callback?…`, pasted on stdin) when it cannot reach this machine (SSH, headless)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from status" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of a table'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from logout" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from logout" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "login" -d 'Log in to a remote server: the daemon discovers its authorization server, opens the browser (`$MCP_GATEWAY_BROWSER`, else `$BROWSER`, else `xdg-open`/`open`, given the URL) and waits for it to come back'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "status" -d 'Each remote server\'s login: state, issuer, scopes, expiry, how the gateway is registered (never a token)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "logout" -d 'Forget a server\'s tokens (the next call needs a login again)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand stop" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand stop" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and not __fish_seen_subcommand_from check path help" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and not __fish_seen_subcommand_from check path help" -f -a "check" -d 'Check a config file: prints the file, line and reason of the first error'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and not __fish_seen_subcommand_from check path help" -f -a "path" -d 'Print the path of the config file the daemon would load'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and not __fish_seen_subcommand_from check path help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and __fish_seen_subcommand_from path" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check a config file: prints the file, line and reason of the first error'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "path" -d 'Print the path of the config file the daemon would load'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status plist help" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status plist help" -f -a "install" -d 'Write the service files with this binary\'s absolute path and enable the socket'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status plist help" -f -a "uninstall" -d 'Disable and remove the service files'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status plist help" -f -a "status" -d 'Whether the service files are installed, and the socket enabled and listening'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status plist help" -f -a "plist" -d 'Print the LaunchAgent plist this binary would install (any OS)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status plist help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from install" -l dry-run -d 'Only print what would be written'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from plist" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write the service files with this binary\'s absolute path and enable the socket'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Disable and remove the service files'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "status" -d 'Whether the service files are installed, and the socket enabled and listening'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "plist" -d 'Print the LaunchAgent plist this binary would install (any OS)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand doctor" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand doctor" -l json -d 'Print JSON instead of text'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l from -d 'Read only this client\'s files (claude-code, cursor, codex, vscode, claude-desktop, gemini-cli, copilot-cli, opencode), or a team gateway\'s virtual servers (its base URL, `https://…`: IBM ContextForge)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l token -d 'With --from URL: the team gateway\'s bearer token (a JWT or API token). Kept in the gateway .env, never in the config; prefer the variable to the flag, which other users can see in the process list' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l prefix -d 'With --from URL: put this before every imported server\'s name (`team-`)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l config -d 'The gateway config to add to (default: the one the daemon loads)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l socket -d 'The daemon\'s socket (default: see "Files" in `mcp-gateway --help`)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l no-prefetch -d 'Do not list the new servers now for the catalog; each is listed on its first use'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l dry-run -d 'Only show what would change; write nothing'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -s y -l yes -d 'Apply without asking'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -l json -d 'Print the plan as JSON (for scripts; applies only with --yes)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -l scope -d 'Which of the client\'s files: the user\'s (in $HOME) or this project\'s' -r -f -a "user\t''
project\t''"
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -l config -d 'The gateway config whose servers count as served (default: the one the daemon loads)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -l print -d 'Print the entry to paste into the client\'s config; change nothing'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -l dry-run -d 'Only show what would change; write nothing'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -s y -l yes -d 'Apply without asking'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -l json -d 'Print the plan as JSON (for scripts; applies only with --yes)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand setup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l profile -d 'The profile whose servers the team gateway may reach (the front-door token mapped to it is what it gets)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l name -d 'The peer\'s name in the team gateway (default: `$USER-PROFILE`)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l front-door-url -d 'The front door\'s MCP URL as the team gateway reaches it (default: http://<http.listen>/mcp)' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l visibility -d 'Who in the team gateway sees the peer: private (you), team or public' -r -f -a "private\t''
team\t''
public\t''"
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l token -d 'The team gateway\'s bearer token (a JWT or API token); prefer the variable' -r
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l config -d 'The gateway config (default: the one the daemon loads)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -l print -d 'Print the registration (the token as where it comes from) and send nothing'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand federate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "serve" -d 'Run the daemon in the foreground (what the service manager or the shim starts)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "status" -d 'Show the running daemon: each backend (sharing key, state, pid, memory, uptime, restarts, sessions), each session (client, workspace, profile), and what per-terminal spawning would cost instead'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "servers" -d 'List, add, remove, enable or disable servers in the config (the daemon applies each edit at once; comments and order are kept, the previous file is kept as `<file>.bak`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "logs" -d 'Show the daemon\'s log, or a server\'s captured stderr'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "restart" -d 'Stop a server\'s running instances now; its next call starts a fresh one (backoff and circuit breaker reset). Calls in flight on them fail'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "auth" -d 'Log in to remote servers that need OAuth, see their logins, forget them (all through the daemon, which keeps and refreshes the tokens for every terminal)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "stop" -d 'Stop the running daemon (its backends are stopped with it)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "config" -d 'Check or locate the config file'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "service" -d 'Install, remove or inspect the per-user service (systemd user units, or a LaunchAgent on macOS) that starts the daemon on the first connect'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "doctor" -d 'Check the setup (socket, permissions, service, config, each server\'s command, Node/npx/uvx/docker) and say what to do about each problem'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "import" -d 'Copy the MCP servers your clients (Claude Code, Cursor, Codex, VS Code, Claude Desktop) define into the gateway config'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "setup" -d 'Point a client at the gateway: one mcp-gateway-connect entry in place of the servers the gateway now runs'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "federate" -d 'Register the HTTP front door in a team gateway (IBM ContextForge) as a federated peer, so the team gateway reaches this machine\'s servers of one profile'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status servers logs restart auth stop config service doctor import setup federate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from servers" -f -a "list" -d 'List the configured servers, with their state in the running daemon'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from servers" -f -a "add" -d 'Add a server: from the catalog by name (`mcp-gateway servers add memory`), or a command (`… add NAME -- npx -y PACKAGE`), or a URL (`--url`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from servers" -f -a "remove" -d 'Remove a server (its running instances finish their calls, then stop)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from servers" -f -a "enable" -d 'Turn a server back on'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from servers" -f -a "disable" -d 'Turn a server off without removing it (`enabled: false`)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "login" -d 'Log in to a remote server: the daemon discovers its authorization server, opens the browser (`$MCP_GATEWAY_BROWSER`, else `$BROWSER`, else `xdg-open`/`open`, given the URL) and waits for it to come back'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "status" -d 'Each remote server\'s login: state, issuer, scopes, expiry, how the gateway is registered (never a token)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "logout" -d 'Forget a server\'s tokens (the next call needs a login again)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check a config file: prints the file, line and reason of the first error'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "path" -d 'Print the path of the config file the daemon would load'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "install" -d 'Write the service files with this binary\'s absolute path and enable the socket'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "uninstall" -d 'Disable and remove the service files'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "status" -d 'Whether the service files are installed, and the socket enabled and listening'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "plist" -d 'Print the LaunchAgent plist this binary would install (any OS)'
