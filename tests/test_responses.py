"""``POST /v1/responses`` with the openai SDK and LangChain, unmodified, over real HTTP.

Every body the gateway answers is validated with the SDK's own pydantic types
(``Response``, the stream event union), so a field the SDK requires cannot go missing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from llm_gateway.emulator.model import tokenize
from llm_gateway.templates import FAMILIES, Message

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)

ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


@pytest.fixture
def oai(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


def upstream(emulator: Any, endpoint: str = "tgi3-endpoint") -> dict[str, Any]:
    sent: dict[str, Any] = orjson.loads(emulator.stats_for(endpoint).recent[-1]["body"])
    return sent


def prompt_of(messages: list[tuple[str, str]], family: str = "chatml") -> str:
    return FAMILIES[family].render([Message(r, c) for r, c in messages])


def raw_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` of each SSE event; the name must match the data's ``type``."""
    out = []
    for block in body.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name
        out.append((name, data))
    return out


def test_buffered_response_is_the_sdks_response(oai: openai.OpenAI, emulator: Any) -> None:
    r = oai.responses.create(
        model="tgi3",
        input="Hello there",
        instructions="Be brief.",
        max_output_tokens=8,
        metadata={"ticket": "42"},
        store=True,
    )
    Response.model_validate(r.model_dump())  # strict round trip through the SDK type
    assert r.id.startswith("resp_") and r.object == "response" and r.model == "tgi3"
    assert r.status == "incomplete" and r.incomplete_details
    assert r.incomplete_details.reason == "max_output_tokens"
    [item] = r.output
    assert item.type == "message" and item.id.startswith("msg_") and item.role == "assistant"
    assert item.status == "incomplete"
    [part] = item.content
    assert part.type == "output_text" and part.annotations == [] and part.text == r.output_text
    assert r.output_text
    sent = upstream(emulator)
    prompt = prompt_of([("system", "Be brief."), ("user", "Hello there")])
    assert sent["inputs"] == prompt and sent["parameters"]["max_new_tokens"] == 8
    assert r.usage and r.usage.input_tokens == len(tokenize(prompt))
    assert r.usage.output_tokens == 8
    assert r.usage.total_tokens == r.usage.input_tokens + 8
    assert r.usage.input_tokens_details.cached_tokens == 0
    assert r.usage.output_tokens_details.reasoning_tokens == 0
    # the echo fields, as OpenAI answers them; store: true is answered as false (nothing stored)
    body = r.model_dump()
    assert body["instructions"] == "Be brief." and body["metadata"] == {"ticket": "42"}
    assert body["max_output_tokens"] == 8 and body["store"] is False
    assert body["tools"] == [] and body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert body["temperature"] == 1.0 and body["top_p"] == 1.0
    assert body["error"] is None and body["previous_response_id"] is None


def test_completed_when_the_model_stops(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model="tgi3", input="Hi", max_output_tokens=400, temperature=0)
    assert r.status == "completed" and r.incomplete_details is None
    assert r.output[0].status == "completed" and r.completed_at is not None
    assert r.temperature == 0


def test_message_items_roles_and_parts(oai: openai.OpenAI, emulator: Any) -> None:
    oai.responses.create(
        model="tgi3",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Hi "},
                    {"type": "input_text", "text": "there"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Bonjour", "annotations": []}],
            },
            {"role": "user", "content": "Again"},
        ],
        max_output_tokens=3,
    )
    assert upstream(emulator)["inputs"] == prompt_of(
        [
            ("system", "Answer in French."),
            ("user", "Hi there"),
            ("assistant", "Bonjour"),
            ("user", "Again"),
        ]
    )


