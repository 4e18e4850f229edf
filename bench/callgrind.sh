#!/usr/bin/env bash
# Instructions per `tools/call` (echo on the fast fixture), counted by callgrind:
# the daemon's and the shim's, each under `valgrind --tool=callgrind`. Counts
# do not depend on the machine's load, so this is the figure to compare builds
# by on a busy machine. Difference method: one session makes N1 calls, another
# N2 (the same set-up and warm-up each), and (Ir(N2) - Ir(N1)) / (N2 - N1) is
# what one more call costs; the daemon's counters are zeroed before each
# session and dumped after it, a shim runs under callgrind for its lifetime.
#
#   bash bench/callgrind.sh DAEMON SHIM FAST_FIXTURE MCPBENCH [LABEL]   # prints one JSON line
#   KEEP=DIR bash bench/callgrind.sh ...   # also keeps the profiles, for callgrind_annotate
#
# Run by bench/run.sh (step 7) for the build it benchmarks; give another
# build's binaries to compare (the same N1, N2 and fixture).
set -euo pipefail
GW=$1 SHIM=$2 FF=$3 M=$4 LABEL=${5:-gateway}
N1=${N1:-500} N2=${N2:-3000}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
W="$(mktemp -d /tmp/mcp-gateway-callgrind.XXXXXX)"
DPID=""
cleanup() {
  [ -n "$DPID" ] && MCP_GATEWAY_SOCKET="$W/gw.sock" "$GW" stop >/dev/null 2>&1 || true
  [ -n "$DPID" ] && { kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; }
  rm -rf "$W"
}
trap cleanup EXIT
printf 'servers:\n  fast:\n    command: "%s"\n' "$FF" >"$W/config.yaml"
(cd "$W" && MCP_GATEWAY_HOME="$W" MCP_GATEWAY_SOCKET="$W/gw.sock" exec valgrind --tool=callgrind \
  --callgrind-out-file="$W/daemon.%p.out" "$GW" serve >"$W/daemon.log" 2>&1) &
DPID=$!
for _ in $(seq 600); do [ -S "$W/gw.sock" ] && break; sleep 0.1; done
[ -S "$W/gw.sock" ] || { echo "callgrind.sh: the daemon did not start: $(tail -5 "$W/daemon.log")" >&2; exit 1; }

totals() { # callgrind output file -> its total Ir
  awk '/^(summary|totals):/ {print $2; exit}' "$1"
}
run() { # calls -> "daemon_ir shim_ir"
  local n=$1
  (cd "$W" && callgrind_control -z "$DPID" >/dev/null 2>&1)
  rm -f "$W"/shim.*.out
  local cmd
  cmd="[\"valgrind\", \"--tool=callgrind\", \"--callgrind-out-file=$W/shim.%p.out\", \"$SHIM\", \"--socket\", \"$W/gw.sock\", \"--no-autostart\"]"
  echo "{\"contenders\": [{\"name\": \"gw\", \"cmd\": $cmd, \"tool\": \"fast__echo\", \"watch_pids\": [], \"env\": {}}]}" >"$W/spec.json"
  "$M" latency "$W/spec.json" "$n" 1 >/dev/null
  # the shim's output is written when it exits, shortly after its client closed it
  for _ in $(seq 300); do ls "$W"/shim.*.out >/dev/null 2>&1 && [ -n "$(totals "$(ls "$W"/shim.*.out | head -1)")" ] && break; sleep 0.1; done
  rm -f "$W"/daemon.*.out.*
  (cd "$W" && callgrind_control -d "$DPID" >/dev/null 2>&1)
  local dump=""
  for _ in $(seq 300); do dump="$(ls "$W"/daemon.*.out.* 2>/dev/null | head -1)"; [ -n "$dump" ] && [ -n "$(totals "$dump")" ] && break; sleep 0.1; done
  # KEEP=DIR keeps the profiles of the longer run (for callgrind_annotate)
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$dump" "$KEEP/daemon.out" && cp "$(ls "$W"/shim.*.out | head -1)" "$KEEP/shim.out"
  echo "$(totals "$dump") $(totals "$(ls "$W"/shim.*.out | head -1)")"
}
read -r D1 S1 <<<"$(run "$N1")"
read -r D2 S2 <<<"$(run "$N2")"
python3 -c '
import json, sys
label, n1, n2, d1, s1, d2, s2 = sys.argv[1], *map(int, sys.argv[2:])
print(json.dumps({"name": label, "calls": [n1, n2], "daemon_ir_per_call": round((d2 - d1) / (n2 - n1)),
                  "shim_ir_per_call": round((s2 - s1) / (n2 - n1))}))' "$LABEL" "$N1" "$N2" "$D1" "$S1" "$D2" "$S2"
