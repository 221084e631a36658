"""``/v1/responses`` on the wire: byte-exact event streams for fixed emulator answers (text on a
TGI model, a function call on a vLLM model), failures before and after the head (throttling
included), the 404 of stored responses, and the 400s of what a stateless gateway refuses (with
``param``).

The fixtures in tests/fixtures/responses are hand-written reference bytes: whole SSE bodies in
OpenAI's documented event order and key order, never written by the gateway. Each is first
checked on its own (every event validates against the openai SDK's event union, its name is its
``type``, sequence numbers count from 0, the last event's response validates as the SDK's
``Response``), then compared byte for byte with what the gateway streams. Only the clock
(``created_at``, ``completed_at``) and the upstream's random tool-call id are masked, and
heartbeat comments a slow machine may add are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import omit
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from llm_gateway.backends.chunks import chat_chunk
from llm_gateway.config import Settings
from llm_gateway.core.errors import ErrorKind, GatewayError
from llm_gateway.core.events import ChatChunk
from llm_gateway.dialects.openai.responses.encoding import ResponseEncoder
from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.http.sse import wire
from tests.conftest import MODELS, gateway_config

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
ANSWER = "Hello, world! Nice to **meet** you."
CLOCK = re.compile(rb'"(created_at|completed_at)":\d+')
CALL_ID = re.compile(rb"chatcmpl-tool-[0-9a-f]{32}")  # the emulated vLLM's random call id
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
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


@pytest.fixture
def oai(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def vllm(emulator: Emulator, start_gateway: Callable[..., str]) -> Iterator[str]:
    """A gateway whose ``qwen-fx`` model is served by the emulator's vLLM (tools relayed)."""
    emulator.set_endpoint("oa-fx", EndpointSpec.model_validate({"server": "vllm"}))
    model = {"name": "qwen-fx", "endpoint": "oa-fx", "backend": "openai"}
    yield start_gateway(
        gateway_config([*MODELS, model]), Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2)
    )
    emulator.endpoints.pop("oa-fx", None)


def post(gateway: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway}/v1/responses", json=body, headers=headers, timeout=30)


def masked(body: bytes) -> bytes:
    blocks = [b for b in body.split(b"\n\n") if b and not b.startswith(b":")]
    body = CLOCK.sub(rb'"\1":0', b"".join(b + b"\n\n" for b in blocks))
    return CALL_ID.sub(b"chatcmpl-tool-0", body)


def reference(name: str) -> bytes:
    """A hand-written fixture, checked against the SDK's types before it is used."""
    body = (FIXTURES / name).read_bytes()
    blocks = body.split(b"\n\n")
    assert blocks[-1] == b"" and all(blocks[:-1]), "events end with a blank line"
    for number, block in enumerate(blocks[:-1]):
        event, data = block.split(b"\n")
        parsed = orjson.loads(data.removeprefix(b"data: "))
        assert event == b"event: " + parsed["type"].encode()
        assert parsed["sequence_number"] == number
        EVENTS.validate_python(parsed)  # the SDK's own event types
    Response.model_validate(parsed["response"])
    return body


def check_fixture(name: str, body: bytes) -> None:
    assert masked(body) == reference(name)


def final_response(body: bytes) -> dict[str, Any]:
    last = masked(body).split(b"\n\n")[-2].split(b"data: ")[1]
    response: dict[str, Any] = orjson.loads(last)["response"]
    return response


