#!/usr/bin/env bash
# Fuzzes the preamble parser, the line framing, the id/token rewriting and the
# config loader (fuzz/fuzz_targets/) for SECONDS each (default 20) with
# cargo-fuzz (libFuzzer) on the nightly toolchain.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs the pinned cargo-fuzz into a cache directory the first time, so a
# fresh clone reuses it. Runs start from the committed seeds in fuzz/corpus/
# but grow a temporary copy, so the work tree stays clean. Exits non-zero on a
# crash and prints the reproducer's path and how to replay it.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${1:-20}
shift || true
if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
    TARGETS=(preamble framing pending config)
fi

TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "== installing the $TOOLCHAIN toolchain"
    rustup toolchain install "$TOOLCHAIN" --profile minimal </dev/null
fi

export CARGO_INSTALL_ROOT=${MCP_GATEWAY_FUZZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-fuzz}
export PATH="$CARGO_INSTALL_ROOT/bin:$PATH"
if [[ "$(cargo-fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $CARGO_INSTALL_ROOT"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force </dev/null
fi

# Builds go to the cache too: a fresh clone (CI) then rebuilds only what changed,
# not the whole instrumented dependency tree (about ten minutes cold here).
TARGET_DIR=${MCP_GATEWAY_FUZZ_TARGET:-$CARGO_INSTALL_ROOT/target}
echo "== building the fuzz targets (into $TARGET_DIR)"
cargo "+$TOOLCHAIN" fuzz build --target-dir "$TARGET_DIR" </dev/null

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mcp-gateway-fuzz.XXXXXX")
ARTIFACTS=fuzz/artifacts
failed=()
for target in "${TARGETS[@]}"; do
    echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
    corpus="$RUN_DIR/corpus/$target"
    mkdir -p "$corpus" "$ARTIFACTS/$target"
    cp -R "fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
    log="$RUN_DIR/$target.log"
    status=0
    # -timeout: one input taking longer is a hang, reported like a crash.
    cargo "+$TOOLCHAIN" fuzz run --target-dir "$TARGET_DIR" "$target" "$corpus" </dev/null -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$PWD/$ARTIFACTS/$target/" >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+.*DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" || true
    if ((status != 0)); then
        failed+=("$target")
        echo "!! $target failed (exit $status):" >&2
        # The panic (or sanitizer/libFuzzer error) and the input, without the stack.
        grep -m1 -A3 -E 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY: libFuzzer: timeout' "$log" >&2 || tail -n 40 "$log" >&2
        sed -n '/^Output of `std::fmt::Debug`:/,/^Reproduce with:/p' "$log" | cut -c1-400 >&2
        for artifact in $(grep -oE 'Test unit written to [^ ]+' "$log" | awk '{print $5}'); do
            echo "!! reproducer: $artifact" >&2
            echo "!!   replay:   cargo +$TOOLCHAIN fuzz run $target $artifact" >&2
            echo "!!   minimise: cargo +$TOOLCHAIN fuzz tmin $target $artifact" >&2
        done
        echo "!! full log: $log" >&2
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzzing found problems in: ${failed[*]} (reproducers under $ARTIFACTS/)" >&2
    exit 1
fi
rm -rf "$RUN_DIR"
echo "fuzzing: ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s each, no crash"