def test_stream_events_in_order_and_typed(oai: openai.OpenAI, gateway: str) -> None:
    whole = oai.responses.create(model="tgi3", input="Hello", max_output_tokens=12, temperature=0)
    events = list(
        oai.responses.create(
            model="tgi3", input="Hello", max_output_tokens=12, temperature=0, stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:5] == ORDER[:5] and kinds[-4:-1] == ORDER[-3:]
    assert kinds[-1] == "response.incomplete"
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == whole.output_text
    final = events[-1].response
    assert final.output_text == text and final.usage == whole.usage
    assert final.id == events[0].response.id and events[0].response.status == "in_progress"
    # each raw event validates against the SDK's event union; names match the data's type
    raw = httpx.post(
        f"{gateway}/v1/responses",
        json={"model": "tgi3", "input": "Hello", "max_output_tokens": 5, "stream": True},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    for _name, data in raw_events(raw.content):
        EVENTS.validate_python(data)


def test_stream_helper_and_final_response(oai: openai.OpenAI) -> None:
    deltas = []
    with oai.responses.stream(model="tgi3", input="Hi", max_output_tokens=400, temperature=0) as s:
        for event in s:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = s.get_final_response()
    assert final.status == "completed" and final.output_text == "".join(deltas)
    assert final.usage and final.usage.output_tokens > 0


def test_async_client(gateway: str) -> None:
    async def run() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key="x", max_retries=0)
        whole = await client.responses.create(
            model="tgi3", input="Hi", max_output_tokens=6, temperature=0
        )
        stream = await client.responses.create(
            model="tgi3", input="Hi", max_output_tokens=6, temperature=0, stream=True
        )
        text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
        return whole.output_text, text

    whole, streamed = asyncio.run(run())
    assert whole == streamed


def test_per_model_base_url(gateway: str, emulator: Any) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/models/mistral/v1", api_key="x", max_retries=0)
    r = client.responses.create(model="ignored-by-the-path", input="Hi", max_output_tokens=2)
    assert r.model == "mistral"
    assert upstream(emulator)["inputs"] == prompt_of([("user", "Hi")], "mistral")


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


CITY = '{"city": "Paris", "population": 2102650}'


def test_json_schema_becomes_a_grammar(oai: openai.OpenAI, emulator: Any, faulty: Any) -> None:
    faulty(output_text=CITY)  # the emulator does not run grammars: it answers this JSON
    fmt = {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}
    r = oai.responses.create(model="faulty", input="A city?", text={"format": fmt})
    sent = upstream(emulator, "faulty-endpoint")
    assert sent["parameters"]["grammar"] == {"type": "json", "value": SCHEMA}
    assert json.loads(r.output_text) == {"city": "Paris", "population": 2102650}
    assert r.text and r.text.format and r.text.format.type == "json_schema"
    assert r.model_dump(by_alias=True, exclude_none=True)["text"]["format"] == fmt  # as sent
    with oai.responses.stream(model="faulty", input="A city?", text={"format": fmt}) as s:
        assert json.loads(s.get_final_response().output_text)["city"] == "Paris"


class City(BaseModel):
    city: str
    population: int


def test_parse_with_a_pydantic_model(oai: openai.OpenAI, emulator: Any, faulty: Any) -> None:
    faulty(output_text=CITY)
    r = oai.responses.parse(model="faulty", input="A city?", text_format=City)
    assert r.output_parsed == City(city="Paris", population=2102650)
    grammar = upstream(emulator, "faulty-endpoint")["parameters"]["grammar"]
    assert grammar["type"] == "json" and grammar["value"]["required"] == ["city", "population"]


def test_sampling_mapping_reaches_tgi(oai: openai.OpenAI, emulator: Any) -> None:
    oai.responses.create(
        model="tgi3",
        input="Hi",
        temperature=0.7,
        top_p=1,
        max_output_tokens=4,
        extra_body={"stop": ["zzz"]},
    )
    p = upstream(emulator)["parameters"]
    assert p["temperature"] == 0.7 and p["do_sample"] is True and "top_p" not in p
    assert p["stop"][0] == "zzz" and "<|im_end|>" in p["stop"]  # the client's, then chatml's
    oai.responses.create(model="tgi3", input="Hi", temperature=0, top_p=0.5, max_output_tokens=2)
    p = upstream(emulator)["parameters"]
    assert p["do_sample"] is False and "temperature" not in p and "top_p" not in p


def test_stop_text_never_reaches_the_client(oai: openai.OpenAI) -> None:
    whole = oai.responses.create(model="tgi3", input="Hi", max_output_tokens=40, temperature=0)
    stop = whole.output_text.split()[3]
    cut = oai.responses.create(
        model="tgi3", input="Hi", max_output_tokens=40, temperature=0, extra_body={"stop": stop}
    )
    assert cut.status == "completed" and stop not in cut.output_text
    assert whole.output_text.startswith(cut.output_text)
    streamed = "".join(
        e.delta
        for e in oai.responses.create(
            model="tgi3",
            input="Hi",
            max_output_tokens=40,
            temperature=0,
            extra_body={"stop": stop},
            stream=True,
        )
        if e.type == "response.output_text.delta"
    )
    assert streamed == cut.output_text


def test_chat_api_backend(oai: openai.OpenAI, emulator: Any) -> None:
    """Models whose endpoint takes chat requests get one; the answer is the same shape."""
    r = oai.responses.create(
        model="chat-api", input="Hi", instructions="Be brief.", max_output_tokens=5
    )
    sent = upstream(emulator)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert sent["max_tokens"] == 5
    assert r.status == "incomplete" and r.usage and r.usage.output_tokens == 5
    assert "input_tokens_estimated" not in r.usage.model_dump()  # TGI's own counts
    events = list(
        oai.responses.create(
            model="chat-api",
            input="Hi",
            instructions="Be brief.",
            max_output_tokens=5,
            stream=True,
        )
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.usage == r.usage


def test_langchain_responses_api(gateway: str) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="tgi3",
        base_url=f"{gateway}/v1",
        api_key="unused",  # type: ignore[arg-type]
        use_responses_api=True,
        max_retries=0,
        temperature=0,
        max_tokens=10,
    )
    msg = llm.invoke([("system", "Be brief."), ("human", "Hello")])
    assert msg.text and msg.usage_metadata and msg.usage_metadata["output_tokens"] == 10
    assert msg.response_metadata["id"].startswith("resp_")
    chunks = list(llm.stream("Hello"))
    streamed = "".join(c.text for c in chunks)
    assert streamed and streamed == llm.invoke("Hello").text


def test_a_fallback_answers_and_is_named(start_gateway: Any, faulty: Any, emulator: Any) -> None:
    from llm_gateway.config import Settings
    from tests.conftest import MODELS, gateway_config

    faulty(faults=[{"kind": "throttling"}])
    busy = {
        "name": "busy",
        "endpoint": "faulty-endpoint",
        "template": "zephyr",
        "fallbacks": ["tgi082"],
    }
    url = start_gateway(gateway_config([*MODELS, busy]), Settings(max_attempts=1))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    r = client.responses.create(model="busy", input="Hi", max_output_tokens=3)
    assert r.model == "tgi082" and r.output_text
    assert upstream(emulator, "tgi082-endpoint")["inputs"] == prompt_of([("user", "Hi")], "llama2")
    events = list(
        client.responses.create(model="busy", input="Hi", max_output_tokens=3, stream=True)
    )
    assert {e.response.model for e in events if hasattr(e, "response")} == {"tgi082"}


# -- function tools, on a model served by the emulator's vLLM (tools relayed) -------------------

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}
NOOP: dict[str, Any] = {"type": "function", "name": "noop", "parameters": {"type": "object"}}
# One container per flavour; the split ones cut the stream's bytes anywhere.
TOOL_ENDPOINTS: dict[str, dict[str, Any]] = {
    "oa-tools": {"server": "vllm"},
    "oa-tools-split": {"server": "vllm", "split": "random"},
    "oa-tools-sglang": {"server": "sglang", "model_id": "default", "split": "bytes:5"},
    "oa-tools-lmi": {"server": "lmi", "split": "random"},
}
TOOL_MODELS: list[dict[str, Any]] = [
    {"name": "qwen-tools", "endpoint": "oa-tools", "backend": "openai"},
    {"name": "qwen-tools-split", "endpoint": "oa-tools-split", "backend": "openai"},
    {
        "name": "qwen-tools-sglang",
        "endpoint": "oa-tools-sglang",
        "backend": "openai",
        "chat_only": True,
    },
    {"name": "qwen-tools-lmi", "endpoint": "oa-tools-lmi", "backend": "openai"},
]


