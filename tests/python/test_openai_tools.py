"""Tool calling and structured output through the official `openai` SDK
against the real server and model: forced calls parse into the SDK's
tool-call types with JSON arguments, a tool-result turn completes,
`beta.chat.completions.parse` yields a pydantic object, and the SDK's
stream helper assembles a streamed call."""

import json
from typing import Literal

import pydantic

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = dict(model="default", temperature=0, max_tokens=96)


def _check_weather_call(call):
    assert call.type == "function"
    assert call.id.startswith("call_"), call.id
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str), args
    assert args["unit"] in ("celsius", "fahrenheit"), args
    return args


def test_required_tool_choice_returns_parseable_tool_calls(client):
    r = client.chat.completions.create(
        **GREEDY, messages=ASK, tools=[WEATHER], tool_choice="required"
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert len(choice.message.tool_calls) == 1
    _check_weather_call(choice.message.tool_calls[0])


def test_tool_result_follow_up_completes(client):
    first = client.chat.completions.create(
        **GREEDY,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = first.choices[0].message.tool_calls[0]
    messages = ASK + [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21, "sky": "clear"}'},
    ]
    second = client.chat.completions.create(
        **GREEDY, messages=messages, tools=[WEATHER], tool_choice="none"
    )
    choice = second.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert isinstance(choice.message.content, str) and choice.message.content
    assert not choice.message.tool_calls


class Verdict(pydantic.BaseModel):
    answer: Literal["yes", "no"]
    confidence: int


def test_parse_with_a_pydantic_response_format(client):
    r = client.beta.chat.completions.parse(
        **GREEDY,
        messages=[{"role": "user", "content": "Is Paris in France?"}],
        response_format=Verdict,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Verdict), choice.message.content
    assert Verdict.model_validate_json(choice.message.content) == choice.message.parsed


def test_json_schema_response_format_returns_matching_json(client):
    schema = {
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"enum": ["red", "blue"]}, "maxItems": 3}},
        "required": ["colors"],
        "additionalProperties": False,
    }
    r = client.chat.completions.create(
        **GREEDY,
        messages=[{"role": "user", "content": "Name some colors."}],
        response_format={"type": "json_schema", "json_schema": {"name": "colors", "schema": schema, "strict": True}},
    )
    doc = json.loads(r.choices[0].message.content)
    assert set(doc) == {"colors"}
    assert all(c in ("red", "blue") for c in doc["colors"]), doc


def test_streamed_tool_call_is_assembled_by_the_sdk(client):
    whole = client.chat.completions.create(
        **GREEDY, messages=ASK, tools=[WEATHER], tool_choice="required"
    )
    expected = whole.choices[0].message.tool_calls[0]
    with client.beta.chat.completions.stream(
        **GREEDY, messages=ASK, tools=[WEATHER], tool_choice="required"
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert _check_weather_call(call) == json.loads(expected.function.arguments)
