#!/usr/bin/env bash
# The benchmark suite: added latency, attach time, throughput, sharing (processes
# and memory against per-terminal spawning), 1,000 idle sessions, and peer
# gateways, all in one run with contenders interleaved. Run by hand, not in CI:
#
#   bash bench/run.sh            # full run, rewrites the suite's section of BENCHMARKS.md
#   QUICK=1 bash bench/run.sh    # fewer iterations, same tables (a smoke run)
#   STEPS="4 5" bash bench/run.sh  # re-run some steps, keep the others' results
#   CARGO_TARGET_DIR=... bash bench/run.sh  # build (and run) from another target directory
#   BASE=DIR bash bench/run.sh   # steps 6 and 7 also run the mcp-gateway and mcp-gateway-connect in DIR
#                                # (another build: before/after in one run)
#
# Pinned servers and peers are installed into a cache (never committed):
# ${MCP_GATEWAY_BENCH_DEPS:-~/.cache/mcp-gateway-bench-deps}. Raw JSON results
# go to bench/results/, plots to bench/*.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CACHE="${MCP_GATEWAY_BENCH_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-bench-deps}"
PEERS="$CACHE/peers"
QUICK="${QUICK:-0}"
STEPS="${STEPS:-1 2 3 4 5 6 7}" # a subset re-runs those steps and keeps the other results
MCP_HUB_VERSION=4.2.1
MCP_PROXY_VERSION=0.13.0
RMCP_MUX_VERSION=0.4.0
MATPLOTLIB_VERSION=3.10.7
TIME_VERSION=2026.10.19
GIT_VERSION=2026.10.19
log() { echo "bench: $*" >&2; }

# ------------------------------------------------------------------ deps
eval "$(bash tests/support/deps.sh | sed 's/^/export /')"
mkdir -p "$CACHE" "$PEERS"
if [ ! -x "$CACHE/venv/bin/mcp-server-time" ] || [ ! -x "$CACHE/venv/bin/mcp-server-git" ]; then
  log "installing mcp-server-time and mcp-server-git into $CACHE/venv"
  python3 -m venv "$CACHE/venv" >&2
  "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "mcp-server-time==$TIME_VERSION" "mcp-server-git==$GIT_VERSION" >&2
fi
if [ ! -f "$PEERS/npm/node_modules/mcp-hub/dist/cli.js" ]; then
  log "installing mcp-hub@$MCP_HUB_VERSION"
  mkdir -p "$PEERS/npm" && echo '{"private":true}' >"$PEERS/npm/package.json"
  (cd "$PEERS/npm" && npm install --no-audit --no-fund --loglevel=error "mcp-hub@$MCP_HUB_VERSION" >&2) || log "mcp-hub did not install"
fi
if [ ! -x "$PEERS/venv/bin/mcp-proxy" ]; then
  log "installing mcp-proxy==$MCP_PROXY_VERSION"
  python3 -m venv "$PEERS/venv" >&2
  "$PEERS/venv/bin/pip" install --quiet --disable-pip-version-check "mcp-proxy==$MCP_PROXY_VERSION" >&2 || log "mcp-proxy did not install"
fi
if [ ! -x "$PEERS/cargo/bin/rmcp-mux" ] && [ ! -f "$PEERS/rmcp-mux.failed" ]; then
  log "installing rmcp-mux $RMCP_MUX_VERSION (cargo)"
  cargo install --quiet --root "$PEERS/cargo" --version "$RMCP_MUX_VERSION" --no-default-features --features cli rmcp-mux >"$PEERS/rmcp-mux.log" 2>&1 ||
    { log "rmcp-mux did not build (see $PEERS/rmcp-mux.log)"; touch "$PEERS/rmcp-mux.failed"; }
fi
if [ ! -x "$CACHE/plot/bin/python" ] || ! "$CACHE/plot/bin/python" -c 'import matplotlib' 2>/dev/null; then
  log "installing matplotlib into $CACHE/plot"
  python3 -m venv "$CACHE/plot" >&2
  "$CACHE/plot/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION" >&2
