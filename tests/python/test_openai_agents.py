"""The OpenAI Agents SDK (`openai-agents`, pinned) on its default model, the
Responses API, against the real `semantic serve` and the real model: an
agent with one function tool calls it with valid arguments (the first turn
forces a call; the SDK resets `tool_choice` after it, as it does by
default) and the run ends with a final output. The answer of the tiny
model is not judged."""

import asyncio
import json

import openai
import pytest

agents = pytest.importorskip("agents", reason="openai-agents is installed by scripts/test.sh")
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool  # noqa: E402

from conftest import API_KEY  # noqa: E402

agents.set_tracing_disabled(True)


def test_an_agent_calls_its_tool_and_finishes(server):
    calls = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"It is sunny and 21 C in {city}."

    client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0, timeout=120)
    agent = Agent(
        name="weather",
        instructions="You are a helpful assistant. Use the tool, then answer in one short sentence.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="default", openai_client=client),
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=96),
    )
    result = asyncio.run(Runner.run(agent, "What is the weather in Paris?", max_turns=4))
    print(json.dumps({"tool_calls": calls, "final_output": result.final_output}, indent=1))
    assert calls and all(isinstance(c, str) and c for c in calls), calls
    assert isinstance(result.final_output, str) and result.final_output.strip(), result.final_output
    # Every model call went through /v1/responses (the SDK's default API).
    assert all(r.response_id and r.response_id.startswith("resp_") for r in result.raw_responses)
