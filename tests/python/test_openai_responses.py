"""The Responses API (`/v1/responses`) through the official `openai` SDK,
against the real `semantic serve` and the real model: the SDK's types and
stream helper, stored responses (retrieve, delete, input items), tools and
structured output, and the conversation state: a chain sent as new input
plus `previous_response_id` reuses the chain's KV (also after a restart),
equals the same conversation sent whole, branches, survives a SIGKILL and
stays with the key that made it. Answers of the tiny model are not judged,
only exactness and protocol."""

import json
import signal

import openai
import pytest

from conftest import API_KEY, _env_path, spawn_server

MODEL = _env_path("SEMANTIC_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
OTHER_KEY = "py-test-key-other"
SYSTEM = "You are a helpful assistant. Answer in one short sentence."
QUESTIONS = [
    "Name a large city in France.",
    "What river runs through it?",
    "Name one museum there.",
]
GREEDY = dict(model="default", instructions=SYSTEM, temperature=0, max_output_tokens=24)
# Room for a whole forced call or JSON document (the grammar ends them).
STRUCTURED = {**GREEDY, "max_output_tokens": 128}


def sdk(base: str, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)


def cached(response) -> int:
    return response.usage.input_tokens_details.cached_tokens


def source(response) -> str:
    """Our usage extension: which tier the reused KV came from."""
    return response.usage.model_extra["cache_source"]


def whole_conversation(turns, last_question):
    """The items of a conversation sent whole: every earlier question and
    answer, then the new question."""
    items = []
    for question, answer in turns:
        items.append({"role": "user", "content": question})
        items.append({"role": "assistant", "content": answer})
    items.append({"role": "user", "content": last_question})
    return items


def test_create_stream_retrieve_list_and_delete(client):
    r = client.responses.create(input=QUESTIONS[0], **GREEDY)
    assert isinstance(r, openai.types.responses.Response)
    assert r.id.startswith("resp_") and r.object == "response", r
    assert r.status in ("completed", "incomplete"), r
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output_text, r
    u = r.usage
    assert u.input_tokens > 0 and u.output_tokens > 0
    assert u.total_tokens == u.input_tokens + u.output_tokens
    assert u.output_tokens_details.reasoning_tokens == 0

    # The raw event stream: OpenAI's order, numbered, one terminal event
    # (`response.incomplete` when max_output_tokens cut the reply).
    events = list(client.responses.create(input=QUESTIONS[0], stream=True, **GREEDY))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    assert kinds[-1] == f"response.{r.status}", kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == events[-1].response.output_text == r.output_text

    # The SDK's stream helper, on a reply that surely completes (an enum).
    answer = {"type": "json_schema", "name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"answer": {"enum": ["yes", "no"]}},
        "required": ["answer"], "additionalProperties": False}}
    kwargs = dict(input="Is Paris in France?", text={"format": answer}, **STRUCTURED)
    with client.responses.stream(**kwargs) as stream:
        final = stream.get_final_response()
    assert final.status == "completed", final
    assert final.output_text == client.responses.create(**kwargs).output_text
    assert json.loads(final.output_text)["answer"] in ("yes", "no")

    again = client.responses.retrieve(r.id)
    assert again.output_text == r.output_text and again.usage.input_tokens == u.input_tokens
    items = client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == QUESTIONS[0]

    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(input="x", previous_response_id=r.id, **GREEDY)
    assert e.value.code == "previous_response_not_found", e.value.body
    assert r.id in str(e.value.body)


def test_forced_function_call_and_its_output_complete_the_turn(client):
    tool = {
        "type": "function", "name": "get_weather", "strict": True,
        "description": "The weather in a city.",
        "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"], "additionalProperties": False,
        },
    }
    r = client.responses.create(
        input="What is the weather in Paris?", tools=[tool, {"type": "web_search"}],
        tool_choice={"type": "function", "name": "get_weather"}, **STRUCTURED,
    )
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1, r.output
    assert calls[0].name == "get_weather" and calls[0].call_id.startswith("call_")
    assert isinstance(json.loads(calls[0].arguments)["city"], str)

    follow = client.responses.create(
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21 C"}],
        previous_response_id=r.id, tools=[tool], **GREEDY,
    )
    assert follow.status in ("completed", "incomplete"), follow
    assert follow.previous_response_id == r.id
    # The whole earlier prompt is reused; a grammar-forced call is written
    # in tokens that are not its text's own tokenization, so the reuse of
    # the call itself stops where the two part (see docs/api.md).
    assert cached(follow) >= r.usage.input_tokens, (follow.usage, r.usage)
    assert source(follow) == "hot", follow.usage


