"""Endpoints playing vLLM, SGLang and LMI v17+ behind /invocations, driven by unmodified boto3.

Byte fixtures are the reference's examples (lmi-vllm-sglang-sagemaker-contract.md §7), with the
values a simulator cannot share with a real model (ids, timestamps, token ids, log-probs,
token counts, the generated text) substituted by what the emulator produced or must produce.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, cast

import boto3
import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.emulator.model import tokenize
from llm_gateway.emulator.openai_request import ChatBody, chat_prompt_text

ENDPOINTS: dict[str, dict[str, Any]] = {
    "vllm-paris": {"server": "vllm", "model_id": "Qwen/Qwen3-4B", "output_text": "Paris."},
    "vllm-hello": {"server": "vllm", "model_id": "Qwen/Qwen3-4B", "output_text": "Hello"},
    "vllm-endpoint": {"server": "vllm", "model_id": "Qwen/Qwen3-4B"},
    "vllm-flat": {"server": "vllm", "error_shape": "flat"},
    "vllm-keepalive": {"server": "vllm", "sse_keep_alive": True, "output_text": "Hi there."},
    "sglang-hello": {"server": "sglang", "model_id": "default", "output_text": "Hello"},
    "lmi-deep": {"server": "lmi", "output_text": " Deep learning is a field."},
    "lmi-hello": {"server": "lmi", "output_text": "Hello"},
    "openai-faulty": {"server": "vllm"},
    "vllm-stops": {"server": "vllm", "output_text": " One. Two."},
    "sglang-stops": {"server": "sglang", "output_text": " One. Two."},
    "lmi-stops": {"server": "lmi", "output_text": " One. Two."},
}

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture(scope="module")
def runtime(emulator: Emulator) -> Iterator[Any]:
    for name, spec in ENDPOINTS.items():
        emulator.set_endpoint(name, EndpointSpec.model_validate(spec))
    yield boto3.client("sagemaker-runtime")
    for name in ENDPOINTS:
        emulator.endpoints.pop(name, None)


def invoke(runtime: Any, endpoint: str, body: Any) -> bytes:
    out = runtime.invoke_endpoint(
        EndpointName=endpoint, Body=orjson.dumps(body), ContentType="application/json"
    )
    data: bytes = out["Body"].read()
    return data


def stream(runtime: Any, endpoint: str, body: Any) -> tuple[bytes, str]:
    out = runtime.invoke_endpoint_with_response_stream(
        EndpointName=endpoint, Body=orjson.dumps(body), ContentType="application/json"
    )
    return b"".join(e["PayloadPart"]["Bytes"] for e in out["Body"]), out["ContentType"]


def container_error(runtime: Any, endpoint: str, body: Any) -> tuple[int, str]:
    with pytest.raises(runtime.exceptions.ModelError) as info:
        invoke(runtime, endpoint, body)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    return response["OriginalStatusCode"], response["OriginalMessage"]


def normalise(raw: bytes) -> bytes:
    """Ids and timestamps cannot match a fixture: give them the fixture's values."""
    raw = re.sub(rb'"id":"(chatcmpl-|cmpl-)?[0-9a-f]{32}"', rb'"id":"ID"', raw)
    return re.sub(rb'"created":\d+', rb'"created":1750000000', raw)