def test_full_stream_is_byte_exact(gateway: str, faulty: Any) -> None:
    faulty(output_text=ANSWER)
    r = post(gateway, {"model": "faulty", "input": "Hi", "stream": True}, **{"x-request-id": "fx1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    check_fixture("completed.sse", r.content)
    # the buffered answer is the stream's final response
    whole = post(gateway, {"model": "faulty", "input": "Hi"}, **{"x-request-id": "fx1"})
    final = final_response(r.content)
    assert orjson.loads(masked(whole.content)) == final
    assert Response.model_validate(final).output_text == ANSWER


def test_length_cut_is_response_incomplete(gateway: str, faulty: Any) -> None:
    faulty(output_text=ANSWER)
    r = post(
        gateway,
        {"model": "faulty", "input": "Hi", "stream": True, "max_output_tokens": 3},
        **{"x-request-id": "fx2"},
    )
    check_fixture("incomplete.sse", r.content)
    last = orjson.loads(masked(r.content).split(b"\n\n")[-2].split(b"data: ")[1])
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_mid_stream_failure_is_response_failed(gateway: str, faulty: Any) -> None:
    faulty(output_text=ANSWER, faults=[{"kind": "model_stream_error", "at_token": 2}])
    r = post(gateway, {"model": "faulty", "input": "Hi", "stream": True}, **{"x-request-id": "fx3"})
    assert r.status_code == 200
    check_fixture("failed.sse", r.content)
    last = orjson.loads(masked(r.content).split(b"\n\n")[-2].split(b"data: ")[1])
    assert last["type"] == "response.failed" and last["response"]["status"] == "failed"
    assert last["response"]["error"]["code"] == "server_error"
    assert last["response"]["error"]["type"] == "timeout"


def test_function_call_stream_is_byte_exact(vllm: str, emulator: Emulator) -> None:
    body = {"model": "qwen-fx", "input": "Weather in Paris?", "tools": [WEATHER]}
    r = post(vllm, {**body, "stream": True}, **{"x-request-id": "fx4"})
    assert r.status_code == 200
    check_fixture("function_call.sse", r.content)
    # what the container was asked: the tool in chat completions' shape, relayed
    sent = orjson.loads(emulator.stats_for("oa-fx").recent[-1]["body"])
    function = {k: v for k, v in WEATHER.items() if k != "type"}
    assert sent["tools"] == [{"type": "function", "function": function}]
    assert sent["tool_choice"] == "auto" and "parallel_tool_calls" not in sent
    assert sent["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    # buffered: the stream's final response, to the byte (call ids aside)
    whole = post(vllm, body, **{"x-request-id": "fx4"})
    assert orjson.loads(masked(whole.content)) == final_response(r.content)
    call = Response.model_validate_json(whole.content).output[0]
    assert call.type == "function_call" and call.call_id.startswith("chatcmpl-tool-")


def read_chunk(data: dict[str, Any]) -> ChatChunk:
    """A chunk as the upstream sends it, read the way the chat back-ends read it."""
    chunk = chat_chunk(data)
    assert chunk is not None
    return chunk


def chat_chunks() -> list[ChatChunk]:
    """An upstream chat stream that writes text, then two calls (as vLLM streams them)."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return read_chunk({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def call(index: int, arguments: str, **head: Any) -> dict[str, Any]:
        fragment: dict[str, Any] = {"index": index, **head, "function": {"arguments": arguments}}
        if "name" in head:
            fragment["function"]["name"] = fragment.pop("name")
        return {"tool_calls": [fragment]}

    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me check."}),
        chunk(call(0, '{"city":', id="call_a", type="function", name="get_weather")),
        chunk(call(0, '"Paris"}')),
        chunk(call(1, "", id="call_b", type="function", name="noop")),
        chunk(call(1, "{}"), finish="tool_calls"),
        read_chunk({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9}}),
    ]


def encoder(wire: bool) -> ResponseEncoder:
    echo = {"model": "m", "temperature": 1.0, "top_p": 1.0, "tools": [], "tool_choice": "auto"}
    return ResponseEncoder(
        request_id="r1", echo=echo, stops=[], prompt_tokens=lambda _: (0, True), wire=wire
    )


def test_text_then_parallel_calls_are_items_in_order() -> None:
    """Items open in the order the model writes them, one closing before the next opens; the
    openai SDK's own stream accumulator follows the events to the same final response."""
    streaming = encoder(wire=True)
    body = wire(streaming.opening()) + b"".join(wire(streaming.event(c)) for c in chat_chunks())
    body += wire(streaming.end())
    events = [orjson.loads(b.split(b"data: ")[1]) for b in body.split(b"\n\n")[:-1]]
    assert [(e["type"], e.get("output_index")) for e in events] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(EVENTS.validate_python(event))
    final = events[-1]["response"]
    assert final["output"] == [
        {
            "id": "msg_r1",
            "type": "message",
            "status": "completed",
            "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": "Let me check."}
            ],
            "role": "assistant",
        },
        {
            "id": "fc_r1_1",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"city":"Paris"}',
            "call_id": "call_a",
            "name": "get_weather",
        },
        {
            "id": "fc_r1_2",
            "type": "function_call",
            "status": "completed",
            "arguments": "{}",
            "call_id": "call_b",
            "name": "noop",
        },
    ]
    assert final["usage"]["input_tokens"] == 20 and final["usage"]["output_tokens"] == 9
    # buffered: the same encoder without the wire, the same response
    buffered = encoder(wire=False)
    assert all(buffered.event(c) == () for c in chat_chunks()) and buffered.end() == ()
    assert buffered.final is not None
    clock = {"created_at": 0, "completed_at": 0}
    assert {**buffered.final, **clock} == {**final, **clock}


