"""Anthropic's clients, unmodified, against the gateway and the emulator: the anthropic Python
SDK (sync, async, ``messages.stream``, a tool-use loop with ``tool_result``), the TypeScript SDK
(``messages.stream`` under ``node --test``) and LangChain's ``ChatAnthropic`` (invoke, stream,
``bind_tools``), each on a TGI model (prompt template) and on a vLLM-backed model.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import MODELS, gateway_config

NODE_DIR = Path(__file__).parent / "node"
TGI, VLLM = "tgi3", "qwen"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def gw(emulator: Emulator, start_gateway: Callable[..., str]) -> Iterator[str]:
    emulator.set_endpoint(
        "anth-clients-vllm",
        EndpointSpec.model_validate({"server": "vllm", "model_id": "Qwen/Qwen3-4B"}),
    )
    models = [*MODELS, {"name": VLLM, "endpoint": "anth-clients-vllm", "backend": "openai"}]
    yield start_gateway(
        gateway_config(models), Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2)
    )
    emulator.endpoints.pop("anth-clients-vllm", None)


@pytest.fixture
def client(gw: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize("model", [TGI, VLLM])
def test_sync_create(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=6,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert isinstance(message, anthropic.types.Message)
    assert message.model == model and message.stop_reason == "max_tokens"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens == 6 and message.usage.input_tokens > 0


@pytest.mark.parametrize("model", [TGI, VLLM])
def test_async_create(gw: str, model: str) -> None:
    async def run() -> list[anthropic.types.Message]:
        async with anthropic.AsyncAnthropic(base_url=gw, api_key="k", max_retries=0) as client:
            return await asyncio.gather(
                *(
                    client.messages.create(
                        model=model, max_tokens=5, messages=[{"role": "user", "content": f"Hi {i}"}]
                    )
                    for i in range(3)
                )
            )

    messages = asyncio.run(run())
    assert len({m.id for m in messages}) == 3  # three answers, each its own message
    assert all(m.content[0].text for m in messages)  # type: ignore[union-attr]


@pytest.mark.parametrize("model", [TGI, VLLM])
def test_messages_stream(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(
        model=model, max_tokens=12, messages=[{"role": "user", "content": "Tell me something"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens > 0


def test_the_sdk_reads_the_count_tokens_route(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(
        model=TGI, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert counted.input_tokens > 0


def test_a_tool_use_loop_with_tool_result(client: anthropic.Anthropic) -> None:
    """Call, result, answer: the agent loop every Anthropic client runs, streamed and not."""
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(model=VLLM, max_tokens=64, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict) and "city" in call.input
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}],
        },
    ]
    with client.messages.stream(
        model=VLLM, max_tokens=32, tools=[WEATHER], messages=messages
    ) as stream:
        answer = stream.get_final_message()
    assert answer.stop_reason in ("end_turn", "max_tokens")
    assert answer.content[0].type == "text" and answer.content[0].text


def test_tools_on_a_template_model_are_a_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=TGI, max_tokens=8, tools=[WEATHER], messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "tools" in caught.value.message


# -- LangChain -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [TGI, VLLM])
def test_langchain_invoke_and_stream(gw: str, model: str) -> None:
    llm = ChatAnthropic(  # type: ignore[call-arg]
        model=model, base_url=gw, api_key="sk-test", max_tokens=8, max_retries=0
    )
    answer = llm.invoke([HumanMessage("Hello")])
    assert isinstance(answer, AIMessage) and answer.text
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] == 8
    chunks = list(llm.stream("Hello again"))
    assert len(chunks) > 2 and "".join(c.text for c in chunks)


def test_langchain_bind_tools_loop(gw: str) -> None:
    llm = ChatAnthropic(  # type: ignore[call-arg]
        model=VLLM, base_url=gw, api_key="sk-test", max_tokens=64, max_retries=0
    )

    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"Sunny in {city}"

    bound = llm.bind_tools([get_weather])
    history: list[Any] = [HumanMessage("Weather in Paris?")]
    first = bound.invoke(history)
    assert isinstance(first, AIMessage) and first.tool_calls
    call = first.tool_calls[0]
    assert call["name"] == "get_weather" and "city" in call["args"]
    history += [first, ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])]
    second = bound.invoke(history)
    assert not second.tool_calls and second.text  # type: ignore[attr-defined]


# -- the TypeScript SDK ----------------------------------------------------------------------


@pytest.mark.parametrize("model", [TGI, VLLM])
def test_typescript_sdk(gw: str, model: str) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the Node client tests"
    assert (NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk").is_dir(), (
        "tests/node's packages are not installed: run `make node-clients` (make test does)"
    )
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", "anthropic.test.mjs"],
        cwd=NODE_DIR,
        env={**os.environ, "GATEWAY_URL": gw, "MODEL": model},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fail 0" in run.stdout and "pass 3" in run.stdout, run.stdout