def sse_payloads(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")[:-1]
    assert all(e.startswith((b"data: ", b": keep-alive")) for e in events)
    return [e.removeprefix(b"data: ") for e in events if e.startswith(b"data: ")][:-1]


def chat(content: str = "Capital of France?", **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **fields}


def prompt_tokens(body: dict[str, Any]) -> int:
    return len(tokenize(chat_prompt_text(ChatBody.model_validate(body))))


# -- vLLM --------------------------------------------------------------------------------------


def test_v1_chat_non_stream_is_the_reference_body(runtime: Any) -> None:
    body = {"model": "", **chat(), "max_tokens": 16}
    raw = invoke(runtime, "vllm-paris", body)
    n = prompt_tokens(body)
    expected = (
        '{"id":"ID","object":"chat.completion","created":1750000000,"model":"Qwen/Qwen3-4B",'
        '"choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","tool_calls":[]},'
        '"logprobs":null,"finish_reason":"stop","stop_reason":null}],'
        f'"usage":{{"prompt_tokens":{n},"total_tokens":{n + 3},"completion_tokens":3}}}}'
    )
    assert normalise(raw) == expected.encode()  # "Paris", ".", and the EOS token
    ChatCompletion.model_validate_json(raw)


def test_v2_chat_stream_events(runtime: Any) -> None:
    raw, content_type = stream(runtime, "vllm-hello", {**chat(), "stream": True})
    assert content_type == "text/event-stream"
    head = (
        '{"id":"ID","object":"chat.completion.chunk","created":1750000000,"model":"Qwen/Qwen3-4B"'
    )
    assert (
        normalise(raw)
        == (
            f'data: {head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},'
            '"logprobs":null,"finish_reason":null}]}\n\n'
            f'data: {head},"choices":[{{"index":0,"delta":{{"content":"Hello"}},"logprobs":null,'
            '"finish_reason":null}]}\n\n'
            f'data: {head},"choices":[{{"index":0,"delta":{{"content":""}},"logprobs":null,'
            '"finish_reason":"stop","stop_reason":null}]}\n\n'
            "data: [DONE]\n\n"
        ).encode()
    )
    for payload in sse_payloads(raw):
        ChatCompletionChunk.model_validate_json(payload)


def test_v3_tgi_body_gets_no_suitable_handler(runtime: Any) -> None:
    status, message = container_error(
        runtime, "vllm-endpoint", {"inputs": "What is Deep Learning?", "parameters": {}}
    )
    assert status == 400
    assert message == (
        '{"error":{"message":"Cannot find suitable handler for request. Expected one of: '
        '[\'ChatCompletionRequest\', \'CompletionRequest\']","type":"BadRequestError",'
        '"param":null,"code":400}}'
    )


def test_bodies_are_tried_as_chat_then_completion(runtime: Any) -> None:
    both = json.loads(invoke(runtime, "vllm-paris", {**chat(), "prompt": "x"}))
    assert both["object"] == "chat.completion"
    completion = invoke(runtime, "vllm-paris", {"prompt": "The capital of France is"})
    data = Completion.model_validate_json(completion)
    assert data.object == "text_completion" and data.choices[0].text == "Paris."
    assert data.usage is not None and data.usage.prompt_tokens == 5
    # a chat body that fails validation falls through to completions, and then to the 400
    status, message = container_error(runtime, "vllm-endpoint", {"messages": "not a list"})
    assert status == 400 and "Cannot find suitable handler" in message


def test_usage_is_exact_and_the_stop_text_is_cut(runtime: Any) -> None:
    body = chat("Say something", temperature=0, stop=[" is", "."], max_tokens=200)
    data = ChatCompletion.model_validate_json(invoke(runtime, "vllm-endpoint", body))
    choice = data.choices[0]
    assert choice.finish_reason == "stop"
    stop = choice.model_extra["stop_reason"] if choice.model_extra else None
    assert stop in (" is", ".")
    assert not choice.message.content or not choice.message.content.endswith(str(stop))
    assert data.usage is not None and data.usage.prompt_tokens == prompt_tokens(body)
    streamed, _ = stream(runtime, "vllm-endpoint", {**body, "stream": True})
    chunks = [ChatCompletionChunk.model_validate_json(p) for p in sse_payloads(streamed)]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content  # greedy: the same answer, streamed
    assert chunks[-1].choices[0].finish_reason == "stop"
    length = ChatCompletion.model_validate_json(
        invoke(runtime, "vllm-endpoint", chat(temperature=0, max_tokens=2))
    )
    assert length.choices[0].finish_reason == "length"
    assert length.usage is not None and length.usage.completion_tokens == 2


# (endpoint, the request's switch to keep the stop text): vLLM's, which LMI passes on to vLLM,
# and SGLang's own (SGLang has no include_stop_str_in_output).
KEEP_STOP = [
    ("vllm-stops", "include_stop_str_in_output"),
    ("lmi-stops", "include_stop_str_in_output"),
    ("sglang-stops", "no_stop_trim"),
]


@pytest.mark.parametrize(("endpoint", "switch"), KEEP_STOP)
def test_stop_text_is_kept_when_the_request_says_so(
    runtime: Any, endpoint: str, switch: str
) -> None:
    def content(**fields: Any) -> str:
        body = chat(temperature=0, stop=[". T"], max_tokens=20, **fields)
        data = ChatCompletion.model_validate_json(invoke(runtime, endpoint, body))
        assert data.choices[0].finish_reason == "stop"
        return str(data.choices[0].message.content)

    assert content() == " One"  # cut by default
    assert content(**{switch: False}) == " One"
    # kept: the stop string itself, not the rest of the token it ended in (" Two"'s "wo")
    assert content(**{switch: True}) == " One. T"
    other = {"no_stop_trim" if switch != "no_stop_trim" else "include_stop_str_in_output": True}
    assert content(**other) == " One"  # the other server's switch means nothing here


@pytest.mark.parametrize("keep", [False, True])
def test_vllm_completion_stream_keeps_the_stop_text_when_asked(runtime: Any, keep: bool) -> None:
    body = {"prompt": "Hi", "max_tokens": 20, "stop": ["."], "temperature": 0}
    body["include_stop_str_in_output"] = keep
    answer = Completion.model_validate_json(invoke(runtime, "vllm-stops", body))
    assert answer.choices[0].text == (" One." if keep else " One")
    streamed, _ = stream(runtime, "vllm-stops", {**body, "stream": True})
    choices = [orjson.loads(p)["choices"][0] for p in sse_payloads(streamed)]
    assert "".join(c["text"] for c in choices) == answer.choices[0].text
    assert (choices[-1]["finish_reason"], choices[-1]["stop_reason"]) == ("stop", ".")


def test_include_usage_and_continuous_usage(runtime: Any) -> None:
    body = chat(stream=True, stream_options={"include_usage": True, "continuous_usage_stats": True})
    raw, _ = stream(runtime, "vllm-paris", body)
    chunks = [orjson.loads(p) for p in sse_payloads(raw)]
    n = prompt_tokens(body)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": n,
        "total_tokens": n + 3,
        "completion_tokens": 3,
    }
    assert [c["usage"]["completion_tokens"] for c in chunks[:-1]] == [0, 1, 2, 3]


