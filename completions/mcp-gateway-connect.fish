complete -c mcp-gateway-connect -l socket -d 'The daemon\'s socket' -r -F
complete -c mcp-gateway-connect -l profile -d 'The profile this client\'s session uses' -r
complete -c mcp-gateway-connect -l entry -d 'The name of the client\'s config entry that runs this shim, when it is not `gateway` (`setup` writes it): clients put it in front of every tool name, so the gateway keeps names short enough for it' -r
complete -c mcp-gateway-connect -l no-autostart -d 'Fail instead of starting the daemon when nothing listens'
complete -c mcp-gateway-connect -s h -l help -d 'Print help'
complete -c mcp-gateway-connect -s V -l version -d 'Print version'
