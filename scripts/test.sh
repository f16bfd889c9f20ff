#!/usr/bin/env bash
# Set-up command 2: everything the test suite needs, then the whole suite:
# formatting, lints, unit tests and the real-model integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-model.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