def test_n_choices_each_with_its_index(runtime: Any) -> None:
    body = chat(n=3, seed=11, max_tokens=6)
    data = ChatCompletion.model_validate_json(invoke(runtime, "vllm-endpoint", body))
    assert [c.index for c in data.choices] == [0, 1, 2]
    assert len({c.message.content for c in data.choices}) > 1  # seeded, but per choice
    assert data.usage is not None and data.usage.completion_tokens == 18
    raw, _ = stream(runtime, "vllm-endpoint", {**body, "stream": True})
    chunks = [ChatCompletionChunk.model_validate_json(p) for p in sse_payloads(raw)]
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {c.index: c.message.content for c in data.choices}


def test_tool_call_non_stream(runtime: Any) -> None:
    data = ChatCompletion.model_validate_json(
        invoke(runtime, "vllm-endpoint", chat("Weather?", tools=[WEATHER]))
    )
    choice = data.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("chatcmpl-tool-")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    none = ChatCompletion.model_validate_json(
        invoke(runtime, "vllm-endpoint", chat("Weather?", tools=[WEATHER], tool_choice="none"))
    )
    assert not none.choices[0].message.tool_calls and none.choices[0].finish_reason != "tool_calls"


@pytest.mark.parametrize("endpoint", ["vllm-endpoint", "sglang-hello"])
def test_tool_call_stream_deltas(runtime: Any, endpoint: str) -> None:
    other: dict[str, Any] = {"type": "function", "function": {"name": "noop", "parameters": {}}}
    body = chat(
        "Weather?",
        tools=[other, WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    raw, _ = stream(runtime, endpoint, body)
    chunks = [ChatCompletionChunk.model_validate_json(p) for p in sse_payloads(raw)]
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta]
    calls = [d[0] for d in deltas if d]
    first, rest = calls[0], calls[1:]
    assert first.id and first.type == "function" and first.function
    assert first.function.name == "get_weather"
    assert rest and all(c.id is None and c.function and c.function.name is None for c in rest)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    state = ChatCompletionStreamState(
        input_tools=cast(Any, [other, WEATHER])
    )  # the SDK's own helper
    for chunk in chunks:
        state.handle_chunk(chunk)
    final = state.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "simulated", "days": 1}


