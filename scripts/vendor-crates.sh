#!/usr/bin/env bash
# Unpack the crates we patch into vendor/<name> and apply our patches from
# patches/<name>/ (ARCHITECTURE.md, "Patched dependencies", says what each
# patch does):
#   llama-cpp-sys-2  llama.cpp's sources (KV cells, CPU kernels, SWA states)
#   llama-cpp-2      its Rust API (the weight-repacking switch it lacks)
#   minijinja        a memory budget for rendering untrusted chat templates
# Cargo.toml's [patch.crates-io] builds these copies instead of the
# registry's, so this must run before any cargo command;
# scripts/install-deps.sh calls it.
#
# Each crate is fetched through cargo itself (so registry mirrors, source
# replacement and offline caches work) and checked against its crates.io
# sha256, pinned below: with the [patch], Cargo.lock no longer records it.
# Re-running is a no-op while a crate's stamp matches; a changed patch set
# rebuilds that copy from scratch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

# The .crate file of name-version from cargo's cache, fetched into it first
# (through a throw-away manifest) when absent.
crate_file() {
  local name="$1" version="$2" found
  found="$(ls "$cargo_home"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1 || true)"
  if [ -z "$found" ]; then
    echo "fetching $name $version through cargo ..." >&2
    local manifest
    manifest="$(mktemp -d)"
    mkdir -p "$manifest/src"
    touch "$manifest/src/lib.rs"
    printf '[package]\nname = "semantic-vendor-fetch"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\n%s = "=%s"\n' \
      "$name" "$version" >"$manifest/Cargo.toml"
    cargo fetch --quiet --manifest-path "$manifest/Cargo.toml" >&2
    rm -rf "$manifest"
    found="$(ls "$cargo_home"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1 || true)"
  fi
  if [ -z "$found" ]; then
    echo "cargo fetch did not leave $name-$version.crate in $cargo_home/registry/cache" >&2
    return 1
  fi
  echo "$found"
}

vendor_crate() {
  local name="$1" version="$2" want="$3"
  local dest="$root/vendor/$name"
  local patches=("$root"/patches/"$name"/*.patch)
  local stamp
  # The stamp covers the crate and the patch set; llama.cpp's is also part of
  # the engine build recorded in every cache file (system_info.rs).
  stamp="$({ echo "$name $version $want"; cat "${patches[@]}"; } | sha256sum | cut -d' ' -f1)"
  if [ -f "$dest/.semantic-stamp" ] && [ "$(cat "$dest/.semantic-stamp")" = "$stamp" ]; then
    return 0
  fi
  local tmp crate got
  tmp="$(mktemp -d)"
  crate="$(crate_file "$name" "$version")"
  got="$(sha256sum "$crate" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    echo "sha256 mismatch for $name-$version.crate: got $got, expected $want" >&2
    rm -rf "$tmp"
    return 1
  fi
  tar -xzf "$crate" -C "$tmp"
  for p in "${patches[@]}"; do
    echo "applying $name/$(basename "$p")"
    # Exactly as written: no fuzz and no offset, so a patch whose context or
    # place no longer matches (an upgraded crate, a reordered patch set)
    # fails here instead of landing somewhere nearby.
    local out
    if ! out="$(patch -p1 --fuzz=0 --no-backup-if-mismatch -d "$tmp/$name-$version" <"$p" 2>&1)" ||
      grep -Eq "offset|fuzz" <<<"$out"; then
      echo "$out" >&2
      echo "$(basename "$p") does not apply to $name $version exactly as written; re-derive it (its header says how)" >&2
      rm -rf "$tmp"
      return 1
    fi
  done
  echo "$stamp" >"$tmp/$name-$version/.semantic-stamp"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/$name-$version" "$dest"
  rm -rf "$tmp"
  echo "vendored $name $version with ${#patches[@]} patch(es) into vendor/$name"
}

vendor_crate llama-cpp-sys-2 0.1.161 e9bea77fde41bbc15a278891cd5edd2ba07c5260d162614b41080ba1f100b39b
vendor_crate llama-cpp-2 0.1.160 b98e9f0971b7454a25a550f0bd4577f35b94570be32f8f8dc08d94f4cb2873fe
vendor_crate minijinja 2.24.0 86886cf6dbf4e614b19c9a1eec9775f021869d7eadde0fc73921a81b90c9b4c9
