#!/usr/bin/env bash
# Set-up command 2: everything the test suite needs, then the whole suite:
# formatting, lints, unit tests and the real-model integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# Each step's wall time, so a slow CI run says where its time went.
timed() {
  local t0=$SECONDS
  "$@"
  echo "test.sh: '$*' took $((SECONDS - t0)) s ($(($(date +%s) - started)) s so far)"
}
timed scripts/install-deps.sh
timed scripts/fetch-model.sh
timed scripts/check-ops.sh   # alert rules + tests, deploy files, Kubernetes schemas, cargo deny
cargo fmt --all --check
timed cargo clippy --workspace --all-targets --locked -- -D warnings
timed cargo test --workspace --locked

# The official `openai` and `anthropic` Python SDKs, the OpenAI Agents SDK,
# and Claude Code and Codex CLI (pinned, from npm, into local prefixes),
# against the real server binary and models.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r tests/python/requirements.txt
CLAUDE_CODE_VERSION=2.1.328
claude=.clients/claude-code/node_modules/.bin/claude
if ! { [ -x "$claude" ] && "$claude" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; }; then
  npm install --prefix .clients/claude-code --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi
CODEX_VERSION=0.171.0
codex=.clients/codex/node_modules/.bin/codex
if ! { [ -x "$codex" ] && "$codex" --version 2>/dev/null | grep -q " $CODEX_VERSION$"; }; then
  npm install --prefix .clients/codex --no-audit --no-fund --loglevel=error \
    "@openai/codex@$CODEX_VERSION"
fi
cargo build -p semantic-cli --locked  # no-op when `cargo test` just built it
SEMANTIC_BIN=target/debug/semantic \
SEMANTIC_TEST_MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf \
SEMANTIC_LONG_MODEL=models/gemma-3-270m-q4_k_m.gguf \
CLAUDE_BIN="$claude" \
CODEX_BIN="$codex" \
  timed .venv/bin/python -m pytest -q -rP --durations=10 tests/python

# The soak's short version: a minute of mixed load (returning and new
# agents, abandoned streams, bursts past the queue, evictions to disk) on
# small budgets; fails on any 5xx, a leaked KV block or a disk over budget.
# The 30-minute run and its figures: docs/performance.md.
timed target/debug/semantic bench soak --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
  --duration 60s --sample-every 15s --burst-every 20s --disk-budget 24MiB