def test_logprobs_in_vllm_shapes(runtime: Any) -> None:
    body = chat(logprobs=True, top_logprobs=2, max_tokens=5, temperature=0)
    data = ChatCompletion.model_validate_json(invoke(runtime, "vllm-endpoint", body))
    content = data.choices[0].logprobs.content if data.choices[0].logprobs else None
    assert content and len(content) == 5 and all(len(t.top_logprobs) == 2 for t in content)
    assert all(t.bytes == list(t.token.encode()) for t in content)
    completion = Completion.model_validate_json(
        invoke(runtime, "vllm-endpoint", {"prompt": "Hi", "logprobs": 2, "max_tokens": 4})
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs and logprobs.tokens and len(logprobs.tokens) == 4
    assert logprobs.text_offset == sorted(logprobs.text_offset or [])
    assert logprobs.top_logprobs and all(len(t) == 2 for t in logprobs.top_logprobs)
    status, message = container_error(runtime, "vllm-endpoint", chat(top_logprobs=2))
    assert status == 400 and "Cannot find suitable handler" in message  # pydantic-level check


def test_response_format_json_schema(runtime: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {}}},
        "required": ["name", "tags"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}}
    data = ChatCompletion.model_validate_json(
        invoke(runtime, "vllm-endpoint", chat(response_format=fmt))
    )
    jsonschema.validate(json.loads(data.choices[0].message.content or ""), schema)
    plain = ChatCompletion.model_validate_json(
        invoke(runtime, "vllm-endpoint", chat(response_format={"type": "json_object"}))
    )
    assert isinstance(json.loads(plain.choices[0].message.content or ""), dict)


def test_vllm_validation_errors_nested_and_flat(runtime: Any) -> None:
    body = chat(max_tokens=5000)
    n = prompt_tokens(body)
    status, message = container_error(runtime, "vllm-endpoint", body)
    assert status == 400
    assert orjson.loads(message) == {
        "error": {
            "message": f"'max_tokens' or 'max_completion_tokens' is too large: 5000. This "
            f"model's maximum context length is 2048 tokens and your request has {n} input "
            f"tokens (5000 > 2048 - {n}).",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    }
    status, message = container_error(runtime, "vllm-flat", chat(temperature=-1))
    assert message == (
        '{"object":"error","message":"temperature must be non-negative, got -1.0.",'
        '"type":"BadRequestError","param":null,"code":400}'
    )
    status, message = container_error(runtime, "vllm-endpoint", chat(model="gpt-4o"))
    assert status == 404 and orjson.loads(message)["error"]["type"] == "NotFoundError"
    long = container_error(runtime, "vllm-endpoint", chat(" x" * 2100))[1]
    assert "However, your request has" in long


def test_keep_alive_comments(runtime: Any) -> None:
    raw, _ = stream(runtime, "vllm-keepalive", chat(stream=True))
    assert raw.startswith(b": keep-alive\n\ndata: {")
    assert raw.count(b": keep-alive\n\n") == raw.count(b"data: ")
    text = "".join(
        ChatCompletionChunk.model_validate_json(p).choices[0].delta.content or ""
        for p in sse_payloads(raw)
    )
    assert text == "Hi there."


@pytest.fixture
def openai_faulty(emulator: Emulator) -> Iterator[Any]:
    def configure(**spec: Any) -> None:
        emulator.set_endpoint("openai-faulty", EndpointSpec.model_validate(spec))

    yield configure
    emulator.set_endpoint("openai-faulty", EndpointSpec(server="vllm"))


@pytest.mark.parametrize(
    ("server", "shape", "expected"),
    [
        (
            "vllm",
            "nested",
            b'data: {"error": {"message": "boom", "type": "InternalServerError", "param": null, '
            b'"code": 500}}\n\ndata: [DONE]\n\n',
        ),
        (
            "vllm",
            "flat",
            b'data: {"error": {"object": "error", "message": "boom", "type": '
            b'"InternalServerError", "param": null, "code": 500}}\n\ndata: [DONE]\n\n',
        ),
        (
            "sglang",
            "nested",
            b'data: {"error": {"object": "error", "message": "boom", "type": '
            b'"InternalServerError", "param": null, "code": 500}}\n\ndata: [DONE]\n\n',
        ),
        (
            "lmi",
            "nested",
            b'{"error": {"message": "boom", "type": "InternalServerError", "param": null, '
            b'"code": 500}}\n',
        ),
    ],
)
def test_mid_stream_error_lines(
    runtime: Any, openai_faulty: Any, server: str, shape: str, expected: bytes
) -> None:
    fault = {"kind": "tgi_error_event", "at_token": 2, "message": "boom"}
    openai_faulty(server=server, error_shape=shape, output_text="One two three.", faults=[fault])
    raw, _ = stream(runtime, "openai-faulty", chat(stream=True))
    assert raw.endswith(expected)
    lines = raw.split(b"\n\n" if server != "lmi" else b"\n")
    # two events, the error, and [DONE] unless LMI (whose stream just ends)
    assert sum(1 for line in lines if line.strip()) == (3 if server == "lmi" else 4)


def test_model_error_fault_answers_the_containers_body(runtime: Any, openai_faulty: Any) -> None:
    openai_faulty(server="sglang", faults=[{"kind": "model_error", "status": 503}])
    status, message = container_error(runtime, "openai-faulty", chat())
    assert status == 503 and orjson.loads(message)["object"] == "error"


# -- splitting -----------------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    split=st.one_of(st.just("random"), st.integers(1, 17).map(lambda n: f"bytes:{n}")),
    server=st.sampled_from(["vllm", "sglang", "lmi"]),
)
def test_streams_reassemble_from_payload_parts_split_anywhere(
    runtime: Any, openai_faulty: Any, split: str, server: str
) -> None:
    text = " Größe → 東京 ✓ done."  # multi-byte characters: slices cut inside them
    openai_faulty(server=server, split=split, output_text=text)
    body = chat(stream=True, temperature=0)
    raw, _ = stream(runtime, "openai-faulty", body)
    buffered = invoke(runtime, "openai-faulty", body)
    assert normalise(raw) == normalise(buffered)
    if server == "lmi":
        lines = [line for line in raw.split(b"\n") if line]
        chunks = [ChatCompletionChunk.model_validate_json(line) for line in lines]
    else:
        chunks = [ChatCompletionChunk.model_validate_json(p) for p in sse_payloads(raw)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text


# -- SGLang --------------------------------------------------------------------------------


def test_s2_sglang_stream_is_the_reference_stream(runtime: Any) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 8}
    raw, _ = stream(runtime, "sglang-hello", {**body, "stream": True})
    head = '{"id":"ID","object":"chat.completion.chunk","created":1750000000,"model":"default"'
    assert (
        normalise(raw)
        == (
            f'data: {head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"Hello"}},'
            '"logprobs":null,"finish_reason":null,"matched_stop":null}]}\n\n'
            f'data: {head},"choices":[{{"index":0,"delta":{{}},"logprobs":null,'
            '"finish_reason":"stop","matched_stop":0}]}\n\n'  # the simulated EOS token id
            "data: [DONE]\n\n"
        ).encode()
    )
    data = orjson.loads(invoke(runtime, "sglang-hello", chat(stop="l")))
    assert data["choices"][0]["message"]["content"] == "He"
    assert data["choices"][0]["matched_stop"] == "l"
    ChatCompletion.model_validate(data)


