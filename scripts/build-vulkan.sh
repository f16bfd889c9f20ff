#!/usr/bin/env bash
# Compile semantic with llama.cpp's Vulkan backend (`--features vulkan`), so
# GPU builds are at least compiled on a machine without a GPU. Installs what
# Debian needs for it (Vulkan headers and loader, the glslc shader compiler,
# SPIR-V headers) when missing, builds into target/vulkan (apart from the CPU
# build, whose llama.cpp it would otherwise replace) and prints how long the
# build took. Running the result needs a Vulkan driver; on a machine without
# one the binary still starts and falls back to the CPU.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib/apt.sh
. "$root/scripts/lib/apt.sh"
need=()
[ -f /usr/include/vulkan/vulkan.h ] || need+=(libvulkan-dev)
command -v glslc >/dev/null || need+=(glslc)
[ -d /usr/include/spirv ] || need+=(spirv-headers)
apt_install "${need[@]}"
"$root/scripts/vendor-crates.sh"
started=$(date +%s)
cargo build --locked --manifest-path "$root/Cargo.toml" -p semantic-cli \
  --features vulkan --target-dir "$root/target/vulkan" "$@"
echo "vulkan build took $(( $(date +%s) - started )) s"
"$root/target/vulkan/debug/semantic" version
