#!/usr/bin/env bash
# Set-up command 1: install build dependencies, fetch the default model if it
# is missing, build the release binary and start the server on 127.0.0.1:8080.
# Extra arguments go to `semantic serve` (e.g. --port 9000, --model PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-model.sh
cargo build --release --locked -p semantic-cli
exec target/release/semantic serve "$@"
