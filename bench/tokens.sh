#!/usr/bin/env bash
# Measures what `tools/list` costs a client, in bytes and estimated tokens
# (bytes / 4, a rough rule for JSON), in `full` and `lazy` mode, with 1, 5 and
# 15 servers: real servers from npm and PyPI (pinned), the rest synthetic (the
# test fixture's "many" mode: 29 tools with realistic schemas each).
# Writes a Markdown table to stdout. Not a test: nothing here asserts.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${MCP_GATEWAY_BENCH_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-bench-deps}"
SEQ_VERSION=2026.8.31
FETCH_VERSION=2026.10.24
GIT_VERSION=2026.10.19
TIME_VERSION=2026.10.19
PINS="seq=$SEQ_VERSION fetch=$FETCH_VERSION git=$GIT_VERSION time=$TIME_VERSION"

eval "$(bash tests/support/deps.sh | sed 's/^/export /')"
mkdir -p "$CACHE"
if [ "$(cat "$CACHE/.installed" 2>/dev/null)" != "$PINS" ]; then
  echo "bench: installing pinned servers into $CACHE" >&2
  rm -rf "$CACHE/npm" "$CACHE/venv"
  mkdir -p "$CACHE/npm"
  (cd "$CACHE/npm" && echo '{"private":true}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error "@modelcontextprotocol/server-sequential-thinking@$SEQ_VERSION" >&2)
  python3 -m venv "$CACHE/venv" >&2
  "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check \
    "mcp-server-fetch==$FETCH_VERSION" "mcp-server-git==$GIT_VERSION" "mcp-server-time==$TIME_VERSION" >&2
  echo "$PINS" > "$CACHE/.installed"
fi

cargo build --release --quiet
BIN="$PWD/target/release"
WORK="$(mktemp -d)"
trap 'MCP_GATEWAY_SOCKET="$WORK/gw.sock" "$BIN/mcp-gateway" stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
git init -q "$WORK/repo"

server() { # name → the YAML body of a server
  local fixture="$PWD/tests/fixtures/fixture_server.py"
  case "$1" in
    everything) printf '    command: %s\n    args: ["%s", "stdio"]\n' "$MCP_TEST_NODE" "$MCP_TEST_EVERYTHING_JS" ;;
    filesystem) printf '    command: %s\n    args: ["%s", "%s"]\n' "$MCP_TEST_NODE" "$MCP_TEST_FILESYSTEM_JS" "$WORK" ;;
    memory) printf '    command: %s\n    args: ["%s"]\n    env: { MEMORY_FILE_PATH: "%s/memory.json" }\n' "$MCP_TEST_NODE" "$MCP_TEST_MEMORY_JS" "$WORK" ;;
    sequential-thinking) printf '    command: %s\n    args: ["%s/npm/node_modules/@modelcontextprotocol/server-sequential-thinking/dist/index.js"]\n' "$MCP_TEST_NODE" "$CACHE" ;;
    fetch) printf '    command: %s/venv/bin/mcp-server-fetch\n' "$CACHE" ;;
    git) printf '    command: %s/venv/bin/mcp-server-git\n    args: ["--repository", "%s/repo"]\n' "$CACHE" "$WORK" ;;
    time) printf '    command: %s/venv/bin/mcp-server-time\n' "$CACHE" ;;
    synthetic-*) printf '    command: python3\n    args: ["%s", "many-%s"]\n' "$fixture" "${1#synthetic-}" ;;
  esac
}

measure() { # mode servers... → "bytes tools"
  local mode=$1; shift
  { echo "tools: $mode"; echo "servers:"; for s in "$@"; do echo "  $s:"; server "$s"; done; } > "$WORK/config.yaml"
  MCP_GATEWAY_SOCKET="$WORK/gw.sock" "$BIN/mcp-gateway" stop >/dev/null 2>&1 || true
  MCP_GATEWAY_HOME="$WORK/home" MCP_GATEWAY_CONFIG="$WORK/config.yaml" MCP_GATEWAY_SOCKET="$WORK/gw.sock" \
  MCP_GATEWAY_BIN="$BIN/mcp-gateway" python3 - "$BIN/mcp-gateway-connect" <<'PY'
import json, subprocess, sys
shim = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def ask(msg):
    shim.stdin.write((json.dumps(msg) + "\n").encode()); shim.stdin.flush()
    while True:
        line = shim.stdout.readline()
        reply = json.loads(line)
        if reply.get("id") == msg["id"]:
            return reply, len(line.rstrip(b"\n"))
ask({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
reply, size = ask({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
result = json.dumps(reply["result"], separators=(",", ":"))
print(len(result), len(reply["result"]["tools"]))
shim.stdin.close(); shim.wait()
PY
}

REAL=(everything filesystem memory sequential-thinking fetch git time)
ONE=(everything)
FIVE=(everything filesystem memory sequential-thinking fetch)
FIFTEEN=("${REAL[@]}" synthetic-1 synthetic-2 synthetic-3 synthetic-4 synthetic-5 synthetic-6 synthetic-7 synthetic-8)

echo "| servers | tools behind the gateway | full: bytes | full: ~tokens | lazy: bytes | lazy: ~tokens | saved |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for set in ONE FIVE FIFTEEN; do
  declare -n list=$set
  read -r full_bytes tools < <(measure full "${list[@]}")
  read -r lazy_bytes _ < <(measure lazy "${list[@]}")
  echo "| ${#list[@]} (${list[*]}) | $tools | $full_bytes | $((full_bytes / 4)) | $lazy_bytes | $((lazy_bytes / 4)) | $((100 - 100 * lazy_bytes / full_bytes))% |"
done
