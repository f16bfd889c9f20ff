#!/usr/bin/env bash
# Install the system packages a fresh Debian/Ubuntu machine lacks to build
# semantic: cmake, clang and libclang-dev (llama.cpp and its bindgen), and
# python3-venv (the SDK test clients), npm (the Claude Code test client), curl
# and patch (the vendored crates).
# Skips everything already present. Then unpacks and patches llama.cpp and minijinja
# into vendor/ (scripts/vendor-crates.sh), which every cargo build needs.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v patch >/dev/null || need+=(patch)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
"$(dirname "$0")/vendor-crates.sh"
