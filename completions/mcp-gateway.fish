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
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "status" -d 'Show the running daemon\'s backends and sessions'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "stop" -d 'Stop the running daemon (its backends are stopped with it)'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "config" -d 'Check or locate the config file'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "service" -d 'Install the per-user service (systemd user units, or a LaunchAgent on macOS)'
complete -c mcp-gateway -n "__fish_mcp_gateway_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -l config -d 'The config file (YAML or TOML, by extension)' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -l socket -d 'The Unix socket to listen on' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand serve" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand status" -l socket -d 'The daemon\'s socket' -r -F
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand status" -l json -d 'Print JSON instead of a table'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand status" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand stop" -l socket -d 'The daemon\'s socket' -r -F
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
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall plist help" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall plist help" -f -a "install" -d 'Write the service files with this binary\'s absolute path and enable the socket'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall plist help" -f -a "uninstall" -d 'Disable and remove the service files'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall plist help" -f -a "plist" -d 'Print the LaunchAgent plist this binary would install (any OS)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and not __fish_seen_subcommand_from install uninstall plist help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from install" -l dry-run -d 'Only print what would be written'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from plist" -s h -l help -d 'Print help'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write the service files with this binary\'s absolute path and enable the socket'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Disable and remove the service files'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "plist" -d 'Print the LaunchAgent plist this binary would install (any OS)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status stop config service help" -f -a "serve" -d 'Run the daemon in the foreground (what the service manager or the shim starts)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status stop config service help" -f -a "status" -d 'Show the running daemon\'s backends and sessions'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status stop config service help" -f -a "stop" -d 'Stop the running daemon (its backends are stopped with it)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status stop config service help" -f -a "config" -d 'Check or locate the config file'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status stop config service help" -f -a "service" -d 'Install the per-user service (systemd user units, or a LaunchAgent on macOS)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and not __fish_seen_subcommand_from serve status stop config service help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check a config file: prints the file, line and reason of the first error'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "path" -d 'Print the path of the config file the daemon would load'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "install" -d 'Write the service files with this binary\'s absolute path and enable the socket'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "uninstall" -d 'Disable and remove the service files'
complete -c mcp-gateway -n "__fish_mcp_gateway_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "plist" -d 'Print the LaunchAgent plist this binary would install (any OS)'
