"""Claude Code itself (the pinned npm release, installed by scripts/test.sh
into .clients/) against the real server, unchanged: only a base URL, a key
and a model name, with telemetry and non-essential traffic off by its own
documented variables, in a throwaway HOME.

Its prompt (system prompt and tool list) is about 20K tokens, more than the
default model's 8K window, so the server runs the 32K-window Gemma 3 270M.
That is a base model: it never ends its turn, and Claude Code treats a
reply cut at `max_tokens` as a failure (it asks to resume three times, then
exits 1). So the server is set up as docs/clients.md says for such models:
`--stop` ends each reply at its first line (as an end of turn),
`--default-temperature 0` makes the runs repeatable (Claude Code sends no
temperature), and `--max-tokens-cap` bounds each reply on the server's side
(Claude Code asks for 32,000 tokens). `--model-alias *=default` takes
Claude Code's own model names. The first run pays the cold prefill;
`claude -p --continue` is the same session (the same agent, through
`metadata.user_id`) and must read at least 80 % of its prompt tokens from
the cache. The answers of a 270M model are not judged."""

import json
import os
import urllib.request
from pathlib import Path

import pytest

from conftest import API_KEY, _env_path, run_client, spawn_server

CLAUDE = _env_path("CLAUDE_BIN", ".clients/claude-code/node_modules/.bin/claude")
LONG_MODEL = _env_path("SEMANTIC_LONG_MODEL", "models/gemma-3-270m-q4_k_m.gguf")
# A name Claude Code knows (so it assumes a real window), mapped by the alias.
CLIENT_MODEL = "claude-sonnet-4-5"
RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def long_server():
    args = (
        "--context-tokens", "32768", "--model-alias", "*=default",
        "--stop", "\n", "--default-temperature", "0", "--max-tokens-cap", "16",
    )
    with spawn_server(LONG_MODEL, *args, ready_within=120) as running:
        yield running


def claude_env(base: str, home: Path) -> dict:
    """Nothing from the caller's environment but PATH: a user's own
    ANTHROPIC_* settings must not leak into the test."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_MODEL": CLIENT_MODEL,
        # Claude Code's documented switches for telemetry and background traffic.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }


def run_claude(server, workdir: Path, home: Path, *args: str) -> dict:
    """One `claude` run; what it printed, how long it took and the prompt
    tokens the server prefilled and reused for it."""
    argv = [str(CLAUDE), *args]
    run = run_client(server, argv, workdir, claude_env(server.base, home), RUN_TIMEOUT_S)
    assert run["stdout"], run
    return run


def agents(server) -> list:
    request = urllib.request.Request(
        f"{server.base}/v1/agents", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)["data"]


def test_claude_code_runs_unchanged_and_its_second_run_reads_the_cache(long_server, tmp_path):
    assert CLAUDE.is_file(), f"Claude Code not installed at {CLAUDE} (scripts/test.sh installs it)"
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A scratch project for a Claude Code test.\n")

    first = run_claude(long_server, workdir, home, "-p", "Reply with the single word: ready")
    # Claude Code's prompt does not fit the default model's 8K window.
    assert first["prompt_tokens"] > 8192, first

    second = run_claude(long_server, workdir, home, "-p", "--continue", "Reply with the single word: again")
    assert second["prompt_tokens"] > first["prompt_tokens"] // 2, second
    assert second["cached_tokens"] >= 0.8 * second["prompt_tokens"], second

    # Both runs are one Claude Code session, hence one agent.
    sessions = [a["id"] for a in agents(long_server) if a["id"].startswith("session-")]
    assert len(sessions) == 1, agents(long_server)
