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
# llama.cpp's Vulkan backend uses VK_EXT_layer_settings (Vulkan-Hpp's
# vk::LayerSettingEXT, headers 1.3.261 and later). Debian 12 ships 1.3.239,
# which fails deep in the build; say so at once instead. Debian 13 and
# Ubuntu 24.04 ship newer headers; elsewhere install the LunarG SDK and put
# its include directory first (CPATH).
cpath="${CPATH:-}"
headers="$(grep -rls "struct LayerSettingEXT" ${cpath//:/ } /usr/include/vulkan 2>/dev/null | head -n1 || true)"
if [ -z "$headers" ]; then
  version="$(awk '/#define VK_HEADER_VERSION /{print $3}' /usr/include/vulkan/vulkan_core.h 2>/dev/null || true)"
  echo "the Vulkan headers here (1.3.${version:-?}) predate VK_EXT_layer_settings (1.3.261), which llama.cpp's Vulkan backend needs;" >&2
  echo "use a distribution with newer headers (Debian 13, Ubuntu 24.04) or the LunarG SDK's (CPATH=\$VULKAN_SDK/include)" >&2
  exit 1
fi
"$root/scripts/vendor-crates.sh"
started=$(date +%s)
cargo build --locked --manifest-path "$root/Cargo.toml" -p semantic-cli \
  --features vulkan --target-dir "$root/target/vulkan" "$@"
echo "vulkan build took $(( $(date +%s) - started )) s"
"$root/target/vulkan/debug/semantic" version