@pytest.mark.parametrize(
    "body", [{"inputs": "x", "parameters": {}}, {"prompt": "The capital of France is"}]
)
def test_sglang_takes_chat_only(runtime: Any, body: dict[str, Any]) -> None:
    status, message = container_error(runtime, "sglang-hello", body)
    error = orjson.loads(message)
    assert status == 400 and list(error) == ["object", "message", "type", "param", "code"]
    assert error["object"] == "error" and error["type"] == "Bad Request"
    assert "('body', 'messages')" in error["message"] and "Field required" in error["message"]


def test_sglang_context_error_is_flat(runtime: Any) -> None:
    status, message = container_error(runtime, "sglang-hello", chat(max_tokens=4000))
    error = orjson.loads(message)
    assert status == 400 and error["object"] == "error"
    assert error["message"].startswith("Requested token count exceeds the model's maximum")


# -- LMI -----------------------------------------------------------------------------------


def _tokens(tokens: list[dict[str, Any]]) -> str:
    return json.dumps(tokens, ensure_ascii=False)


def test_l1_lmi_tgi_body_non_stream(runtime: Any) -> None:
    body = {
        "inputs": "What is Deep Learning?",
        "parameters": {"max_new_tokens": 3, "temperature": 0.7, "details": True},
    }
    raw = invoke(runtime, "lmi-deep", body)
    tokens = json.loads(raw)["details"]["tokens"]
    assert [t["text"] for t in tokens] == [" Deep", " learning", " is"]
    assert (
        raw
        == (
            '{"generated_text": " Deep learning is", "details": {"finish_reason": null, '
            f'"generated_tokens": 3, "seed": null, "prefill": [], "tokens": {_tokens(tokens)}}}}}\n'
        ).encode()
    )


