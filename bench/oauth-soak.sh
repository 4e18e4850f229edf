#!/usr/bin/env bash
# The OAuth soak: SESSIONS concurrent sessions (default 10) on one daemon call
# a remote server behind a local authorization server that issues TTL-second
# access tokens (default 60) and single-use rotating refresh tokens (a used
# one is answered `invalid_grant`), for DURATION seconds. It counts forced
# logins, `invalid_grant`s and failed calls (each must be 0) and refreshes
# against token lifetimes (one refresh per expiry, not one per session).
# Run by hand, not in CI:
#
#   bash bench/oauth-soak.sh                  # a 3-minute smoke run
#   DURATION=1800 bash bench/oauth-soak.sh    # the published 30-minute soak
#
# Everything listens on loopback. The result is one JSON line on stdout and
# in bench/results/oauth-soak.json; the exit status is 1 when a count is off.
# BIN (a directory with mcp-gateway and mcp-gateway-connect) skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DURATION="${DURATION:-180}"
SESSIONS="${SESSIONS:-10}"
TTL="${TTL:-60}"
INTERVAL="${INTERVAL:-1}"
log() { echo "oauth-soak: $*" >&2; }

eval "$(bash tests/support/deps.sh | sed 's/^/export /')"
if [ -z "${BIN:-}" ]; then
  log "building"
  cargo build --quiet --bins
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
fi

WORK="$(mktemp -d)"
PORT="$("$MCP_TEST_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export MCP_GATEWAY_HOME="$WORK/home" MCP_GATEWAY_SOCKET="$WORK/gw.sock" MCP_GATEWAY_BIN="$BIN/mcp-gateway"
unset MCP_GATEWAY_CONFIG
AS_PID="" GW_PID=""
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && { wait "$GW_PID" 2>/dev/null || true; }
  [ -n "$AS_PID" ] && kill "$AS_PID" 2>/dev/null && { wait "$AS_PID" 2>/dev/null || true; }
  rm -rf "$WORK"
  return 0
}
trap 'status=$?; cleanup; exit $status' EXIT
mkdir -p "$MCP_GATEWAY_HOME"
printf 'servers:\n  remote:\n    url: "http://127.0.0.1:%s/mcp"\n' "$PORT" >"$MCP_GATEWAY_HOME/config.yaml"

"$MCP_TEST_PYTHON" tests/fixtures/oauth_server.py "$PORT" --ttl "$TTL" &
AS_PID=$!
"$BIN/mcp-gateway" serve 2>"$WORK/daemon.log" &
GW_PID=$!
for _ in $(seq 100); do
  [ -S "$MCP_GATEWAY_SOCKET" ] && "$MCP_TEST_PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/stats')" 2>/dev/null && break
  sleep 0.2
done

log "logging in once (the only login the soak may see)"
MCP_GATEWAY_BROWSER="$MCP_TEST_PYTHON $ROOT/tests/fixtures/browser_follow.py" \
  "$BIN/mcp-gateway" auth login remote >/dev/null 2>"$WORK/login.log" || { cat "$WORK/login.log" >&2; exit 1; }

log "$SESSIONS sessions for $DURATION s, ${TTL}-second access tokens"
RESULT="$("$MCP_TEST_PYTHON" bench/oauth_soak.py "$BIN/mcp-gateway-connect" "http://127.0.0.1:$PORT/stats" \
  "$DURATION" "$SESSIONS" "$INTERVAL")"
mkdir -p bench/results
echo "$RESULT" | tee bench/results/oauth-soak.json
# No token the store holds may appear in what the daemon wrote.
"$MCP_TEST_PYTHON" - "$MCP_GATEWAY_HOME/oauth" "$WORK/daemon.log" <<'PY'
import json, pathlib, sys
log = pathlib.Path(sys.argv[2]).read_text()
for f in pathlib.Path(sys.argv[1]).glob("*.json"):
    tokens = json.loads(f.read_text()).get("tokens") or {}
    for field in ("access_token", "refresh_token"):
        if tokens.get(field) and tokens[field] in log:
            sys.exit(f"oauth-soak: the daemon's log holds the {field}")
PY
echo "$RESULT" | "$MCP_TEST_PYTHON" -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["ok"] else 1)'
