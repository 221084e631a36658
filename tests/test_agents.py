"""The OpenAI Agents SDK (``openai-agents``), unmodified, runs an agent with a function tool to
completion through the gateway: with its default model class (the Responses API,
``/v1/responses``) and with ``OpenAIChatCompletionsModel`` (``/v1/chat/completions``), buffered
and streamed, on a model served by the emulator's vLLM.

The simulated model calls the first tool while it has no tool result and answers in text once
the conversation's last message is one (``llm_gateway.emulator.openai_request._tool``), so a
run is exactly: model call, tool call, model call, final answer. Offline: tracing is disabled,
so nothing is exported to OpenAI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest
from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import MODELS, gateway_config

ENDPOINT = "oa-agents"


@pytest.fixture(scope="module")
def agents_gateway(emulator: Emulator, start_gateway: Callable[..., str]) -> Iterator[str]:
    set_tracing_disabled(True)  # no trace export to OpenAI's servers
    emulator.set_endpoint(
        ENDPOINT, EndpointSpec.model_validate({"server": "vllm", "model_id": "Qwen/Qwen3-4B"})
    )
    model = {"name": "qwen-agent", "endpoint": ENDPOINT, "backend": "openai"}
    yield start_gateway(
        gateway_config([*MODELS, model]), Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2)
    )
    emulator.endpoints.pop(ENDPOINT, None)


def forecaster(model: Model, calls: list[tuple[str, int]]) -> Agent[Any]:
    @function_tool
    def get_weather(city: str, days: int) -> str:
        """The weather forecast for a city.

        Args:
            city: The city.
            days: How many days ahead.
        """
        calls.append((city, days))
        return f"Sunny in {city} for {days} days"

    return Agent(
        name="forecaster",
        instructions="Answer with the forecast.",
        tools=[get_weather],
        model=model,
    )


def model_for(kind: str, gateway: str) -> Model:
    client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
    if kind == "responses":
        return OpenAIResponsesModel(model="qwen-agent", openai_client=client)
    return OpenAIChatCompletionsModel(model="qwen-agent", openai_client=client)


def sent_bodies(emulator: Emulator, since: int) -> list[dict[str, Any]]:
    stats = emulator.stats_for(ENDPOINT)
    recent = list(stats.recent)[-(stats.requests - since) :] if stats.requests > since else []
    return [orjson.loads(r["body"]) for r in recent]


def check_the_round_trip(emulator: Emulator, before: int) -> None:
    """Two model calls: the first offers the tool, the second carries its result."""
    first, second = sent_bodies(emulator, before)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["messages"][-1] == {"role": "user", "content": "Weather in Paris?"}
    call, result = second["messages"][-2:]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    assert result == {
        "role": "tool",
        "tool_call_id": call["tool_calls"][0]["id"],
        "content": "Sunny in simulated for 1 days",
    }


@pytest.mark.parametrize("kind", ["responses", "chat_completions"])
def test_agent_runs_a_tool_to_completion(
    agents_gateway: str, emulator: Emulator, kind: str
) -> None:
    calls: list[tuple[str, int]] = []
    agent = forecaster(model_for(kind, agents_gateway), calls)
    before = emulator.stats_for(ENDPOINT).requests
    result = asyncio.run(Runner.run(agent, "Weather in Paris?", max_turns=4))
    assert calls == [("simulated", 1)]  # the tool ran once, with the model's arguments
    assert isinstance(result.final_output, str) and result.final_output
    assert len(result.raw_responses) == 2
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    check_the_round_trip(emulator, before)


@pytest.mark.parametrize("kind", ["responses", "chat_completions"])
def test_streamed_agent_runs_a_tool_to_completion(
    agents_gateway: str, emulator: Emulator, kind: str
) -> None:
    calls: list[tuple[str, int]] = []
    agent = forecaster(model_for(kind, agents_gateway), calls)
    before = emulator.stats_for(ENDPOINT).requests

    async def run() -> tuple[Any, list[str]]:
        result = Runner.run_streamed(agent, "Weather in Paris?", max_turns=4)
        names = [
            event.name
            async for event in result.stream_events()
            if event.type == "run_item_stream_event"
        ]
        return result, names

    result, names = asyncio.run(run())
    assert calls == [("simulated", 1)]
    assert names == ["tool_called", "tool_output", "message_output_created"]
    assert isinstance(result.final_output, str) and result.final_output
    check_the_round_trip(emulator, before)