def test_failure_inside_a_call_keeps_the_partial_call() -> None:
    streaming = encoder(wire=True)
    for chunk in chat_chunks()[:4]:
        streaming.event(chunk)
    error = GatewayError("boom", status=504, error_type="timeout", kind=ErrorKind.STREAM)
    last = orjson.loads(wire(streaming.error(error)).split(b"data: ")[1])
    assert last["type"] == "response.failed"
    EVENTS.validate_python(last)
    message, call = last["response"]["output"]
    assert message["status"] == "completed"  # closed when the call began
    assert call["status"] == "incomplete" and call["arguments"] == '{"city":"Paris"}'
    assert last["response"]["error"]["code"] == "server_error"


def test_throttling_after_the_head_is_response_failed(
    start_gateway: Callable[..., str], faulty: Any, emulator: Emulator
) -> None:
    """The head goes out while the upstream is slow; SageMaker then throttles every attempt:
    one ``response.failed`` with OpenAI's ``rate_limit_exceeded``, and the stream ends."""
    url = start_gateway(
        settings=Settings(stream_commit_seconds=0.2, heartbeat_seconds=0.1, max_attempts=2)
    )
    faulty(faults=[{"kind": "slow_first_byte", "seconds": 0.6}, {"kind": "throttling"}])
    before = emulator.stats_for("faulty-endpoint").requests
    r = post(url, {"model": "faulty", "input": "Hi", "stream": True}, **{"x-request-id": "th1"})
    assert r.status_code == 200  # committed before the failure: it is an event
    events = [orjson.loads(b.split(b"data: ")[1]) for b in masked(r.content).split(b"\n\n")[:-1]]
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    for event in events:
        EVENTS.validate_python(event)
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["output"] == []
    assert failed["error"]["code"] == "rate_limit_exceeded"
    assert emulator.stats_for("faulty-endpoint").requests - before == 2  # both attempts made
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    seen = list(client.responses.create(model="faulty", input="Hi", stream=True))
    assert seen[-1].type == "response.failed" and seen[-1].response.error
    assert seen[-1].response.error.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/responses/resp_abc"),
        ("DELETE", "/v1/responses/resp_abc"),
        ("GET", "/v1/responses/resp_abc/input_items"),
        ("POST", "/v1/responses/resp_abc/cancel"),
    ],
)
def test_stored_responses_are_404(gateway: str, method: str, path: str) -> None:
    body = {} if method == "POST" else None  # as the SDK posts (JSON)
    r = httpx.request(method, gateway + path, json=body, timeout=30)
    assert r.status_code == 404
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if not path.endswith("/cancel"):  # the stateless explanation on the routes OpenAI serves
        assert error["message"].startswith("Response with id 'resp_abc' not found.")
        assert "stateless" in error["message"]


def test_stored_responses_through_the_sdk(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="resp_abc"):
        oai.responses.retrieve("resp_abc")
    with pytest.raises(openai.NotFoundError, match="resp_abc"):
        oai.responses.delete("resp_abc")


