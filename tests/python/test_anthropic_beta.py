"""The official `anthropic` SDK's beta surface, as Claude Code and other
agents use it: `client.beta.messages.*` with an `anthropic-beta` header on
the `?beta=true` routes (which Claude Code's JS SDK calls; the Python SDK
2.x needs `extra_query` for them), sending `thinking`,
`context_management`, `cache_control` and earlier thinking blocks. The server accepts all of it
(the models here have no thinking mode, so no thinking block comes back)
and answers as the plain routes do."""

import pytest
from anthropic.types.beta import BetaMessage, BetaTextBlock, BetaToolUseBlock

from test_anthropic_sdk import FORCED, GREEDY, MESSAGES, SYSTEM, WEATHER_TOOL, total_input

# What Claude Code 2.1.328 sends on every request.
BETAS = [
    "claude-code-20250219",
    "interleaved-thinking-2025-05-14",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "a-beta-nobody-has-heard-of-2099-01-01",  # unknown betas never fail a request
]
CACHED_SYSTEM = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
CLAUDE_CODE_FIELDS = dict(
    extra_query={"beta": "true"},
    betas=BETAS,
    system=CACHED_SYSTEM,
    context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
)


@pytest.mark.parametrize("thinking", [
    {"type": "adaptive"},
    {"type": "enabled", "budget_tokens": 1024},
    {"type": "disabled"},
])
def test_beta_create_on_the_beta_route_answers_like_the_plain_one(anthropic_client, thinking):
    plain = anthropic_client.messages.create(**GREEDY)
    raw = anthropic_client.beta.messages.with_raw_response.create(
        **{**GREEDY, **CLAUDE_CODE_FIELDS}, thinking=thinking,
    )
    assert "beta=true" in str(raw.http_request.url), raw.http_request.url
    assert raw.http_request.headers["anthropic-beta"] == ",".join(BETAS)
    m = raw.parse()
    assert isinstance(m, BetaMessage)
    # No thinking mode here: only the text block, the same greedy answer.
    assert [b.type for b in m.content] == ["text"], m.content
    assert m.content[0].text == plain.content[0].text
    assert total_input(m.usage) == total_input(plain.usage)


def test_beta_stream_and_count_tokens_agree_with_beta_create(anthropic_client):
    fields = {**GREEDY, **CLAUDE_CODE_FIELDS, "thinking": {"type": "adaptive"}}
    whole = anthropic_client.beta.messages.create(**fields)
    with anthropic_client.beta.messages.stream(**fields) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert isinstance(final, BetaMessage)
    assert text == whole.content[0].text == final.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens

    count_fields = {k: v for k, v in fields.items() if k not in ("max_tokens", "extra_body")}
    counted = anthropic_client.beta.messages.count_tokens(**count_fields)
    assert counted.input_tokens == total_input(whole.usage)


def test_earlier_thinking_blocks_with_signatures_are_accepted(anthropic_client):
    first = anthropic_client.beta.messages.create(**GREEDY)
    history = MESSAGES + [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "The user asks about France.", "signature": "c2lnbmF0dXJl"},
            {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
            {"type": "text", "text": first.content[0].text},
        ]},
        {"role": "user", "content": "And Italy?"},
    ]
    m = anthropic_client.beta.messages.create(
        **{**GREEDY, **CLAUDE_CODE_FIELDS, "messages": history}, thinking={"type": "adaptive"},
    )
    assert isinstance(m.content[0], BetaTextBlock), m.content
    # Thinking is dropped from the prompt, as Anthropic drops earlier turns' thinking.
    without = [MESSAGES[0], {"role": "assistant", "content": first.content[0].text}, history[2]]
    counted = anthropic_client.beta.messages.count_tokens(model="default", system=CACHED_SYSTEM, messages=without)
    assert total_input(m.usage) == counted.input_tokens


def only_call(m: BetaMessage) -> BetaToolUseBlock:
    assert m.stop_reason == "tool_use", m
    calls = [b for b in m.content if isinstance(b, BetaToolUseBlock)]
    assert len(calls) == 1, m.content
    assert calls[0].name == WEATHER_TOOL["name"]
    return calls[0]


def test_beta_tool_use_streamed_and_assembled_equals_the_whole_reply(anthropic_client):
    fields = {
        **FORCED, **CLAUDE_CODE_FIELDS,
        "tools": [{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }
    whole = only_call(anthropic_client.beta.messages.create(**fields))
    with anthropic_client.beta.messages.stream(**fields) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    streamed = only_call(final)
    assert streamed.input == whole.input
    assert streamed.id.startswith("toolu_") and streamed.id != whole.id
    assert "input_json" in events, events