fi

# ------------------------------------------------------------------ build
log "building (release)"
cargo build --release --quiet
(cd bench/fast-fixture && cargo build --release --quiet)
(cd bench/harness && cargo build --release --quiet)
REL="${CARGO_TARGET_DIR:-$ROOT/target}/release"
GW="$REL/mcp-gateway"
SHIM="$REL/mcp-gateway-connect"
FF="${CARGO_TARGET_DIR:-$ROOT/bench/fast-fixture/target}/release/fast-fixture"
M="${CARGO_TARGET_DIR:-$ROOT/bench/harness/target}/release/mcpbench"
RES="$ROOT/bench/results"
[ "$STEPS" = "1 2 3 4 5 6 7" ] && rm -rf "$RES"
mkdir -p "$RES"
step() { [[ " $STEPS " == *" $1 "* ]]; }
WORK="$(mktemp -d /tmp/mcp-gateway-bench.XXXXXX)"
PIDS=()
cleanup() {
  for d in "$WORK"/gw-*; do
    [ -S "$d/gw.sock" ] && MCP_GATEWAY_SOCKET="$d/gw.sock" "$GW" stop >/dev/null 2>&1 || true
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# The servers a step started (gateways, peers' hubs and proxies) are stopped
# before a step that measures memory: a node left running shares node's
# pages, so the next step's nodes read half their PSS (section 6's node read
# 32 MiB in a full run and 72 MiB alone).
stop_started() {
  local p
  for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
  done
  PIDS=()
}
git init -q "$WORK/repo" && git -C "$WORK/repo" commit -q --allow-empty -m init 2>/dev/null || true
mkdir -p "$WORK/files"

# ------------------------------------------------------------------ contenders
# server NAME -> its command as a JSON array (+ env)
server_cmd() {
  case "$1" in
    fast | fast[0-9]*) echo "[\"$FF\"]" ;;
    everything) echo "[\"$MCP_TEST_NODE\", \"$MCP_TEST_EVERYTHING_JS\", \"stdio\"]" ;;
    memory) echo "[\"$MCP_TEST_NODE\", \"$MCP_TEST_MEMORY_JS\"]" ;;
    filesystem) echo "[\"$MCP_TEST_NODE\", \"$MCP_TEST_FILESYSTEM_JS\", \"$WORK/files\"]" ;;
    time) echo "[\"$CACHE/venv/bin/mcp-server-time\", \"--local-timezone\", \"UTC\"]" ;;
    git) echo "[\"$CACHE/venv/bin/mcp-server-git\", \"--repository\", \"$WORK/repo\"]" ;;
  esac
}
server_env() { [ "$1" = memory ] && echo "{\"MEMORY_FILE_PATH\": \"$WORK/memory.json\"}" || echo "{}"; }
# the cheap call each server gets in the sharing test: tool and arguments
server_call() {
  case "$1" in
    fast | fast[0-9]* | everything) echo 'echo {"message": "hi"}' ;;
    memory) echo 'read_graph {}' ;;
    filesystem) echo 'list_allowed_directories {}' ;;
    time) echo 'get_current_time {"timezone": "UTC"}' ;;
    git) echo "git_status {\"repo_path\": \"$WORK/repo\"}" ;;
  esac
}
yaml_servers() { # names... -> config.yaml servers block
  echo "servers:"
  for s in "$@"; do
    echo "  $s:"
    echo "    command: $(server_cmd "$s" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))')"
    echo "    args: $(server_cmd "$s" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[1:]))')"
    echo "    env: $(server_env "$s")"
  done
}
# start_gateway NAME servers... -> sets GWPID_<NAME>; socket $WORK/gw-NAME/gw.sock
start_gateway() {
  local name=$1; shift
  local d="$WORK/gw-$name"
  mkdir -p "$d"
  [ -f "$d/config.yaml" ] || yaml_servers "$@" >"$d/config.yaml"
  MCP_GATEWAY_HOME="$d" MCP_GATEWAY_SOCKET="$d/gw.sock" "$GW" serve >>"$d/daemon.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do [ -S "$d/gw.sock" ] && break; sleep 0.05; done
  [ -S "$d/gw.sock" ] || { log "gateway $name did not start: $(tail -5 "$d/daemon.log")"; exit 1; }
  printf -v "GWPID_$name" %s "$pid"
}
stop_gateway() {
  local d="$WORK/gw-$1"
  MCP_GATEWAY_SOCKET="$d/gw.sock" "$GW" stop >/dev/null 2>&1 || true
  for _ in $(seq 100); do [ -S "$d/gw.sock" ] || break; sleep 0.05; done
}
shim_json() { echo "[\"$SHIM\", \"--socket\", \"$WORK/gw-$1/gw.sock\", \"--no-autostart\"]"; }