def test_failure_seen_by_the_clients(oai: openai.OpenAI, gateway: str, faulty: Any) -> None:
    faulty(output_text=ANSWER, faults=[{"kind": "model_stream_error", "at_token": 2}])
    events = list(oai.responses.create(model="faulty", input="Hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error and "allotted time" in events[-1].response.error.message
    with oai.responses.stream(model="faulty", input="Hi") as stream:
        kinds = [e.type for e in stream]
        assert kinds[-1] == "response.failed"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="faulty",
        base_url=f"{gateway}/v1",
        api_key="unused",  # type: ignore[arg-type]
        use_responses_api=True,
        max_retries=0,
    )
    with pytest.raises(ValueError, match="allotted time"):
        list(llm.stream("Hi"))


def test_failure_before_the_head_is_an_http_error(oai: openai.OpenAI, faulty: Any) -> None:
    faulty(faults=[{"kind": "throttling"}])
    with pytest.raises(openai.RateLimitError) as limited:
        oai.responses.create(model="faulty", input="Hi", stream=True)
    assert limited.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    faulty(faults=[{"kind": "internal_failure"}])
    with pytest.raises(openai.APIStatusError) as failed:
        oai.responses.create(model="faulty", input="Hi")
    assert failed.value.status_code == 502
    faulty(faults=[{"kind": "model_stream_error", "at_token": 0}])  # within the commit window
    with pytest.raises(openai.APIStatusError) as timed_out:
        oai.responses.create(model="faulty", input="Hi", stream=True)
    assert timed_out.value.status_code == 504


FUNCTION = {"type": "function", "name": "f", "parameters": {}}
BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
    ({"conversation": "conv_1"}, "conversation", "stateless"),
    ({"background": True}, "background", "stateless"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt", "stored prompt"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
    ({"tools": [FUNCTION]}, "tools", "prompt template has no tool calling"),
    ({"tools": "f"}, "tools", "expected an array"),
    ({"tools": [FUNCTION, "f"]}, "tools[1]", "expected an object"),
    ({"tools": [{"type": "function"}]}, "tools[0].name", "Missing required parameter"),
    ({"tools": [{**FUNCTION, "parameters": []}]}, "tools[0].parameters", "an object"),
    ({"tools": [{**FUNCTION, "strict": "yes"}]}, "tools[0].strict", "a boolean"),
    ({"tool_choice": "required"}, "tool_choice", "needs at least one tool"),
    ({"tool_choice": "sometimes"}, "tool_choice", "Invalid value"),
    ({"tool_choice": 1}, "tool_choice", "Invalid type"),
    ({"tool_choice": {"type": "web_search"}}, "tool_choice.type", "web_search"),
    ({"tool_choice": {"type": "function"}}, "tool_choice.name", "Missing required"),
    ({"tool_choice": {"type": "function", "name": "f"}}, "tool_choice.name", "not a function"),
    ({"include": ["message.output_text.logprobs"]}, "include", "Log probabilities"),
    ({"input": None}, "input", "Missing required parameter"),
    ({"input": []}, "input", "empty"),
    ({"input": 5}, "input", "expected a string or an array"),
    ({"input": ["Hi"]}, "input[0]", "expected an input item"),
    ({"stop": 1}, "stop", "expected a string or an array of strings"),
    (
        {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
        "input[0].type",
        "tool items need a model that takes tools",
    ),
    (
        {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]},
        "input[0].type",
        "function_call",
    ),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "item_reference"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "tool"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
        "input[0].content[0].type",
        "input_image",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
        "input[0].content[0].type",
        "output_text",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
        "input[0].content[0].text",
        "string",
    ),
    ({"max_output_tokens": 0}, "max_output_tokens", "at least 1"),
    ({"max_output_tokens": "8"}, "max_output_tokens", "expected an integer"),
    ({"temperature": 3}, "temperature", "between 0 and 2"),
    ({"top_p": 1.5}, "top_p", "between 0 and 1"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "up to 4"),
    ({"text": {"format": {"type": "json_object"}}}, "text.format", "json_schema"),
    ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "name"),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", "schema"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type", "unknown variant"),
    ({"metadata": {"a": 1}}, "metadata.a", "invalid type"),
]

# On a model that takes tools: the tool items' own fields, by path.
BAD_ON_VLLM: list[tuple[dict[str, Any], str, str]] = [
    (
        {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        "input[0].call_id",
        "Missing required parameter",
    ),
    (
        {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
        "input[0].arguments",
        "a string",
    ),
    (
        {"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
        "input[0].output",
        "expected a string or an array",
    ),
    (
        {
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_image", "image_url": "x"}],
                }
            ]
        },
        "input[0].output[0].type",
        "input_image",
    ),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type", "reasoning"),
    ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type", "function tools only"),
]


@pytest.mark.parametrize(("fields", "param", "fragment"), BAD_ON_VLLM)
def test_tool_refusals_on_a_tool_model_are_400_with_param(
    vllm: str, emulator: Emulator, fields: dict[str, Any], param: str, fragment: str
) -> None:
    before = emulator.stats_for("oa-fx").requests
    r = post(vllm, {"model": "qwen-fx", "input": "Hi", **fields})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fragment in error["message"]
    assert emulator.stats_for("oa-fx").requests == before  # refused before any model call


@pytest.mark.parametrize(("fields", "param", "fragment"), BAD)
def test_refusals_are_400_with_param(
    gateway: str, fields: dict[str, Any], param: str, fragment: str
) -> None:
    r = post(gateway, {"model": "tgi3", "input": "Hi", **fields})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fragment in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_refusals_through_the_sdk(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model="tgi3", input="Hi", previous_response_id="resp_x")
    assert info.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError) as missing:
        oai.responses.create(model="nope", input="Hi")
    assert missing.value.code == "model_not_found"


def test_limits_name_responses_parameters(gateway: str) -> None:
    r = post(gateway, {"model": "tgi3", "input": " x" * 1100, "max_output_tokens": 1000})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert "1000 `max_new_tokens`" in r.json()["error"]["message"]  # TGI's own words
    r = post(gateway, {"model": "gemma-jinja", "input": "Hi", "instructions": "Be brief."})
    assert r.status_code == 400 and "System role not supported" in r.json()["error"]["message"]


def test_not_json_is_415_in_openai_shape(gateway: str) -> None:
    r = httpx.post(f"{gateway}/v1/responses", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "error" in r.json() and "message" in r.json()["error"]
