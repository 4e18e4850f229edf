#!/usr/bin/env bash
# Concurrent callers of a tool that asks its client (sampling), directly and
# through the gateway: does each get its own answer, and at what cost in
# processes and latency. Run by hand; prints a Markdown table for BENCHMARKS.md.
#
#   bash bench/sampling.sh            # 1, 2 and 5 callers, 20 rounds each
#   ROUNDS=5 CALLERS=2 bash bench/sampling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash tests/support/deps.sh | sed 's/^/export /')"
cargo build --release --quiet
"$MCP_TEST_PYTHON" bench/sampling.py \
  --daemon target/release/mcp-gateway --shim target/release/mcp-gateway-connect \
  --node "$MCP_TEST_NODE" --everything-js "$MCP_TEST_EVERYTHING_JS" \
  --rounds "${ROUNDS:-20}" --callers "${CALLERS:-1,2,5}" \
  --python "$MCP_TEST_PYTHON" --modern-server tests/fixtures/modern_server.py --json bench/results/sampling.json
