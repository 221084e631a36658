"""``/v1/responses`` on the wire: byte-exact event streams for fixed emulator answers, failures
before and after the head, and the 400s of what a stateless gateway refuses (with ``param``).

The fixtures in tests/fixtures/responses are whole SSE bodies; only the clock (``created_at``,
``completed_at``) is masked, and heartbeat comments a slow machine may add are dropped.
``RESPONSES_FIXTURES=write`` rewrites them after an intended change (review the diff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
ANSWER = "Hello, world! Nice to **meet** you."
CLOCK = re.compile(rb'"(created_at|completed_at)":\d+')
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


@pytest.fixture
def oai(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


def post(gateway: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway}/v1/responses", json=body, headers=headers, timeout=30)


def masked(body: bytes) -> bytes:
    blocks = [b for b in body.split(b"\n\n") if b and not b.startswith(b":")]
    return CLOCK.sub(rb'"\1":0', b"".join(b + b"\n\n" for b in blocks))


def check_fixture(name: str, body: bytes) -> None:
    path = FIXTURES / name
    if os.environ.get("RESPONSES_FIXTURES") == "write":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(masked(body))
    assert masked(body) == path.read_bytes()
    for block in masked(body).split(b"\n\n")[:-1]:
        event, data = block.split(b"\n")
        parsed = orjson.loads(data.removeprefix(b"data: "))
        assert event == b"event: " + parsed["type"].encode()
        EVENTS.validate_python(parsed)  # the SDK's own event types


def test_full_stream_is_byte_exact(gateway: str, faulty: Any) -> None:
    faulty(output_text=ANSWER)
    r = post(gateway, {"model": "faulty", "input": "Hi", "stream": True}, **{"x-request-id": "fx1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    check_fixture("completed.sse", r.content)
    # the buffered answer is the stream's final response
    whole = post(gateway, {"model": "faulty", "input": "Hi"}, **{"x-request-id": "fx1"})
    final = orjson.loads(masked(r.content).split(b"\n\n")[-2].split(b"data: ")[1])["response"]
    assert orjson.loads(CLOCK.sub(rb'"\1":0', whole.content)) == final
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


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
    ({"conversation": "conv_1"}, "conversation", "stateless"),
    ({"background": True}, "background", "stateless"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt", "stored prompt"),
    ({"tools": [{"type": "web_search"}]}, "tools", "web_search"),
    ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools", "function"),
    ({"tool_choice": "required"}, "tool_choice", "no tools"),
    ({"include": ["message.output_text.logprobs"]}, "include", "Log probabilities"),
    ({"input": None}, "input", "Missing required parameter"),
    ({"input": []}, "input", "empty"),
    ({"input": 5}, "input", "expected a string or an array"),
    ({"input": ["Hi"]}, "input[0]", "expected an input item"),
    ({"stop": 1}, "stop", "expected a string or an array of strings"),
    (
        {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
        "input[0].type",
        "function_call_output",
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
