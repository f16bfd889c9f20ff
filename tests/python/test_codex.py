"""Codex CLI itself (the pinned npm release, installed by scripts/test.sh
into .clients/) against the real server over the Responses API, unchanged:
a provider entry with the server's base URL and `wire_api = "responses"`,
a key in the environment variable it names, a throwaway CODEX_HOME.

Codex's prompt (instructions, tools, environment) is about 6.4K tokens
before the conversation grows, too close to the default model's 8K
window, so the server runs the 32K-window Gemma 3 270M, set up as
docs/clients.md says for a base model (the same settings as the Claude
Code test): `--stop` ends each reply at its first line as an end of turn,
`--default-temperature 0`, `--max-tokens-cap` bounds each reply. Codex
sends its whole history each turn with `store: false` and names its
conversation in `prompt_cache_key`, so `codex exec resume --last` is the
same agent and must read most of its prompt from the cache. The answers
of a 270M model are not judged."""

import os
from pathlib import Path

import pytest

from conftest import API_KEY, _env_path, run_client, spawn_server

CODEX = _env_path("CODEX_BIN", ".clients/codex/node_modules/.bin/codex")
LONG_MODEL = _env_path("SEMANTIC_LONG_MODEL", "models/gemma-3-270m-q4_k_m.gguf")
CONTEXT = 32768
RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def long_server():
    args = (
        "--context-tokens", str(CONTEXT), "--model-alias", "*=default",
        "--stop", "\n", "--default-temperature", "0", "--max-tokens-cap", "16",
    )
    with spawn_server(LONG_MODEL, *args, ready_within=120) as running:
        yield running


def codex_home(base: str, home: Path) -> Path:
    """A CODEX_HOME whose config points Codex at the server."""
    codex = home / "codex"
    codex.mkdir(parents=True, exist_ok=True)
    (codex / "config.toml").write_text(
        f'model = "default"\n'
        f'model_provider = "semantic"\n'
        f"model_context_window = {CONTEXT}\n"
        f"check_for_update_on_startup = false\n"
        f"\n[model_providers.semantic]\n"
        f'name = "semantic"\n'
        f'base_url = "{base}/v1"\n'
        f'env_key = "SEMANTIC_API_KEY"\n'
        f'wire_api = "responses"\n'
    )
    return codex


def codex_env(base: str, home: Path) -> dict:
    """Nothing from the caller's environment but PATH: a user's own
    OPENAI_* or CODEX_* settings must not leak into the test."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home(base, home)),
        "SEMANTIC_API_KEY": API_KEY,
    }


def run_codex(server, workdir: Path, home: Path, *args: str) -> dict:
    """One `codex exec` run: what it printed, how long it took and the
    prompt tokens the server prefilled and reused for it."""
    argv = [str(CODEX), "exec", "--skip-git-repo-check", *args]
    return run_client(server, argv, workdir, codex_env(server.base, home), RUN_TIMEOUT_S)


def test_codex_exec_runs_unchanged_and_resuming_reads_the_cache(long_server, tmp_path):
    assert CODEX.is_file(), f"Codex not installed at {CODEX} (scripts/test.sh installs it)"
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A scratch project for a Codex test.\n")

    first = run_codex(long_server, workdir, home, "Reply with the single word: ready")
    # Codex's own prompt (instructions, tools, environment) arrived whole:
    # about 6.4K tokens for a model it has no metadata for (0.171.0).
    assert first["prompt_tokens"] > 4000, first
    for failure in ("stream disconnected", "unexpected status", "error decoding"):
        assert failure not in first["stderr"], first

    second = run_codex(long_server, workdir, home, "resume", "--last", "Reply with the single word: again")
    assert second["cached_tokens"] >= 0.8 * second["prompt_tokens"], second
