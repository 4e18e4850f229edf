#!/usr/bin/env bash
# The project's one test command (README "Run the tests"; CI runs exactly this).
# Installs the pinned test dependencies itself (cached), so a fresh machine needs
# no manual step.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

echo "== test dependencies (pinned, cached)"
bash tests/support/deps.sh >/dev/null

echo "== tests"
cargo nextest run --locked --no-fail-fast

echo "== packages (.deb and .rpm, built and checked: packaging/README.md)"
bash scripts/package.sh

echo "== fuzzing (bounded: ${MCP_GATEWAY_FUZZ_SECONDS:=15} s a target; longer: bash scripts/fuzz.sh SECONDS)"
bash scripts/fuzz.sh "$MCP_GATEWAY_FUZZ_SECONDS"
