"""The official `openai` Python SDK against the real `semantic serve` and
the real model: responses parse into the SDK's types, streaming works with
the SDK's stream object, errors surface as the SDK's exception classes and
the KV reuse of an agent's second turn shows in `usage`."""

import openai
import pytest

SYSTEM = "You are a helpful assistant."
QUESTION = "What is the capital of France?"
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
]


def test_chat_completion_parses_and_answers_paris(client):
    r = client.chat.completions.create(
        model="default", messages=MESSAGES, temperature=0, max_tokens=32
    )
    assert isinstance(r, openai.types.chat.ChatCompletion)
    assert r.id.startswith("chatcmpl-"), r.id
    assert isinstance(r.model, str) and r.model
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert "Paris" in choice.message.content, choice.message.content
    assert choice.finish_reason in ("stop", "length")
    u = r.usage
    assert u.prompt_tokens > 0
    assert u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_stream_matches_non_streaming_and_ends_with_usage(client):
    kwargs = dict(model="default", messages=MESSAGES, temperature=0, max_tokens=32)
    full = client.chat.completions.create(**kwargs)

    stream = client.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert chunks, "no chunks"
    text = "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices
    )
    assert text == full.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [full.choices[0].finish_reason]
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        assert c.id.startswith("chatcmpl-"), c.id
    last = chunks[-1]
    assert last.usage is not None, last
    assert last.choices == []
    assert last.usage.completion_tokens == full.usage.completion_tokens
    assert last.usage.prompt_tokens == full.usage.prompt_tokens
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_unknown_model_is_bad_request_naming_the_model(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="no-such-model-xyz", messages=MESSAGES, max_tokens=4
        )
    assert e.value.status_code == 400
    assert "no-such-model-xyz" in e.value.message, e.value.message


def test_temperature_out_of_range_is_bad_request(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="default", messages=MESSAGES, temperature=5, max_tokens=4
        )


def test_max_tokens_zero_is_bad_request(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="default", messages=MESSAGES, max_tokens=0
        )


def test_prompt_beyond_context_is_bad_request(client):
    huge = " ".join(["word"] * 40_000)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": huge}],
            max_tokens=4,
        )
    assert e.value.code == "context_length_exceeded", e.value.body


def _two_turns(client, label, **agent):
    history = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name three primary colors."},
    ]
    first = client.chat.completions.create(
        model="default", messages=history, temperature=0, max_tokens=24, **agent
    )
    history += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Which of them is the color of the sky?"},
    ]
    second = client.chat.completions.create(
        model="default", messages=history, temperature=0, max_tokens=16, **agent
    )
    print(f"\n[{label}] turn 1 usage: {first.usage.model_dump_json(exclude_none=True)}")
    print(f"[{label}] turn 2 usage: {second.usage.model_dump_json(exclude_none=True)}")
    u = second.usage
    assert u.prompt_tokens > first.usage.prompt_tokens
    assert u.prompt_tokens_details is not None, u
    cached = u.prompt_tokens_details.cached_tokens
    assert cached is not None and 0 < cached < u.prompt_tokens, u
    return second


def test_second_turn_reuses_cache_via_session_id(client):
    _two_turns(client, "session_id", extra_body={"session_id": "py-agent-1"})


def test_second_turn_reuses_cache_via_agent_header(client):
    _two_turns(client, "X-Agent-ID", extra_headers={"X-Agent-ID": "py-agent-2"})


def test_models_list_returns_loaded_model(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert len(ids) == 1, ids
    assert ids[0] != "default"
    assert models.data[0].object == "model"
    assert client.models.retrieve(ids[0]).id == ids[0]
    # the listed id is usable as a model name
    r = client.chat.completions.create(
        model=ids[0], messages=MESSAGES, temperature=0, max_tokens=4
    )
    assert r.choices[0].message.content


def test_wrong_api_key_raises_authentication_error(server):
    bad = openai.OpenAI(base_url=f"{server}/v1", api_key="not-the-key", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    assert exc.value.status_code == 401
    assert "x-api-key" in str(exc.value)
    assert "not-the-key" not in str(exc.value)
