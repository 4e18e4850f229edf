#!/usr/bin/env bash
# The project's one test command (README "Run the tests"; CI runs exactly this).
# Installs the pinned test dependencies itself (cached), so a fresh machine needs
# no manual step.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  # CI builds into a cache kept between runs, as package.sh and fuzz.sh do, so
  # a fresh clone compiles its dependencies once, not on every run. What this
  # crate built in an earlier clone (each checkout path builds its own copy) is
  # removed first: the cache holds the dependencies and one copy of the crate.
  export CARGO_TARGET_DIR=${MCP_GATEWAY_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-build}
  export CARGO_INCREMENTAL=0
  cargo clean --quiet -p mcp-gateway
fi

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The OS keyring (`oauth_store: keyring`) is behind a cargo feature: lint that build too (~20 s).
cargo clippy --all-targets --locked --features os-keyring -- -D warnings

echo "== test dependencies (pinned, cached)"
bash tests/support/deps.sh >/dev/null

echo "== tests"
cargo nextest run --locked --no-fail-fast
# The keyring's own unit tests need the feature (the kernel keyring here):
# the library's tests built once more, only those run (~70 s).
cargo nextest run --locked --no-fail-fast --lib --features os-keyring -E 'test(/keyring/)'

echo "== packages (.deb and .rpm, built and checked: packaging/README.md)"
bash scripts/package.sh

echo "== fuzzing (bounded: ${MCP_GATEWAY_FUZZ_SECONDS:=15} s a target; longer: bash scripts/fuzz.sh SECONDS)"
bash scripts/fuzz.sh "$MCP_GATEWAY_FUZZ_SECONDS"
