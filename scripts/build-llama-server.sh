#!/usr/bin/env bash
# Build llama.cpp's own server (llama-server) from the very llama.cpp tree
# semantic is built from (vendor/llama-cpp-sys-2/llama.cpp, with our
# patches), with the same CPU features (AVX2/FMA/F16C, no -march=native),
# so `semantic bench rotation --base-url` can measure it side by side.
# Output: target/llama-server/bin/llama-server. Takes ~10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d vendor/llama-cpp-sys-2/llama.cpp ] || scripts/vendor-llama.sh
src=vendor/llama-cpp-sys-2/llama.cpp
out=target/llama-server
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
  -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BLAS=OFF >/dev/null
cmake --build "$out" --target llama-server -j "$(nproc)"
echo "built $out/bin/llama-server"
