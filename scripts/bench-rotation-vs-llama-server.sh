#!/usr/bin/env bash
# `semantic bench rotation` side by side with llama.cpp's llama-server, same
# model, same machine, same workload, same memory, in one command:
#
#   scripts/bench-rotation-vs-llama-server.sh [pressure|roomy|both]
#
# pressure: semantic with --kv-budget 192MiB --warm-budget 64MiB against
#           llama-server -c 8192 --cache-ram 64 (about 180 MiB of f16 KV plus
#           64 MiB of prompt cache each);
# roomy:    semantic with --kv-budget 1GiB --warm-budget 1GiB against
#           llama-server -c 32768 --cache-ram 1024 (every agent fits).
# Workload: 12 agents x 3 turns, ~8,000-character system prompts, two
# requests at a time, max_tokens 16, greedy. Override with AGENTS, TURNS,
# CONCURRENCY, SYSTEM_CHARS. Tables go to stdout; server logs to $OUT
# (default target/bench-rotation). llama-server is built by
# scripts/build-llama-server.sh from the same patched llama.cpp tree.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-both}"
out="${OUT:-target/bench-rotation}"
mkdir -p "$out"
model="${SEMANTIC_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
workload=(--agents "${AGENTS:-12}" --turns "${TURNS:-3}" --concurrency "${CONCURRENCY:-2}"
  --system-chars "${SYSTEM_CHARS:-8000}" --max-tokens 16)
threads="$(nproc)"
[ -x target/release/semantic ] || cargo build --release --locked -p semantic-cli
[ -x target/llama-server/bin/llama-server ] || scripts/build-llama-server.sh

llama_pid=""
stop_llama() {
  if [ -n "$llama_pid" ]; then
    kill "$llama_pid" 2>/dev/null || true
    wait "$llama_pid" 2>/dev/null || true
    llama_pid=""
  fi
}
trap stop_llama EXIT

# llama-server on a free loopback port with the given context and prompt cache.
run_llama() {
  local ctx="$1" cache_ram="$2" label="$3" port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  target/llama-server/bin/llama-server -m "$model" --host 127.0.0.1 --port "$port" \
    -c "$ctx" --cache-ram "$cache_ram" -t "$threads" >"$out/llama-server-$label.log" 2>&1 &
  llama_pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.5
  done
  echo "## llama-server -c $ctx --cache-ram $cache_ram -t $threads"
  target/release/semantic bench rotation --base-url "http://127.0.0.1:$port" "${workload[@]}"
  stop_llama
}

run_semantic() {
  local kv="$1" warm="$2"
  echo "## semantic serve --kv-budget $kv --warm-budget $warm"
  target/release/semantic bench rotation --model "$model" --kv-budget "$kv" --warm-budget "$warm" "${workload[@]}"
}

if [ "$mode" = pressure ] || [ "$mode" = both ]; then
  run_semantic 192MiB 64MiB
  run_llama 8192 64 pressure
fi
if [ "$mode" = roomy ] || [ "$mode" = both ]; then
  run_semantic 1GiB 1GiB
  run_llama 32768 1024 roomy
fi