def test_json_schema_output_matches_the_schema(client):
    schema = {
        "type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"], "additionalProperties": False,
    }
    r = client.responses.create(
        input="Give a city as JSON.", model="default", temperature=0, max_output_tokens=128,
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    assert isinstance(json.loads(r.output_text)["city"], str), r.output_text


def test_a_chain_reuses_its_kv_across_a_restart_and_equals_the_whole_conversation(tmp_path):
    cache = tmp_path / "cache"
    with spawn_server(MODEL, "--context-tokens", "8192", cache_dir=cache) as running:
        client = sdk(running.base)
        r1 = client.responses.create(input=QUESTIONS[0], **GREEDY)
        r2 = client.responses.create(input=QUESTIONS[1], previous_response_id=r1.id, **GREEDY)
    # SIGTERM: the server persisted the chain's agent and its responses.
    with spawn_server(MODEL, "--context-tokens", "8192", cache_dir=cache) as running:
        client = sdk(running.base)
        r3 = client.responses.create(input=QUESTIONS[2], previous_response_id=r2.id, **GREEDY)
        whole = client.responses.create(
            input=whole_conversation([(QUESTIONS[0], r1.output_text), (QUESTIONS[1], r2.output_text)], QUESTIONS[2]),
            store=False, extra_headers={"X-Agent-ID": "whole-reference"}, **GREEDY,
        )
        chained_metric = running.metric("semantic_responses_chained_total")
    transcript = [
        {"turn": n, "id": r.id, "previous": r.previous_response_id, "input_tokens": r.usage.input_tokens,
         "cached_tokens": cached(r), "cache_source": source(r), "output": r.output_text}
        for n, r in enumerate([r1, r2, r3], 1)
    ]
    print(json.dumps(transcript, indent=1))  # -rP shows it (the closing note quotes it)
    assert cached(r2) >= r1.usage.total_tokens - 1, transcript
    assert source(r2) == "hot", transcript
    assert cached(r3) >= r2.usage.total_tokens - 1, transcript
    assert source(r3) == "disk", transcript
    assert r3.output_text == whole.output_text, (r3.output_text, whole.output_text)
    assert whole.usage.input_tokens == r3.usage.input_tokens
    assert chained_metric >= 1


def test_branches_each_equal_their_whole_conversation(client):
    root = client.responses.create(input=QUESTIONS[0], **GREEDY)
    branches = {}
    for question in ("What river runs through it?", "Name a famous dish from there."):
        b = client.responses.create(input=question, previous_response_id=root.id, **GREEDY)
        whole = client.responses.create(
            input=whole_conversation([(QUESTIONS[0], root.output_text)], question),
            store=False, extra_headers={"X-Agent-ID": f"branch-ref-{len(branches)}"}, **GREEDY,
        )
        assert b.output_text == whole.output_text, (question, b.output_text, whole.output_text)
        # The shared turn is reused, whichever branch ran before.
        assert cached(b) >= root.usage.total_tokens - 1, (b.usage, root.usage)
        branches[question] = b


def test_a_response_survives_sigkill_right_after_it_returned(tmp_path):
    cache = tmp_path / "cache"
    with spawn_server(MODEL, "--context-tokens", "8192", cache_dir=cache) as running:
        client = sdk(running.base)
        r1 = client.responses.create(input=QUESTIONS[0], **GREEDY)
        r2 = client.responses.create(input=QUESTIONS[1], previous_response_id=r1.id, **GREEDY)
        running.proc.send_signal(signal.SIGKILL)
        running.proc.wait(timeout=10)
    with spawn_server(MODEL, "--context-tokens", "8192", cache_dir=cache) as running:
        client = sdk(running.base)
        assert client.responses.retrieve(r2.id).output_text == r2.output_text
        r3 = client.responses.create(input=QUESTIONS[2], previous_response_id=r2.id, **GREEDY)
        assert r3.status in ("completed", "incomplete")
        assert r3.usage.input_tokens > r2.usage.total_tokens


def test_another_key_cannot_read_continue_or_delete_a_response():
    with spawn_server(MODEL, "--context-tokens", "8192", api_keys=f"{API_KEY},{OTHER_KEY}") as running:
        owner, other = sdk(running.base), sdk(running.base, OTHER_KEY)
        r = owner.responses.create(input=QUESTIONS[0], **GREEDY)
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(r.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.input_items.list(r.id)
        with pytest.raises(openai.BadRequestError) as e:
            other.responses.create(input="x", previous_response_id=r.id, **GREEDY)
        assert e.value.code == "previous_response_not_found"
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(r.id)
        assert owner.responses.retrieve(r.id).output_text == r.output_text
