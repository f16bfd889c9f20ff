"""The official `anthropic` Python SDK against the real `semantic serve` and
the real model: responses parse into the SDK's types, the SDK's stream
helper works, tool use comes back as the SDK's `ToolUseBlock` (whole and
streamed), `count_tokens` agrees with a real call, errors surface as the
SDK's exception classes, and an agent's second turn reads its KV cache."""

import uuid

import anthropic
import pytest
from anthropic.types import Message, ToolUseBlock

SYSTEM = "You are a helpful assistant."
QUESTION = "What is the capital of France?"
MESSAGES = [{"role": "user", "content": QUESTION}]
# Greedy through extra_body: SDK 2.x dropped the `temperature` argument
# (0.x has it); the server reads the body field either way.
ZERO_TEMPERATURE = {"temperature": 0}
GREEDY = dict(model="default", system=SYSTEM, messages=MESSAGES, max_tokens=32, extra_body=ZERO_TEMPERATURE)


def total_input(usage) -> int:
    """Anthropic's rule: the prompt is input + cache read + cache creation."""
    return usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens


def test_message_parses_and_answers_paris(anthropic_client):
    m = anthropic_client.messages.create(**GREEDY)
    assert isinstance(m, Message)
    assert m.id.startswith("msg_"), m.id
    assert m.type == "message" and m.role == "assistant"
    assert isinstance(m.model, str) and m.model
    assert len(m.content) == 1 and m.content[0].type == "text"
    assert "Paris" in m.content[0].text, m.content[0].text
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    u = m.usage
    assert u.output_tokens > 0
    assert total_input(u) > 0
    assert u.cache_creation_input_tokens == 0, u  # anonymous: nothing kept


def test_stream_helper_matches_the_whole_answer(anthropic_client):
    full = anthropic_client.messages.create(**GREEDY)
    with anthropic_client.messages.stream(**GREEDY) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == full.content[0].text
    assert isinstance(final, Message)
    assert final.content[0].text == text
    assert final.stop_reason == full.stop_reason
    assert final.usage.output_tokens == full.usage.output_tokens
    assert total_input(final.usage) == total_input(full.usage)


def test_stop_sequence_is_reported(anthropic_client):
    m = anthropic_client.messages.create(
        model="default",
        messages=[{"role": "user", "content": "Count from 1 to 20, separated by commas."}],
        max_tokens=40,
        stop_sequences=["4."],
        extra_body=ZERO_TEMPERATURE,
    )
    assert m.stop_reason == "stop_sequence", m
    assert m.stop_sequence == "4."
    assert "4." not in m.content[0].text


def test_count_tokens_equals_the_input_of_a_real_call(anthropic_client):
    real = anthropic_client.messages.create(**GREEDY)
    counted = anthropic_client.messages.count_tokens(
        model="default", system=SYSTEM, messages=MESSAGES
    )
    assert counted.input_tokens == total_input(real.usage)


UNITS = ("celsius", "fahrenheit")
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 24}, "unit": {"enum": list(UNITS)}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
FORCED = dict(
    model="default", max_tokens=64, extra_body=ZERO_TEMPERATURE,
    tools=[WEATHER_TOOL], tool_choice={"type": "any"}, messages=WEATHER_QUESTION,
)


def only_tool_use(m: Message) -> ToolUseBlock:
    """The one tool_use block of a forced reply; its input satisfies the schema."""
    assert m.stop_reason == "tool_use", m
    assert len(m.content) == 1, m.content
    block = m.content[0]
    assert isinstance(block, ToolUseBlock), block
    assert block.id.startswith("toolu_"), block.id
    assert block.name == "get_weather"
    assert isinstance(block.input, dict), block.input
    assert set(block.input) == {"city", "unit"}, block.input
    assert isinstance(block.input["city"], str) and block.input["unit"] in UNITS, block.input
    return block


def test_tool_use_with_tool_choice_any_returns_a_tool_use_block(anthropic_client):
    m = anthropic_client.messages.create(**FORCED)
    only_tool_use(m)


def test_a_tool_result_follow_up_completes(anthropic_client):
    first = anthropic_client.messages.create(**FORCED)
    call = only_tool_use(first)
    messages = WEATHER_QUESTION + [
        # The SDK's own blocks go back as the assistant turn, as in Anthropic's docs.
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"},
        ]},
    ]
    m = anthropic_client.messages.create(
        **{**FORCED, "tool_choice": {"type": "none"}, "messages": messages, "max_tokens": 16}
    )
    assert m.stop_reason in ("end_turn", "max_tokens"), m
    assert len(m.content) == 1 and m.content[0].type == "text", m.content


def test_stream_helper_assembles_the_tool_use_block(anthropic_client):
    whole = only_tool_use(anthropic_client.messages.create(**FORCED))
    with anthropic_client.messages.stream(**FORCED) as stream:
        final = stream.get_final_message()
    block = only_tool_use(final)
    assert block.input == whole.input
    assert block.id != whole.id


def _second_turn(first: Message) -> list:
    return MESSAGES + [
        {"role": "assistant", "content": first.content[0].text},
        {"role": "user", "content": "And what is the capital of Italy?"},
    ]


@pytest.mark.parametrize("via", ["header", "metadata"])
def test_an_agents_second_turn_reads_its_cache(anthropic_client, via):
    agent = f"py-anthropic-{via}-{uuid.uuid4().hex[:8]}"
    if via == "header":
        naming = dict(extra_headers={"X-Agent-ID": agent})
    else:
        naming = dict(metadata={"user_id": agent})
    first = anthropic_client.messages.create(**GREEDY, **naming)
    # The agent keeps its KV: fresh prompt tokens count as cache creation.
    assert first.usage.cache_creation_input_tokens > 0, first.usage
    assert first.usage.input_tokens == 0, first.usage

    second = anthropic_client.messages.create(**{**GREEDY, "messages": _second_turn(first)}, **naming)
    u = second.usage
    assert u.cache_read_input_tokens > 0, u
    assert u.cache_creation_input_tokens == total_input(u) - u.cache_read_input_tokens, u
    assert total_input(u) > total_input(first.usage)


def error_of(e) -> dict:
    """The Anthropic envelope's `error` object of an SDK exception."""
    assert e.value.body["type"] == "error", e.value.body
    return e.value.body["error"]


def test_errors_surface_as_sdk_exceptions(anthropic_client):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
    with pytest.raises(anthropic.BadRequestError) as e:
        anthropic_client.messages.create(
            model="default", max_tokens=8, messages=[{"role": "user", "content": [image]}]
        )
    assert error_of(e)["type"] == "invalid_request_error"
    assert "messages[0].content[0].type" in error_of(e)["message"]

    with pytest.raises(anthropic.BadRequestError) as e:
        anthropic_client.messages.create(model="claude-test", max_tokens=8, messages=MESSAGES)
    assert "unknown model" in error_of(e)["message"]

    with pytest.raises(anthropic.BadRequestError) as e:
        anthropic_client.messages.create(
            model="default", max_tokens=8, messages=[{"role": "assistant", "content": "hi"}]
        )
    assert "messages[0].role" in error_of(e)["message"]

    with pytest.raises(anthropic.BadRequestError) as e:
        anthropic_client.messages.create(**{**GREEDY, "extra_body": {"temperature": 1.5}})
    assert "temperature" in error_of(e)["message"]

    with pytest.raises(anthropic.NotFoundError) as e:
        anthropic_client.post("/v1/messages/nope", cast_to=Message, body={})
    assert error_of(e)["type"] == "not_found_error"
