#!/usr/bin/env bash
# Runs the project's systemd user units under a real `systemd --user` manager.
# Must run inside `unshare -m --propagation private` as root (CI is): it mounts
# a tmpfs on /run/systemd so that sd_booted() is true in this namespace only.
# Everything else lives under the test's directory, so nothing on the machine
# changes. Prints one "<check>: <result>" line per check; exits non-zero on the
# first failure.
# Usage: user-manager.sh UNIT_DIR TEST_DIR DAEMON_BIN SHIM_BIN FIXTURE_SERVER [hold]
# With `hold`, it only starts the socket, prints "hold: SOCKET", and keeps the
# manager running until its stdin closes (the caller drives sessions over the
# socket meanwhile); then it stops the units and checks that nothing is left.
set -euo pipefail
UNITS=$1 T=$2 DAEMON=$3 SHIM=$4 FIXTURE=$5 MODE=${6:-checks}

# The checks wedge the daemon and wait for the watchdog, so it is short there.
# Held for the chaos test, the daemon keeps the shipped unit's: a debug build
# on a loaded machine can miss a 1 s ping, and a watchdog kill would be a
# restart the test did not make (it counts the daemon's starts).
if [ "$MODE" = hold ]; then WATCHDOG=30; else WATCHDOG=2; fi

mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
export HOME="$T/home" XDG_CONFIG_HOME="$T/config" XDG_RUNTIME_DIR="$T/runtime"
mkdir -p "$HOME" "$XDG_CONFIG_HOME/systemd/user" "$XDG_RUNTIME_DIR" "$T/gwhome"
chmod 700 "$XDG_RUNTIME_DIR"
unset MCP_GATEWAY_SOCKET MCP_GATEWAY_CONFIG MCP_GATEWAY_HOME

# The units as a package installs them, with the binary where this build has it.
for unit in "$UNITS"/mcp-gateway*; do
  sed "s|/usr/bin/mcp-gateway|$DAEMON|" "$unit" > "$XDG_CONFIG_HOME/systemd/user/$(basename "$unit")"
done
mkdir -p "$XDG_CONFIG_HOME/systemd/user/mcp-gateway.service.d"
cat > "$XDG_CONFIG_HOME/systemd/user/mcp-gateway.service.d/test.conf" <<CONF
[Service]
Environment=MCP_GATEWAY_HOME=$T/gwhome MCP_GATEWAY_TEST_TAG=${MCP_GATEWAY_TEST_TAG:-} MCP_GATEWAY_LOG=debug
WatchdogSec=$WATCHDOG
RestartSec=200ms
StandardOutput=append:$T/daemon.stderr
StandardError=append:$T/daemon.stderr
[Unit]
# The chaos test kills the daemon many times in a few seconds.
StartLimitIntervalSec=0
CONF
printf 'servers:\n  fx:\n    command: python3\n    args: ["%s", "systemd"]\n' "$FIXTURE" > "$T/gwhome/config.yaml"