HAVE_PROXY=0 HAVE_HUB=0
[ -x "$PEERS/venv/bin/mcp-proxy" ] && HAVE_PROXY=1
[ -f "$PEERS/npm/node_modules/mcp-hub/dist/cli.js" ] && HAVE_HUB=1
PORT=18900
# mcp-proxy as a server: one process per backend (its streamable HTTP endpoint at /mcp);
# a stdio client reaches it through `mcp-proxy --transport streamablehttp URL` (the bridge).
start_proxy() { # name server -> PROXYPID_name, PROXYURL_name
  local name=$1 server=$2 port=$((PORT++))
  local cmd; cmd="$(server_cmd "$server")"
  local -a argv; mapfile -t argv < <(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$cmd")
  local -a envs=()
  [ "$server" = memory ] && envs=(-e MEMORY_FILE_PATH "$WORK/memory-proxy.json")
  "$PEERS/venv/bin/mcp-proxy" --host 127.0.0.1 --port "$port" "${envs[@]}" -- "${argv[@]}" >"$WORK/proxy-$name.log" 2>&1 &
  PIDS+=("$!")
  printf -v "PROXYPID_$name" %s "$!"
  printf -v "PROXYURL_$name" %s "http://127.0.0.1:$port/mcp"
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
}
proxy_client_json() { echo "[\"$PEERS/venv/bin/mcp-proxy\", \"--transport\", \"streamablehttp\", \"$1\"]"; }
# mcp-hub: one process for all backends; its /mcp endpoint is the 2024-11-05 SSE transport.
start_hub() { # name servers... -> HUBPID_name, HUBURL_name
  local name=$1; shift
  local port=$((PORT++))
  local entries="" s
  for s in "$@"; do entries+="${entries:+,}\"$s\": {\"cmd\": $(server_cmd "$s"), \"env\": $(server_env "$s")}"; done
  echo "{$entries}" | python3 -c 'import json,sys; d=json.load(sys.stdin); json.dump({"mcpServers": {k: {"command": v["cmd"][0], "args": v["cmd"][1:], "env": v["env"]} for k, v in d.items()}}, open(sys.argv[1], "w"))' "$WORK/hub-$name.json"
  XDG_STATE_HOME="$WORK/hubstate-$name" XDG_CONFIG_HOME="$WORK/hubcfg-$name" \
    "$MCP_TEST_NODE" "$PEERS/npm/node_modules/mcp-hub/dist/cli.js" --port "$port" --config "$WORK/hub-$name.json" >"$WORK/hub-$name.log" 2>&1 &
  PIDS+=("$!")
  printf -v "HUBPID_$name" %s "$!"
  printf -v "HUBURL_$name" %s "http://127.0.0.1:$port/mcp"
  for _ in $(seq 400); do grep -q "servers started" "$WORK/hub-$name.log" 2>/dev/null && break; sleep 0.05; done
}
hub_client_json() { echo "[\"$PEERS/venv/bin/mcp-proxy\", \"$1\"]"; }

contender() { # name cmd-json tool [watch-pids-json] [env-json]
  local w="${4:-[]}" e="${5:-}"; [ -n "$e" ] || e="{}"
  printf '{"name": "%s", "cmd": %s, "tool": "%s", "watch_pids": %s, "env": %s}' "$1" "$2" "$3" "$w" "$e"
}
spec() { # file contenders... -> writes a spec
  local f=$1; shift
  local IFS=,
  echo "{\"contenders\": [$*]}" >"$f"
}

if [ "$QUICK" = 1 ]; then
  LAT_FAST=2000 LAT_EVERY=600 ATTACH=10 TP_SECS=1.5 TP_ROUNDS=2 IDLE=300 SHARE_T="1 7"
else
  LAT_FAST=10000 LAT_EVERY=3000 ATTACH=40 TP_SECS=3 TP_ROUNDS=3 IDLE=1000 SHARE_T="1 7 20"
fi

# ------------------------------------------------------------------ 1. latency
if step 1 || step 2 || step 3; then # shared setup: a gateway and the peers for steps 1-3
start_gateway lat fast everything
C=("$(contender direct "$(server_cmd fast)" echo)" "$(contender gateway "$(shim_json lat)" fast__echo)")
CE=("$(contender direct "$(server_cmd everything)" echo)" "$(contender gateway "$(shim_json lat)" everything__echo)")
if [ $HAVE_PROXY = 1 ]; then
  start_proxy fast fast; start_proxy everything everything
  C+=("$(contender "mcp-proxy" "$(proxy_client_json "$PROXYURL_fast")" echo)")
  CE+=("$(contender "mcp-proxy" "$(proxy_client_json "$PROXYURL_everything")" echo)")
fi
if [ $HAVE_HUB = 1 ]; then
  start_hub lat fast everything
  C+=("$(contender "mcp-hub" "$(hub_client_json "$HUBURL_lat")" fast__echo)")
  CE+=("$(contender "mcp-hub" "$(hub_client_json "$HUBURL_lat")" everything__echo)")
fi
fi
if step 1; then
log "1. latency (fast fixture, then server-everything)"
spec "$WORK/lat-fast.json" "${C[@]}"
spec "$WORK/lat-every.json" "${CE[@]}"
"$M" latency "$WORK/lat-fast.json" "$LAT_FAST" 20 >"$RES/latency-fast.json"
"$M" latency "$WORK/lat-every.json" "$LAT_EVERY" 20 >"$RES/latency-everything.json"
fi

# ------------------------------------------------------------------ 2. attach
if step 2; then
log "2. attach"
# a gateway whose backends have run once (so their listings are cached on disk),
# then restarted: its backends are never started by attaching.
start_gateway cold fast everything
"$M" sharing <(spec /dev/stdout "$(printf '{"name": "prime", "terminal": [{"cmd": %s, "calls": [{"name": "fast__echo", "arguments": {"message": "x"}}, {"name": "everything__echo", "arguments": {"message": "x"}}]}]}' "$(shim_json cold)")") 1 >/dev/null
stop_gateway cold
start_gateway cold fast everything
# and the warm one: backends running
"$M" sharing <(spec /dev/stdout "$(printf '{"name": "prime", "terminal": [{"cmd": %s, "calls": [{"name": "fast__echo", "arguments": {"message": "x"}}, {"name": "everything__echo", "arguments": {"message": "x"}}]}]}' "$(shim_json lat)")") 1 >/dev/null
A=("$(contender "direct: fast fixture" "$(server_cmd fast)" echo)"
   "$(contender "direct: server-everything" "$(server_cmd everything)" echo)"
   "$(contender "gateway, backends warm" "$(shim_json lat)" fast__echo)"
   "$(contender "gateway, backends never started (cached catalog)" "$(shim_json cold)" fast__echo)")
[ $HAVE_PROXY = 1 ] && A+=("$(contender "mcp-proxy (stdio bridge), warm" "$(proxy_client_json "$PROXYURL_fast")" echo)")
[ $HAVE_HUB = 1 ] && A+=("$(contender "mcp-hub (stdio bridge), warm" "$(hub_client_json "$HUBURL_lat")" fast__echo)")
spec "$WORK/attach.json" "${A[@]}"
"$M" attach "$WORK/attach.json" "$ATTACH" >"$RES/attach.json"
MCP_GATEWAY_SOCKET="$WORK/gw-cold/gw.sock" "$GW" status --json >"$RES/attach-cold-status.json" 2>/dev/null || true
stop_gateway cold
fi

# ------------------------------------------------------------------ 3. throughput
if step 3; then
log "3. throughput"
T=("$(contender direct "$(server_cmd fast)" echo)" "$(contender gateway "$(shim_json lat)" fast__echo "[$GWPID_lat]")")
[ $HAVE_PROXY = 1 ] && T+=("$(contender "mcp-proxy" "$(proxy_client_json "$PROXYURL_fast")" echo "[$PROXYPID_fast]")")
[ $HAVE_HUB = 1 ] && T+=("$(contender "mcp-hub" "$(hub_client_json "$HUBURL_lat")" fast__echo "[$HUBPID_lat]")")
spec "$WORK/tp.json" "${T[@]}"
"$M" throughput "$WORK/tp.json" 1 1 "$TP_SECS" "$TP_ROUNDS" >"$RES/throughput-1x1.json"
"$M" throughput "$WORK/tp.json" 16 1 "$TP_SECS" "$TP_ROUNDS" >"$RES/throughput-16x1.json"
"$M" throughput "$WORK/tp.json" 16 8 "$TP_SECS" "$TP_ROUNDS" >"$RES/throughput-16x8.json"
"$M" throughput "$WORK/tp.json" 32 1 "$TP_SECS" "$TP_ROUNDS" >"$RES/throughput-32x1.json"
stop_gateway lat
fi

# ------------------------------------------------------------------ 4. sharing
if step 4; then
stop_started
log "4. sharing (terminals x 5 real servers)"
FIVE=(everything memory filesystem time git)
start_gateway share "${FIVE[@]}"
calls_json() { # prefix servers... -> JSON array of calls
  local prefix=$1; shift
  local out="" s tool args
  for s in "$@"; do
    read -r tool args <<<"$(server_call "$s")"
    out+="${out:+,}{\"name\": \"${prefix:+${s}__}$tool\", \"arguments\": $args}"
  done
  echo "[$out]"
}
direct_terminal=""
for s in "${FIVE[@]}"; do
  direct_terminal+="${direct_terminal:+,}{\"cmd\": $(server_cmd "$s"), \"env\": $(server_env "$s"), \"calls\": $(calls_json "" "$s")}"
done
S_GW="{\"name\": \"gateway\", \"terminal\": [{\"cmd\": $(shim_json share), \"calls\": $(calls_json p "${FIVE[@]}")}], \"watch_pids\": [$GWPID_share]}"
S_DIRECT="{\"name\": \"direct\", \"terminal\": [$direct_terminal]}"
S=("$S_GW" "$S_DIRECT")
if [ $HAVE_HUB = 1 ]; then
  start_hub share "${FIVE[@]}"
  S+=("{\"name\": \"mcp-hub\", \"terminal\": [{\"cmd\": $(hub_client_json "$HUBURL_share"), \"calls\": $(calls_json p "${FIVE[@]}")}], \"watch_pids\": [$HUBPID_share]}")
fi
if [ $HAVE_PROXY = 1 ]; then
  pt="" pp=""
  for s in "${FIVE[@]}"; do
    start_proxy "share$s" "$s"
    u="PROXYURL_share$s" p="PROXYPID_share$s"
    pt+="${pt:+,}{\"cmd\": $(proxy_client_json "${!u}"), \"calls\": $(calls_json "" "$s")}"
    pp+="${pp:+,}${!p}"
  done
  S+=("{\"name\": \"mcp-proxy\", \"terminal\": [$pt], \"watch_pids\": [$pp]}")
fi
for t in $SHARE_T; do
  for c in "${S[@]}"; do
    spec "$WORK/share.json" "$c"
    "$M" sharing "$WORK/share.json" "$t" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))' >>"$RES/sharing.jsonl"
  done
