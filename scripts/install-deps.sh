#!/usr/bin/env bash
# Install the system packages a fresh Debian/Ubuntu machine lacks to build
# semantic: cmake, clang and libclang-dev (llama.cpp and its bindgen), and
# python3-venv (the SDK test clients), npm (the Claude Code test client), curl
# and patch (the vendored crates).
# Skips everything already present. Then unpacks and patches llama.cpp and minijinja
# into vendor/ (scripts/vendor-crates.sh), which every cargo build needs.
set -euo pipefail
# shellcheck source=scripts/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v patch >/dev/null || need+=(patch)
apt_install "${need[@]}"
"$(dirname "$0")/vendor-crates.sh"