/usr/lib/systemd/systemd --user >"$T/manager.log" 2>&1 &
MANAGER=$!
cleanup() { systemctl --user stop mcp-gateway.service mcp-gateway.socket >/dev/null 2>&1 || true; kill "$MANAGER" 2>/dev/null || true; wait "$MANAGER" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do systemctl --user is-system-running >/dev/null 2>&1 && break; sleep 0.1; done

wait_for() { # seconds command...: poll until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done
}
prop() { systemctl --user show mcp-gateway.service -p "$1" --value; }

# The units point at the man pages; let `man` find this build's.
mkdir -p "$T/man/man1" && cp "$UNITS"/../man/*.1 "$T/man/man1/"
export MANPATH="$T/man"
out=$(systemd-analyze --user verify "$XDG_CONFIG_HOME"/systemd/user/mcp-gateway{.socket,.service,-upgrade.path,-upgrade.service} 2>&1) || true
[ -z "$out" ] || { echo "verify: $out"; exit 1; }
echo "verify: clean"

systemctl --user start mcp-gateway.socket
echo "socket: $(systemctl --user is-active mcp-gateway.socket)"
SOCK="$XDG_RUNTIME_DIR/mcp-gateway/gateway.sock"

if [ "$MODE" = hold ]; then
  echo "hold: $SOCK"
  cat > /dev/null || true
  echo "restarts: NRestarts=$(prop NRestarts)"
  # Each start of the daemon logs "mcp-gateway VERSION listening" once.
  echo "daemon starts: $(grep -c 'daemon: mcp-gateway .* listening' "$T/daemon.stderr" || true)"
  systemctl --user stop mcp-gateway.service mcp-gateway.socket
  wait_for 20 bash -c '! pgrep -f "fixture_server[.]py systemd" >/dev/null'
  echo "stop: no backend left"
  exit 0
fi

call() { # one session: initialize, call fx__echo, print the reply text
  printf '%s\n' \
    '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}' \
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"message":"ok"}}}' |
    timeout 30 python3 -c '
import json, subprocess, sys
shim = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
for line in sys.stdin:
    shim.stdin.write(line.encode()); shim.stdin.flush()
    while True:
        reply = json.loads(shim.stdout.readline())
        if reply.get("id") == json.loads(line)["id"]:
            break
print(reply["result"]["content"][0]["text"] if "result" in reply else reply)
' "$SHIM" --no-autostart --socket "$SOCK"
}

# A held session, to see it in the status text.
mkfifo "$T/hold"
(sleep 600 > "$T/hold") & HOLDER=$!
"$SHIM" --no-autostart --socket "$SOCK" < "$T/hold" > /dev/null 2>&1 & HELD=$!
echo "echo: $(call | sed 's/^systemd: //')"
wait_for 20 bash -c '[ "$(systemctl --user show mcp-gateway.service -p ActiveState --value)" = active ]'
echo "service: $(prop ActiveState)"
wait_for 20 bash -c 'systemctl --user show mcp-gateway.service -p StatusText --value | grep -q "1 session(s)"'
echo "status: $(prop StatusText)"
kill "$HOLDER" "$HELD" 2>/dev/null || true

# A wedged daemon: the watchdog kills it and systemd starts it again.
PID=$(prop MainPID)
kill -STOP "$PID"
wait_for 30 bash -c '[ "$(systemctl --user show mcp-gateway.service -p NRestarts --value)" -ge 1 ]'
wait_for 30 bash -c '[ "$(systemctl --user show mcp-gateway.service -p ActiveState --value)" = active ] || [ "$(systemctl --user show mcp-gateway.socket -p ActiveState --value)" = active ]'
[ "$(call)" = "systemd: ok" ] || { echo "watchdog: the service did not come back"; exit 1; }
echo "watchdog: restarted (NRestarts=$(prop NRestarts), Result after restart=$(prop Result))"

# Stopping leaves no backend behind.
systemctl --user stop mcp-gateway.service mcp-gateway.socket
# (The bracket keeps pgrep from matching this very command line.)
wait_for 20 bash -c '! pgrep -f "fixture_server[.]py systemd" >/dev/null'
echo "stop: no backend left"

# `mcp-gateway service install` for real: it replaces the units with copies
# that name this binary, enables the socket, and `service status` says so;
# `service uninstall` takes it all away again.
rm -f "$XDG_CONFIG_HOME"/systemd/user/mcp-gateway*.{socket,service,path}
"$DAEMON" service install > "$T/install.out"
grep -qx "ExecStart=$DAEMON serve" "$XDG_CONFIG_HOME/systemd/user/mcp-gateway.service" ||
  { echo "install: the unit does not run $DAEMON"; exit 1; }
echo "install: socket $(systemctl --user is-enabled mcp-gateway.socket), $(systemctl --user is-active mcp-gateway.socket)"
"$DAEMON" service status > "$T/status.out" || { echo "service status: exit $?"; cat "$T/status.out"; exit 1; }
grep -q "^mcp-gateway.socket *enabled, active" "$T/status.out" || { echo "service status: $(cat "$T/status.out")"; exit 1; }
echo "service status: installed, enabled, active"
[ "$(call)" = "systemd: ok" ] || { echo "installed: no answer"; exit 1; }
echo "installed: echo ok"
"$DAEMON" service uninstall > "$T/uninstall.out"
[ ! -e "$XDG_CONFIG_HOME/systemd/user/mcp-gateway.socket" ] || { echo "uninstall: the unit is still there"; exit 1; }
code=0; "$DAEMON" service status > "$T/status.out" || code=$?
echo "uninstall: removed, socket $(systemctl --user is-active mcp-gateway.socket || true), status exit $code"
wait_for 20 bash -c '! pgrep -f "fixture_server[.]py systemd" >/dev/null'
