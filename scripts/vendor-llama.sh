#!/usr/bin/env bash
# Unpack llama-cpp-sys-2 (the crate that carries llama.cpp's sources) into
# vendor/llama-cpp-sys-2 and apply our patches from patches/llama-cpp-sys-2/.
# Cargo.toml's [patch.crates-io] builds that copy instead of the registry's,
# so this must run before any cargo command; scripts/install-deps.sh calls it.
#
# The crate comes from the local cargo cache when present, else from
# static.crates.io, and is checked against its crates.io sha256 (pinned
# below: with the [patch], Cargo.lock no longer records it). Re-running is a
# no-op while the stamp matches; a changed patch set rebuilds the copy from
# scratch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name="llama-cpp-sys-2"
version="0.1.161"
want="e9bea77fde41bbc15a278891cd5edd2ba07c5260d162614b41080ba1f100b39b"
dest="$root/vendor/$name"
patches=("$root"/patches/"$name"/*.patch)

stamp_of() {
  { echo "$name $version $want"; cat "${patches[@]}"; } | sha256sum | cut -d' ' -f1
}
stamp="$(stamp_of)"
if [ -f "$dest/.semantic-stamp" ] && [ "$(cat "$dest/.semantic-stamp")" = "$stamp" ]; then
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
crate="$tmp/$name-$version.crate"
cached="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1 || true)"
if [ -n "$cached" ]; then
  cp "$cached" "$crate"
else
  echo "fetching $name $version from crates.io ..."
  curl -sSfL --retry 3 -o "$crate" "https://static.crates.io/crates/$name/$name-$version.crate"
fi
got="$(sha256sum "$crate" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then
  echo "sha256 mismatch for $name-$version.crate: got $got, expected $want" >&2
  exit 1
fi
tar -xzf "$crate" -C "$tmp"
for p in "${patches[@]}"; do
  echo "applying $(basename "$p")"
  # Exactly as written: no fuzz, so a patch whose context no longer matches
  # (an upgraded crate) fails here instead of landing somewhere nearby.
  if ! patch -s -p1 --fuzz=0 --no-backup-if-mismatch -d "$tmp/$name-$version" <"$p"; then
    echo "$(basename "$p") does not apply to $name $version as written; re-derive it (ARCHITECTURE.md, 'Our llama.cpp patches')" >&2
    exit 1
  fi
done
echo "$stamp" >"$tmp/$name-$version/.semantic-stamp"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp/$name-$version" "$dest"
echo "vendored $name $version with ${#patches[@]} patch(es) into vendor/$name"