done
# the daemon-RSS target: 50 sessions, 5 backends (gateway only)
spec "$WORK/share.json" "$S_GW"
"$M" sharing "$WORK/share.json" 50 | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))' >"$RES/sharing-50.json"
MCP_GATEWAY_SOCKET="$WORK/gw-share/gw.sock" "$GW" status --json >"$RES/sharing-status.json" 2>/dev/null || true
stop_gateway share
# and with 10 backends: the 5 servers and 5 fast fixtures (each its own server)
TEN=("${FIVE[@]}" fast1 fast2 fast3 fast4 fast5)
start_gateway share10 "${TEN[@]}"
spec "$WORK/share.json" "{\"name\": \"gateway\", \"terminal\": [{\"cmd\": $(shim_json share10), \"calls\": $(calls_json p "${TEN[@]}")}], \"watch_pids\": [$GWPID_share10]}"
"$M" sharing "$WORK/share.json" 50 | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))' >"$RES/sharing-50x10.json"
stop_gateway share10
fi

# ------------------------------------------------------------------ 5. scale
if step 5; then
stop_started
log "5. scale ($IDLE idle sessions)"
start_gateway idle fast
spec "$WORK/idle.json" "$(contender gateway "$(shim_json idle)" fast__echo "[$GWPID_idle]")"
"$M" idle "$WORK/idle.json" "$IDLE" >"$RES/idle.json"
stop_gateway idle
fi

