"""Fixtures: one real `semantic serve` (real model) for the whole session,
and the official `openai` and `anthropic` SDK clients pointed at it."""

import os
import signal
import socket
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live(base: str) -> bool:
    """True once the model is loaded and the disk tier indexed."""
    try:
        with urllib.request.urlopen(f"{base}/health/startup", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def server():
    binary = _env_path("SEMANTIC_BIN", "target/debug/semantic")
    model = _env_path("SEMANTIC_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert binary.is_file(), f"server binary not found: {binary} (cargo build -p semantic-cli)"
    assert model.is_file(), f"model not found: {model} (scripts/fetch-model.sh)"

    with tempfile.TemporaryDirectory(prefix="semantic-py-") as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [
                str(binary), "serve",
                "--host", "127.0.0.1", "--port", str(port),
                "--model", str(model),
                "--cache-dir", str(Path(tmp) / "cache"),
                "--context-tokens", "8192",
                "--max-sequences", "8",
            ],
            env={**os.environ, "SEMANTIC_API_KEYS": API_KEY},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not _live(base):
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail(f"server not live within 60 s:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.1)
            yield base
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
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def anthropic_client(server):
    # The SDK appends /v1/messages itself, so the base is the server root.
    return anthropic.Anthropic(base_url=server, api_key=API_KEY, max_retries=0, timeout=120)
