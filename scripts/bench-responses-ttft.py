#!/usr/bin/env python3
"""First-token time of a Responses API turn that continues a stored
conversation (`previous_response_id`), next to the same conversation sent
whole to a server with nothing cached:

  cold   the whole history (turn 1's input and reply, then the new question)
         sent with `store: false`, each time under an API key of its own (a
         tenant of its own: nothing shared, nothing cached);
  hot    a turn chained on turn 1 while its agent's KV is in the engine;
  disk   the same after a restart (SIGTERM, start again): the chain's agent
         is read from its file.

Turn 1's input is about --history-tokens tokens of generated prose. Medians
of --reps first-token times, measured by the official `openai` SDK
streaming (request sent to first `response.output_text.delta`).

    .venv/bin/python scripts/bench-responses-ttft.py \\
        --binary target/release/semantic --model models/SmolLM2-135M-Instruct.Q4_1.gguf
"""

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

WORDS = (
    "agent river planner memory window cache turn model token layer city museum "
    "history bridge north market garden signal harbor letter winter engine story "
    "question answer careful quiet bright early later simple common distant"
).split()


def prose(words: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    sentences = []
    while sum(len(s.split()) for s in sentences) < words:
        n = rng.randint(6, 16)
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
    return " ".join(sentences)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, args, cache: Path, keys: list[str]):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(cache.parent / "server.log", "ab")
        self.proc = subprocess.Popen(
            [args.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--model", args.model, "--cache-dir", str(cache), "--context-tokens", "8192"],
            env={**os.environ, "SEMANTIC_API_KEYS": ",".join(keys)},
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/health/startup", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {self.log.name}")
            time.sleep(0.1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


def first_token(client, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    ttft = None
    final = None
    for event in client.responses.create(stream=True, **kwargs):
        if ttft is None and event.type == "response.output_text.delta":
            ttft = time.perf_counter() - start
        if event.type in ("response.completed", "response.incomplete"):
            final = event.response
    return ttft, final


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/semantic")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--history-tokens", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    keys = [f"bench-key-{i}" for i in range(args.reps + 1)]
    settings = dict(model="default", instructions="You are a helpful assistant.",
                    temperature=0, max_output_tokens=8)
    question = "Summarise the text above in one sentence."
    with tempfile.TemporaryDirectory(prefix="bench-responses-") as tmp:
        cache = Path(tmp) / "cache"
        server = Server(args, cache, keys)
        owner = openai.OpenAI(base_url=f"{server.base}/v1", api_key=keys[0], max_retries=0, timeout=600)
        # About 1.12 tokens per word of this prose (SmolLM2's tokenizer).
        first = owner.responses.create(input=prose(int(args.history_tokens / 1.12)), **settings)
        print(f"turn 1: {first.usage.input_tokens} input tokens, {first.usage.output_tokens} output")
        whole = [{"role": "user", "content": prose(int(args.history_tokens / 1.12))},
                 {"role": "assistant", "content": first.output_text},
                 {"role": "user", "content": question}]
        results = {"cold": [], "hot": [], "disk": []}
        for i in range(args.reps):
            tenant = openai.OpenAI(base_url=f"{server.base}/v1", api_key=keys[i + 1], max_retries=0, timeout=600)
            t, r = first_token(tenant, input=whole, store=False, **settings)
            results["cold"].append((t, r.usage))
            t, r = first_token(owner, input=question, previous_response_id=first.id, store=False, **settings)
            results["hot"].append((t, r.usage))
        for _ in range(args.reps):
            server.stop()
            server = Server(args, cache, keys)
            owner = openai.OpenAI(base_url=f"{server.base}/v1", api_key=keys[0], max_retries=0, timeout=600)
            t, r = first_token(owner, input=question, previous_response_id=first.id, store=False, **settings)
            results["disk"].append((t, r.usage))
        server.stop()
    cold = statistics.median(t for t, _ in results["cold"])
    print(f"{'case':6} {'median ttft':>12} {'input':>6} {'cached':>7} {'source':>7} {'speed-up':>9}")
    for case, runs in results.items():
        median = statistics.median(t for t, _ in runs)
        usage = runs[-1][1]
        cached = usage.input_tokens_details.cached_tokens
        source = usage.model_extra.get("cache_source")
        print(f"{case:6} {median * 1000:10.1f} ms {usage.input_tokens:6} {cached:7} {source:>7} {cold / median:8.1f}x")


if __name__ == "__main__":
    main()
