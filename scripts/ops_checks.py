#!/usr/bin/env python3
"""Static checks of the deploy/ artefacts, run by scripts/check-ops.sh.

    ops_checks.py validate --promtool PATH   every check below; exit 1 on any failure
    ops_checks.py sync-prometheusrule        rewrite deploy/kubernetes/prometheusrule.yaml
                                             from deploy/prometheus/alerts.yml

`validate` checks what promtool alone cannot:
- every YAML file under deploy/ parses; Kubernetes objects have apiVersion,
  kind and metadata.name; deploy/semantic.toml is valid TOML and the
  ConfigMap carries it verbatim;
- every alert has a severity, summary, description and a runbook_url naming
  docs/runbooks/<alert>.md, which exists and has the four sections;
- every alert has a promtool test case that fires and one that stays silent;
- the PrometheusRule carries exactly the groups of alerts.yml;
- the Grafana dashboard parses, uses the datasource variable, has unique panel
  ids, shows every metric the server exports, and each query is valid
  PromQL (checked by promtool on a generated rules file);
- every `semantic_*` metric named in rules, tests, panels and docs exists
  (is listed in docs/observability.md), and every one the crates emit is
  listed there;
- the Deployment probes the three health endpoints and gives the drain time;
- the Dockerfile builds --locked, runs non-root and serves on 0.0.0.0:8080;
- the systemd unit drains with SIGTERM within TimeoutStopSec.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS_RULE = DEPLOY / "kubernetes" / "prometheusrule.yaml"
DASHBOARD = DEPLOY / "grafana" / "semantic-dashboard.json"
SYSTEMD_UNIT = DEPLOY / "systemd" / "semantic.service"
CONFIG_FILE = DEPLOY / "semantic.toml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOYMENT = DEPLOY / "kubernetes" / "deployment.yaml"
# The server's default --shutdown-timeout; every grace period must exceed it
# plus the preStop sleep, or the drain is killed before caches are persisted.
SHUTDOWN_TIMEOUT_S = 30
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
SEVERITIES = {"critical", "warning", "info"}

# The metrics the server exports: the table of docs/observability.md, the
# one list (the dashboard must show each; names in rules, tests, panels and
# docs must be among them; the code may emit no other, and
# crates/semantic-cli/tests/metrics_at_startup.rs checks that a fresh
# `semantic serve` exposes each of them before any request). Histograms are
# listed by base name.
OBSERVABILITY = ROOT / "docs" / "observability.md"


def documented_metrics() -> list[str]:
    return re.findall(r"^\| `(semantic_[a-z_]+)` \|", OBSERVABILITY.read_text(), re.MULTILINE)


METRICS = documented_metrics()

# `semantic_*` words that are not metrics: the crates' names, as log targets.
NOT_METRICS = {"semantic_domain", "semantic_engine", "semantic_server", "semantic_store", "semantic_cli"}

# What Grafana substitutes in queries, replaced by something PromQL parses.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$instance": ".*",
}


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"FAIL {what}", file=sys.stderr)
        return ok


def load_yaml_docs(path: Path) -> list:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def alert_rules(groups: list) -> list[dict]:
    return [r for g in groups for r in g.get("rules", []) if "alert" in r]


def check_yaml_files(c: Checker) -> None:
    for path in sorted(list(DEPLOY.rglob("*.yml")) + list(DEPLOY.rglob("*.yaml"))):
        rel = path.relative_to(ROOT)
        try:
            docs = load_yaml_docs(path)
        except yaml.YAMLError as e:
            c.check(False, f"{rel}: does not parse: {e}")
            continue
        c.check(len(docs) > 0, f"{rel}: holds no document")
        if path.parent.name != "kubernetes":
            continue
        for doc in docs:
            kind = doc.get("kind") if isinstance(doc, dict) else None
            c.check(
                isinstance(doc, dict) and "apiVersion" in doc and kind is not None,
                f"{rel}: a document lacks apiVersion or kind",
            )
            if kind == "Kustomization":
                for res in doc.get("resources", []):
                    c.check((path.parent / res).is_file(), f"{rel}: resource {res} does not exist")
                continue
            c.check(
                bool(doc.get("metadata", {}).get("name")), f"{rel}: a {kind} has no metadata.name"
            )
            if kind == "ConfigMap" and "semantic.toml" in doc.get("data", {}):
                c.check(
                    doc["data"]["semantic.toml"] == CONFIG_FILE.read_text(),
                    f"{rel}: semantic.toml is not a verbatim copy of deploy/semantic.toml",
                )
    try:
        tomllib.loads(CONFIG_FILE.read_text())
        c.check(True, "")
    except tomllib.TOMLDecodeError as e:
        c.check(False, f"deploy/semantic.toml is not valid TOML: {e}")


def check_alerts(c: Checker) -> list[dict]:
    groups = load_yaml_docs(ALERTS)[0]["groups"]
    rules = alert_rules(groups)
    names = [r["alert"] for r in rules]
    c.check(len(rules) >= 8, f"alerts.yml: {len(rules)} alerts, expected at least 8")
    c.check(len(names) == len(set(names)), "alerts.yml: duplicate alert names")
    for rule in rules:
        name = rule["alert"]
        labels = rule.get("labels", {})
        ann = rule.get("annotations", {})
        c.check(labels.get("severity") in SEVERITIES, f"{name}: severity not one of {SEVERITIES}")
        for key in ("summary", "description", "runbook_url"):
            c.check(bool(ann.get(key)), f"{name}: no {key} annotation")
        url = ann.get("runbook_url", "")
        c.check(
            url.endswith(f"/docs/runbooks/{name}.md"),
            f"{name}: runbook_url {url!r} does not end in /docs/runbooks/{name}.md",
        )
        page = RUNBOOKS / f"{name}.md"
        if c.check(page.is_file(), f"{name}: runbook {page.relative_to(ROOT)} is missing"):
            text = page.read_text()
            c.check(text.startswith(f"# {name}\n"), f"{page.name}: first line is not '# {name}'")
            for section in RUNBOOK_SECTIONS:
                c.check(
                    re.search(rf"^{re.escape(section)}$", text, re.MULTILINE) is not None,
                    f"{page.name}: no '{section}' section",
                )
    # Every runbook page belongs to an alert (no stale pages).
    for page in RUNBOOKS.glob("*.md"):
        if page.name != "README.md":
            c.check(page.stem in names, f"{page.relative_to(ROOT)}: no alert of that name")
    index = (RUNBOOKS / "README.md").read_text()
    for name in names:
        c.check(f"({name}.md)" in index, f"docs/runbooks/README.md: {name} is not listed")
    return rules


def check_alert_tests(c: Checker, rules: list[dict]) -> None:
    tests = load_yaml_docs(ALERTS_TEST)[0]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests.get("tests", []):
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else silent).add(t["alertname"])
    for rule in rules:
        name = rule["alert"]
        c.check(name in fires, f"alerts_test.yml: no case where {name} fires")
        c.check(name in silent, f"alerts_test.yml: no case where {name} stays silent")


def prometheus_rule_object() -> dict:
    groups = load_yaml_docs(ALERTS)[0]["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "semantic",
            "labels": {"app.kubernetes.io/name": "semantic"},
        },
        "spec": {"groups": groups},
    }


def check_prometheus_rule(c: Checker) -> None:
    docs = load_yaml_docs(PROMETHEUS_RULE)
    c.check(
        len(docs) == 1 and docs[0].get("spec") == prometheus_rule_object()["spec"],
        f"{PROMETHEUS_RULE.relative_to(ROOT)} differs from alerts.yml: "
        "run scripts/ops_checks.py sync-prometheusrule",
    )


def dashboard_exprs(dash: dict) -> list[tuple[str, str]]:
    out = []

    def walk(panels: list) -> None:
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    return out


def check_dashboard(c: Checker, promtool: str) -> None:
    try:
        dash = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        c.check(False, f"{DASHBOARD.name}: not JSON: {e}")
        return
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    c.check(
        variables.get("datasource", {}).get("type") == "datasource"
        and variables["datasource"].get("query") == "prometheus",
        f"{DASHBOARD.name}: no Prometheus datasource variable named 'datasource'",
    )
    ids = []

    def walk(panels: list) -> None:
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                uid = (p.get("datasource") or {}).get("uid")
                c.check(uid == "${datasource}", f"{DASHBOARD.name}: panel {p.get('title')!r} does not use ${{datasource}}")
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    c.check(len(ids) == len(set(ids)) and None not in ids, f"{DASHBOARD.name}: panel ids not unique")
    exprs = dashboard_exprs(dash)
    text = " ".join(e for _, e in exprs)
    for metric in METRICS:
        c.check(re.search(rf"\b{metric}(_bucket|_sum|_count)?\b", text) is not None,
                f"{DASHBOARD.name}: no panel shows {metric}")
    # promtool parses PromQL only inside rule files: one recording rule per query.
    rules = []
    for i, (title, expr) in enumerate(exprs):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        c.check("$" not in expr, f"{DASHBOARD.name}: {title!r} uses an unknown variable")
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    res = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    Path(f.name).unlink()
    c.check(res.returncode == 0, f"{DASHBOARD.name}: invalid PromQL:\n{res.stdout}{res.stderr}")


def check_systemd(c: Checker) -> None:
    keys: dict[str, str] = {}
    section = ""
    for line in SYSTEMD_UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")) and "=" in line:
            k, v = line.split("=", 1)
            keys[f"{section}.{k.strip()}"] = v.strip()
    name = SYSTEMD_UNIT.name
    c.check(keys.get("Service.KillSignal") == "SIGTERM", f"{name}: KillSignal is not SIGTERM")
    c.check(keys.get("Service.TimeoutStopSec") == "45", f"{name}: TimeoutStopSec is not 45")
    c.check(keys.get("Service.ExecStart", "").split()[1:2] == ["serve"], f"{name}: ExecStart does not run `semantic serve`")
    c.check("Install.WantedBy" in keys, f"{name}: no [Install] WantedBy")


def check_deployment(c: Checker) -> None:
    name = DEPLOYMENT.name
    pod = load_yaml_docs(DEPLOYMENT)[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    probes = {
        "startupProbe": "/health/startup",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    for probe, path in probes.items():
        got = container.get(probe, {}).get("httpGet", {}).get("path")
        c.check(got == path, f"{name}: {probe} probes {got!r}, expected {path!r}")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep_s = int(pre_stop[-1]) if pre_stop[:1] == ["/bin/sleep"] else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    c.check(
        grace > SHUTDOWN_TIMEOUT_S + sleep_s,
        f"{name}: terminationGracePeriodSeconds {grace} <= drain {SHUTDOWN_TIMEOUT_S}s + preStop {sleep_s}s",
    )
    c.check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: not runAsNonRoot")
    c.check(
        container.get("securityContext", {}).get("readOnlyRootFilesystem") is True,
        f"{name}: root file system not read-only",
    )
    env = {e["name"]: e for e in container.get("env", [])}
    for key in ("SEMANTIC_API_KEYS", "SEMANTIC_ADMIN_KEY"):
        c.check(
            "secretKeyRef" in env.get(key, {}).get("valueFrom", {}),
            f"{name}: {key} does not come from a Secret",
        )


def check_dockerfile(c: Checker) -> None:
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    name = DOCKERFILE.name

    def has(prefix: str) -> bool:
        return any(line.startswith(prefix) for line in lines)

    c.check(sum(line.startswith("FROM ") for line in lines) >= 2, f"{name}: not multi-stage")
    c.check("cargo build --release -p semantic-cli --locked" in text, f"{name}: no --locked release build")
    c.check(has("USER 10001"), f"{name}: does not switch to the non-root user")
    c.check(has("EXPOSE 8080"), f"{name}: does not EXPOSE 8080")
    c.check(
        has('ENTRYPOINT ["semantic", "serve", "--host", "0.0.0.0"]'),
        f"{name}: ENTRYPOINT is not semantic serve --host 0.0.0.0",
    )
    c.check(has('VOLUME ["/var/lib/semantic"]'), f"{name}: no /var/lib/semantic volume")
    ignored = DOCKERIGNORE.read_text().split()
    for entry in ("target/", "models/", ".venv/"):
        c.check(entry in ignored, f".dockerignore: {entry} is not ignored")


def check_metric_names(c: Checker) -> None:
    """A metric name mistyped in a rule, test, panel or doc would silently
    match nothing; every `semantic_*` name must be one the server exports."""
    files = [ALERTS, ALERTS_TEST, DASHBOARD, ROOT / "docs" / "operations.md", *RUNBOOKS.glob("*.md")]
    for path in files:
        for word in sorted(set(re.findall(r"\bsemantic_[a-z_]+", path.read_text()))):
            base = re.sub(r"_(bucket|sum|count)$", "", word)
            c.check(
                base in METRICS or word in NOT_METRICS,
                f"{path.relative_to(ROOT)}: {word} is not a metric the server exports",
            )


def check_emitted_metrics(c: Checker) -> None:
    """Every metric name the crates' sources emit (string literals given to
    the `metrics` macros, directly or through a constant) is documented, so
    the docs' list, which the start-up test and the dashboard check read, is
    complete."""
    c.check(len(METRICS) >= 20 and "semantic_requests_total" in METRICS,
            f"{OBSERVABILITY.relative_to(ROOT)}: metrics table not found")
    emitted = set()
    for path in sorted(ROOT.glob("crates/*/src/**/*.rs")):
        emitted.update(re.findall(r'"(semantic_[a-z_]+)"', path.read_text()))
    for name in sorted(emitted - NOT_METRICS):
        c.check(name in METRICS, f"crates: {name} is emitted but not listed in {OBSERVABILITY.relative_to(ROOT)}")


def sync_prometheus_rule() -> None:
    class Dumper(yaml.SafeDumper):
        pass

    def str_block(dumper: yaml.SafeDumper, s: str):
        style = "|" if "\n" in s else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)

    Dumper.add_representer(str, str_block)
    header = (
        "# Generated from deploy/prometheus/alerts.yml by\n"
        "# `scripts/ops_checks.py sync-prometheusrule`; edit alerts.yml, not this file\n"
        "# (scripts/check-ops.sh fails when they differ). Your Prometheus object's\n"
        "# ruleSelector must match this object's labels.\n"
    )
    body = yaml.dump(prometheus_rule_object(), Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)
    PROMETHEUS_RULE.write_text(header + body)
    print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate")
    v.add_argument("--promtool", default="promtool")
    sub.add_parser("sync-prometheusrule")
    args = parser.parse_args()
    if args.command == "sync-prometheusrule":
        sync_prometheus_rule()
        return 0
    c = Checker()
    check_yaml_files(c)
    rules = check_alerts(c)
    check_alert_tests(c, rules)
    check_prometheus_rule(c)
    check_dashboard(c, args.promtool)
    check_metric_names(c)
    check_emitted_metrics(c)
    check_deployment(c)
    check_dockerfile(c)
    check_systemd(c)
    print(f"deploy: {c.passed} passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
