"""Fixtures: one real `semantic serve` (real model) for the whole session,
and the official `openai` and `anthropic` SDK clients pointed at it."""

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]

# The server runs with auth on, as in production; SDK clients get this key.
API_KEY = "py-test-key"


def _env_path(name: str, default: str) -> Path:
    path = Path(os.environ.get(name, default))
    return path if path.is_absolute() else ROOT / path


LISTENING = re.compile(r"listening; loading the model.*?127\.0\.0\.1:(\d+)")


def _bound_port(log_path: Path) -> int | None:
    """The port a `--port 0` server bound, from its `listening` log line:
    the kernel picks it at bind time, so no two servers can race for one."""
    for line in log_path.read_text(errors="replace").splitlines():
        found = LISTENING.search(line)
        if found:
            return int(found.group(1))
    return None


def _live(base: str) -> bool:
    """True once the model is loaded and the disk tier indexed."""
    try:
        with urllib.request.urlopen(f"{base}/health/startup", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Server:
    """A running `semantic serve`: its base URL, log file and process."""

    def __init__(self, base: str, log_path: Path, proc: subprocess.Popen):
        self.base = base
        self.log_path = log_path
        self.proc = proc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def prompt_counters(self) -> tuple:
        """(prompt tokens, of which cached) of every finished request so far."""
        return (
            self.metric("semantic_prompt_tokens_total"),
            self.metric("semantic_prompt_tokens_cached_total"),
        )

    def metric(self, name: str) -> float:
        """The sum of every sample of `name` at `GET /metrics` (0 if absent)."""
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=10) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


def run_client(server: Server, argv: list, workdir: Path, env: dict, timeout: float) -> dict:
    """One run of a real client CLI (Claude Code, Codex) against `server`:
    its exit code, what it printed, how long it took and the prompt tokens
    the server prefilled and reused for it. Printed for the record (-rP
    shows it; closing notes quote it); a non-zero exit fails the test."""
    before = server.prompt_counters()
    start = time.monotonic()
    done = subprocess.run(
        argv, cwd=workdir, env=env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )
    wall = time.monotonic() - start
    after = server.prompt_counters()
    run = {
        "args": argv[1:], "rc": done.returncode, "wall_s": round(wall, 1),
        "stdout": done.stdout.strip()[-2000:], "stderr": done.stderr.strip()[-3000:],
        "prompt_tokens": int(after[0] - before[0]), "cached_tokens": int(after[1] - before[1]),
    }
    print(json.dumps(run, indent=1))
    assert done.returncode == 0, f"{run}\nserver log tail:\n{server.log()[-4000:]}"
    return run


@contextlib.contextmanager
def spawn_server(model: Path, *args: str, ready_within: float = 60,
                 cache_dir: Path | None = None, api_keys: str = API_KEY):
    """`semantic serve` on a free loopback port with auth on (`api_keys`,
    comma-separated; API_KEY by default) and a throwaway cache dir unless
    `cache_dir` names one to keep across servers, `args` appended; stopped
    with SIGTERM at the end (unless the test killed it).
    The one way the Python tests start a server."""
    binary = _env_path("SEMANTIC_BIN", "target/debug/semantic")
    assert binary.is_file(), f"server binary not found: {binary} (cargo build -p semantic-cli)"
    assert model.is_file(), f"model not found: {model} (scripts/fetch-model.sh)"
    with tempfile.TemporaryDirectory(prefix="semantic-py-") as tmp:
        log_path = Path(tmp) / "server.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [
                str(binary), "serve",
                "--host", "127.0.0.1", "--port", "0",
                "--model", str(model),
                "--cache-dir", str(cache_dir or Path(tmp) / "cache"),
                *args,
            ],
            env={**os.environ, "SEMANTIC_API_KEYS": api_keys},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + ready_within
            base = None
            while base is None or not _live(base):
                port = _bound_port(log_path)
                base = f"http://127.0.0.1:{port}" if port else None
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail(f"server not live within {ready_within} s:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.1)
            yield Server(base, log_path, proc)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


@pytest.fixture(scope="session")
def server():
    model = _env_path("SEMANTIC_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    with spawn_server(model, "--context-tokens", "8192", "--max-sequences", "8") as running:
        yield running.base


@pytest.fixture(scope="session")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def anthropic_client(server):
    # The SDK appends /v1/messages itself, so the base is the server root.
    return anthropic.Anthropic(base_url=server, api_key=API_KEY, max_retries=0, timeout=120)