def test_l2_lmi_tgi_body_stream_is_json_lines(runtime: Any) -> None:
    body = {
        "inputs": "What is Deep Learning?",
        "parameters": {"max_new_tokens": 3, "details": True},
        "stream": True,
    }
    raw, content_type = stream(runtime, "lmi-deep", body)
    assert content_type == "application/jsonlines"
    lines = raw.split(b"\n")
    assert lines[3:] == [b"", b"", b""]  # ends }\n\n\n
    tokens = [json.loads(line)["token"] for line in lines[:3]]
    expected = [
        f'{{"index": 0, "token": {json.dumps(tokens[0])}, "generated_text": null, '
        '"details": null}',
        f'{{"index": 0, "token": {json.dumps(tokens[1])}, "generated_text": null, '
        '"details": null}',
        f'{{"index": 0, "token": {json.dumps(tokens[2])}, "generated_text": " Deep learning is", '
        '"details": {"finish_reason": "length", "seed": null, "generated_tokens": 4, '
        f'"input_length": {len(tokenize("What is Deep Learning?"))}}}}}',
    ]
    assert [line.decode() for line in lines[:3]] == expected
    assert all(set(t) == {"id", "text", "logprob"} for t in tokens)  # no "special"


def test_lmi_tgi_quirks(runtime: Any) -> None:
    body = {
        "inputs": "Hi",
        "parameters": {"stop_sequences": ["learning"], "details": True, "do_sample": False},
    }
    data = json.loads(invoke(runtime, "lmi-deep", body))
    assert data["generated_text"] == " Deep learning is a field."  # stop_sequences dropped
    assert data["details"]["finish_reason"] is None  # EOS: vLLM's stop_reason is null
    stopped = json.loads(
        invoke(
            runtime, "lmi-deep", {"inputs": "Hi", "parameters": {"stop": [" is"], "details": True}}
        )
    )
    assert stopped["generated_text"] == " Deep learning"
    assert stopped["details"]["finish_reason"] == " is"
    default = json.loads(invoke(runtime, "lmi-endpoint-long", {"inputs": "Hi"}))
    assert len(tokenize(default["generated_text"])) == 30  # max_new_tokens defaults to 30


def test_l3_lmi_chat_stream(runtime: Any) -> None:
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    raw, _ = stream(runtime, "lmi-hello", body)
    n = prompt_tokens(body)
    head = '{"id":"ID","object":"chat.completion.chunk","created":1750000000,"model":"lmi"'
    assert (
        normalise(raw)
        == (
            f'{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},'
            '"logprobs":null,"finish_reason":null}]}\n'
            f'{head},"choices":[{{"index":0,"delta":{{"content":"Hello"}},"logprobs":null,'
            '"finish_reason":null}]}\n'
            f'{head},"choices":[{{"index":0,"delta":{{"content":""}},"logprobs":null,'
            '"finish_reason":"stop","stop_reason":null}]}\n'
            f'{head},"choices":[],"usage":{{"prompt_tokens":{n},"total_tokens":{n + 2},'
            '"completion_tokens":2}}\n'
            "\n"
        ).encode()
    )
    non_stream = invoke(runtime, "lmi-hello", {**body, "stream": False, "stream_options": None})
    assert non_stream.endswith(b"}\n")
    assert ChatCompletion.model_validate_json(non_stream).model == "lmi"


def test_l4_lmi_errors(runtime: Any) -> None:
    status, message = container_error(runtime, "lmi-hello", {"text": "hello"})
    assert status == 424
    assert message == (
        '{"error":"Input parsing failed: invalid payload. must contain prompt, inputs, or '
        'messages","code":424}'
    )
    status, message = container_error(runtime, "lmi-hello", chat(max_tokens=5000))
    assert status == 500 and message.startswith('{"error":"error\\u003dErrorInfo(message\\u003d')
    assert message.endswith('param\\u003dNone, code\\u003d400)","code":500}')


@pytest.fixture(scope="module", autouse=True)
def _long_lmi(emulator: Emulator) -> Iterator[None]:
    emulator.set_endpoint("lmi-endpoint-long", EndpointSpec(server="lmi", output_tokens=100))
    yield
    emulator.endpoints.pop("lmi-endpoint-long", None)