@pytest.fixture(scope="module")
def tool_client(emulator: Any, start_gateway: Any) -> Iterator[openai.OpenAI]:
    from llm_gateway.config import Settings
    from llm_gateway.emulator import EndpointSpec
    from tests.conftest import MODELS, gateway_config

    for name, spec in TOOL_ENDPOINTS.items():
        emulator.set_endpoint(name, EndpointSpec.model_validate(spec))
    url = start_gateway(
        gateway_config([*MODELS, *TOOL_MODELS]),
        Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2),
    )
    yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    for name in TOOL_ENDPOINTS:
        emulator.endpoints.pop(name, None)


def test_function_call_buffered_and_streamed(tool_client: openai.OpenAI, emulator: Any) -> None:
    r = tool_client.responses.create(
        model="qwen-tools", input="Weather in Paris?", tools=[WEATHER], temperature=0
    )
    Response.model_validate(r.model_dump())
    assert r.status == "completed" and r.output_text == ""
    [call] = r.output
    assert call.type == "function_call" and call.status == "completed"
    assert call.name == "get_weather" and call.id and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"city": "simulated", "days": 1}
    assert r.tools[0].type == "function" and r.tools[0].name == "get_weather"
    assert r.tool_choice == "auto" and r.usage and r.usage.output_tokens == 16
    events = list(
        tool_client.responses.create(
            model="qwen-tools",
            input="Weather in Paris?",
            tools=[WEATHER],
            temperature=0,
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(kinds[3:-3]) == {"response.function_call_arguments.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert all(e.item_id == events[2].item.id and e.output_index == 0 for e in deltas)
    assert "".join(e.delta for e in deltas) == call.arguments
    final = events[-1].response
    [streamed] = final.output
    assert streamed.type == "function_call" and streamed.arguments == call.arguments
    assert final.usage == r.usage
    with tool_client.responses.stream(
        model="qwen-tools", input="Weather in Paris?", tools=[WEATHER]
    ) as stream:
        done = [e for e in stream if e.type == "response.function_call_arguments.done"]
        helper = stream.get_final_response()
    assert json.loads(done[0].arguments) == {"city": "simulated", "days": 1}
    assert helper.output[0].type == "function_call"


def test_tool_choice_and_parallel_calls_reach_the_container(
    tool_client: openai.OpenAI, emulator: Any
) -> None:
    r = tool_client.responses.create(
        model="qwen-tools",
        input="Hi",
        tools=[NOOP, WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    sent = upstream(emulator, "oa-tools")
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["tools"][0] == {
        "type": "function",
        "function": {"name": "noop", "parameters": {"type": "object"}},
    }
    assert [o.type for o in r.output] == ["function_call"] and r.output[0].name == "get_weather"
    assert r.tool_choice.type == "function" and r.parallel_tool_calls is False
    none = tool_client.responses.create(
        model="qwen-tools", input="Hi", tools=[WEATHER], tool_choice="none"
    )
    assert upstream(emulator, "oa-tools")["tool_choice"] == "none"
    assert [o.type for o in none.output] == ["message"] and none.output_text
    required = tool_client.responses.create(
        model="qwen-tools", input="Hi", tools=[NOOP, WEATHER], tool_choice="required"
    )
    assert required.output[0].type == "function_call" and required.output[0].name == "noop"


def test_tool_result_turn_is_stateless_and_answered_in_text(
    tool_client: openai.OpenAI, emulator: Any
) -> None:
    """The client sends the call back with its output; the container gets the chat history
    (the assistant's tool call, then a ``tool`` message), and the simulated model answers."""
    first = tool_client.responses.create(
        model="qwen-tools", input="Weather in Paris?", tools=[WEATHER]
    )
    call = first.output[0]
    assert call.type == "function_call"
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),  # the SDK's item as the Agents SDK sends it back
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ]
    second = tool_client.responses.create(
        model="qwen-tools", input=history, tools=[WEATHER], instructions="Be brief."
    )
    assert second.status == "completed" and [o.type for o in second.output] == ["message"]
    assert second.output_text
    assert upstream(emulator, "oa-tools")["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": "Sunny, 21 C"},
    ]
    streamed = list(
        tool_client.responses.create(
            model="qwen-tools", input=history, tools=[WEATHER], stream=True
        )
    )
    assert streamed[-1].type == "response.completed"
    assert [o.type for o in streamed[-1].response.output] == ["message"]
    # a forced call is still a call (vLLM forces it by guided decoding)
    forced = tool_client.responses.create(
        model="qwen-tools", input=history, tools=[WEATHER], tool_choice="required"
    )
    assert [o.type for o in forced.output] == ["function_call"]


def test_calls_of_one_turn_are_one_assistant_message(
    tool_client: openai.OpenAI, emulator: Any
) -> None:
    def call(n: int) -> dict[str, Any]:
        return {"type": "function_call", "call_id": f"c{n}", "name": "noop", "arguments": "{}"}

    def output(n: int) -> dict[str, Any]:
        return {
            "type": "function_call_output",
            "call_id": f"c{n}",
            "output": [{"type": "input_text", "text": f"r{n}"}],
        }

    tool_client.responses.create(
        model="qwen-tools",
        input=[
            {"role": "user", "content": "Go"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Calling.", "annotations": []}],
            },
            call(1),
            call(2),
            output(1),
            output(2),
        ],
        tools=[NOOP],
    )
    messages = upstream(emulator, "oa-tools")["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert messages[1]["content"] == "Calling."
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": "r2"}


@pytest.mark.parametrize("model", ["qwen-tools-split", "qwen-tools-sglang", "qwen-tools-lmi"])
def test_tools_on_every_openai_server(tool_client: openai.OpenAI, model: str) -> None:
    """vLLM (stream cut anywhere), SGLang and LMI (JSON Lines) stream tool calls differently;
    the response is the same, buffered or streamed, and the next turn answers in text."""
    whole = tool_client.responses.create(model=model, input="Weather?", tools=[WEATHER])
    [call] = whole.output
    assert call.type == "function_call" and json.loads(call.arguments) == {
        "city": "simulated",
        "days": 1,
    }
    events = list(
        tool_client.responses.create(model=model, input="Weather?", tools=[WEATHER], stream=True)
    )
    for event in events:
        EVENTS.validate_python(event.model_dump(exclude_unset=True))
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    [streamed] = events[-1].response.output
    assert streamed.type == "function_call" and deltas == streamed.arguments == call.arguments
    assert events[-1].response.usage == whole.usage
    history: list[Any] = [
        {"role": "user", "content": "Weather?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"},
    ]
    answer = tool_client.responses.create(model=model, input=history, tools=[WEATHER])
    assert [o.type for o in answer.output] == ["message"] and answer.output_text