# ------------------------------------------------------------------ 6. one shared real backend
if step 6; then
stop_started
log "6. several client processes on one shared server-everything (direct, gateway, rmcp-mux)"
MUX=""
[ -x "$PEERS/cargo/bin/rmcp-mux" ] && MUX="$PEERS/cargo/bin/rmcp-mux"
if [ "$QUICK" = 1 ]; then SB_CALLS=200 SB_ROUNDS=2; else SB_CALLS=500 SB_ROUNDS=5; fi
"$MCP_TEST_PYTHON" bench/shared_backend.py --node "$MCP_TEST_NODE" --everything-js "$MCP_TEST_EVERYTHING_JS" \
  --daemon "$GW" --shim "$SHIM" ${MUX:+--mux "$MUX"} --clients 4 --calls "$SB_CALLS" --rounds "$SB_ROUNDS" \
  ${BASE:+--also-gateway "gateway (BASE build)" "$BASE/mcp-gateway" "$BASE/mcp-gateway-connect"} \
  --pss-sessions 5 --json "$RES/shared-backend.json" >&2
fi

# ------------------------------------------------------------------ 7. instructions per call
if step 7; then
if command -v valgrind >/dev/null; then
  log "7. instructions per call (callgrind, fast fixture)"
  rm -f "$RES/callgrind.jsonl"
  for _ in 1 2 3; do # a multi-threaded runtime's spinning varies a little from run to run
    bash bench/callgrind.sh "$GW" "$SHIM" "$FF" "$M" gateway >>"$RES/callgrind.jsonl"
    [ -n "${BASE:-}" ] && bash bench/callgrind.sh "$BASE/mcp-gateway" "$BASE/mcp-gateway-connect" "$FF" "$M" "gateway (BASE build)" >>"$RES/callgrind.jsonl"
  done
else
  log "7. skipped: valgrind is not installed (apt-get install valgrind)"
fi
fi

# ------------------------------------------------------------------ report
{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
  echo "gateway: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "peers: mcp-hub $MCP_HUB_VERSION ($([ $HAVE_HUB = 1 ] && echo ok || echo 'not installed')), mcp-proxy $MCP_PROXY_VERSION ($([ $HAVE_PROXY = 1 ] && echo ok || echo 'not installed')), rmcp-mux $RMCP_MUX_VERSION ($([ -x "$PEERS/cargo/bin/rmcp-mux" ] && echo 'ok, section 6' || echo 'did not build'))"
  echo "quick: $QUICK"
} >"$RES/meta.txt"
"$CACHE/plot/bin/python" bench/report.py "$RES" BENCHMARKS.md
log "done: BENCHMARKS.md, bench/*.svg, raw results in bench/results/"
