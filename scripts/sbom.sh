#!/usr/bin/env bash
# CycloneDX SBOMs (JSON, spec 1.5) of the workspace's crates, written to
# target/sbom/<crate>.cdx.json; semantic-cli.cdx.json describes the shipped
# `semantic` binary: its crates for the default (CPU) features on
# x86_64-unknown-linux-gnu, as deploy/Dockerfile builds it. llama.cpp's C++
# sources are vendored inside the llama-cpp-sys-2 component. Installs
# cargo-cyclonedx when it is missing.
#
# Timestamps come from the last commit (SOURCE_DATE_EPOCH), so the same commit
# gives the same files apart from each BOM's random serialNumber.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_CYCLONEDX_VERSION=0.5.9
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo-cyclonedx >/dev/null; then
  # From source, pinned and with its lock file (about 2.5 minutes on 2 cores).
  echo "sbom: installing cargo-cyclonedx $CARGO_CYCLONEDX_VERSION"
  CARGO_TARGET_DIR="${TOOL_BUILD_DIR:-/tmp/tool-build}" \
    cargo install --locked --quiet cargo-cyclonedx --version "$CARGO_CYCLONEDX_VERSION"
fi

out="target/sbom"
mkdir -p "$out"
# cargo-cyclonedx writes one file beside each member's Cargo.toml; a name of
# our own makes them easy to collect, and the trap removes them on failure.
name="sbom-$$"
trap 'rm -f crates/*/"$name".json' EXIT
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)" \
  cargo cyclonedx --quiet --format json --spec-version 1.5 \
    --target x86_64-unknown-linux-gnu --override-filename "$name"
for f in crates/*/"$name".json; do
  crate="$(basename "$(dirname "$f")")"
  mv "$f" "$out/$crate.cdx.json"
done

# Sanity: a CycloneDX document naming the binary's dependency tree.
python3 - "$out/semantic-cli.cdx.json" <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5", "not a CycloneDX 1.5 BOM"
names = {c["name"] for c in bom.get("components", [])}
for required in ("llama-cpp-2", "llama-cpp-sys-2", "semantic-engine", "axum"):
    assert required in names, f"{required} missing from {sys.argv[1]}"
unlicensed = sorted(c["name"] for c in bom["components"] if not c.get("licenses"))
assert not unlicensed, f"components without a licence: {unlicensed}"
print(f"sbom: {sys.argv[1]}: {len(names)} components, all with licences")
PY
ls -l "$out"
