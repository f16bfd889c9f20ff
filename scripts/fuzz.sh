#!/usr/bin/env bash
# Run every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time,
# starting from the committed corpus, and print the executions per target.
#
#   scripts/fuzz.sh [seconds-per-target]      (default 60)
#   FUZZ_TARGETS="gguf_header store_file" scripts/fuzz.sh 300
#
# New interesting inputs go to fuzz/work/<target>/ (git-ignored), crashes to
# fuzz/artifacts/<target>/. A crash is a bug: fix it, copy the input into
# fuzz/regressions/<target>/ (the crates' replay tests run it in cargo
# test) and commit both. Exits non-zero if any target crashed.
#
# cargo-fuzz needs nightly-only compiler flags: the nightly toolchain when
# rustup has one, else stable with RUSTC_BOOTSTRAP=1. cargo-fuzz itself is
# installed into fuzz/.tools if it is not on PATH. The first build compiles
# llama.cpp again into fuzz/target (the request parsers live in
# semantic-server, which links the engine): ~10-15 minutes on 2 cores.
# Not part of CI (scripts/test.sh, .ci/run): CI replays the corpus only.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

CARGO_FUZZ_VERSION=0.13.2
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if [ ! -x .tools/bin/cargo-fuzz ]; then
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root .tools
    fi
    export PATH="$PWD/.tools/bin:$PATH"
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

read -r -a targets <<<"${FUZZ_TARGETS:-gguf_header store_file openai_chat anthropic_messages responses}"

# No sanitizer: the targets are safe Rust (llama.cpp is not instrumented
# either way), and without one the build and every execution are faster.
# libFuzzer still catches panics, timeouts and memory blow-ups.
fuzz_flags=(-s none)
cargo "${toolchain[@]}" fuzz build "${fuzz_flags[@]}"

summary=()
failed=0
for target in "${targets[@]}"; do
    mkdir -p "work/$target" "artifacts/$target"
    log="work/$target.log"
    echo "== $target: ${seconds}s"
    status=0
    cargo "${toolchain[@]}" fuzz run "${fuzz_flags[@]}" "$target" \
        "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs="$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1 || true)"
    if [ "$status" -ne 0 ]; then
        failed=1
        tail -n 30 "$log"
        summary+=("$target: FAILED (exit $status) after ${runs:-?} runs; see fuzz/$log and fuzz/artifacts/$target/")
    else
        summary+=("$target: ${runs:-?} executions in ${seconds}s, no crash")
    fi
done

echo
echo "== fuzzing summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
