"""`backend: openai` end to end: unmodified clients of both dialects against models on the
emulator's vLLM, SGLang and LMI endpoints (through boto3 and SageMaker's wire protocol)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from huggingface_hub import InferenceClient
from langchain_openai import ChatOpenAI
from text_generation import Client
from text_generation.errors import ValidationError as TGValidationError

from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.emulator.spec import Fault
from tests.conftest import gateway_config, sse_events
from tests.test_emulator_openai import WEATHER  # one tool for the emulator and the relay

ENDPOINTS: dict[str, dict[str, Any]] = {
    "oa-vllm": {"server": "vllm", "model_id": "Qwen/Qwen3-4B"},
    "oa-vllm-split": {"server": "vllm", "model_id": "Qwen/Qwen3-4B", "split": "random"},
    "oa-vllm-flat": {"server": "vllm", "error_shape": "flat", "sse_keep_alive": True},
    "oa-sglang": {"server": "sglang", "model_id": "default", "split": "bytes:5"},
    "oa-lmi": {"server": "lmi", "split": "random"},
    "oa-faulty": {"server": "vllm"},
}
MODELS: list[dict[str, Any]] = [
    {"name": "qwen", "endpoint": "oa-vllm", "backend": "openai", "model_id": "Qwen/Qwen3-4B"},
    {"name": "qwen-split", "endpoint": "oa-vllm-split", "backend": "openai"},
    {"name": "qwen-flat", "endpoint": "oa-vllm-flat", "backend": "openai"},
    {"name": "qwen-sglang", "endpoint": "oa-sglang", "backend": "openai", "chat_only": True},
    {"name": "qwen-lmi", "endpoint": "oa-lmi", "backend": "openai"},
    {"name": "qwen-faulty", "endpoint": "oa-faulty", "backend": "openai"},
    {
        "name": "qwen-defaults",
        "endpoint": "oa-vllm",
        "backend": "openai",
        "defaults": {"max_new_tokens": 4},
    },
    {
        "name": "qwen-strict",
        "endpoint": "oa-vllm",
        "backend": "openai",
        "unsupported_params": "refuse",
    },
]
DROPPED = "x-llm-gateway-dropped-params"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def gw(emulator: Emulator, start_gateway: Callable[..., str]) -> Iterator[str]:
    for name, spec in ENDPOINTS.items():
        emulator.set_endpoint(name, EndpointSpec.model_validate(spec))
    yield start_gateway(
        gateway_config(MODELS, default="qwen"),
        Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2),
    )
    for name in ENDPOINTS:
        emulator.endpoints.pop(name, None)


@pytest.fixture
def oai(gw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw}/v1", api_key="x", max_retries=0)


@pytest.fixture
def faulty(emulator: Emulator, gw: str) -> Iterator[Callable[..., None]]:
    def configure(**spec: Any) -> None:
        emulator.set_endpoint("oa-faulty", EndpointSpec.model_validate({"server": "vllm", **spec}))

    yield configure
    emulator.set_endpoint("oa-faulty", EndpointSpec.model_validate(ENDPOINTS["oa-faulty"]))


# -- OpenAI dialect: chat relayed -----------------------------------------------------------


@pytest.mark.parametrize("model", ["qwen", "qwen-split", "qwen-sglang", "qwen-lmi"])
def test_chat_is_relayed_with_the_containers_usage(oai: openai.OpenAI, model: str) -> None:
    r = oai.chat.completions.create(model=model, messages=HI, max_tokens=5, seed=1)
    assert r.model == model and r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5
    # the container's chat template counted the prompt: ChatML around "Hi" is more than 1 token
    assert r.usage.prompt_tokens > 3
    chunks = list(
        oai.chat.completions.create(
            model=model,
            messages=HI,
            max_tokens=5,
            seed=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.model == model for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == r.usage


def test_tools_relayed_and_streamed_tool_calls_accumulate(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model="qwen",
        messages=HI,
        tools=[WEATHER],
        tool_choice="required",  # type: ignore[list-item]
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "simulated", "days": 1}  # type: ignore[union-attr]
    with oai.chat.completions.stream(
        model="qwen",
        messages=HI,
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in events
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert streamed.function.name == "get_weather"
    assert json.loads(streamed.function.arguments) == {"city": "simulated", "days": 1}
    assert streamed.id.startswith("chatcmpl-tool-")
    assert final.choices[0].finish_reason == "tool_calls"


def test_n_choices_json_schema_and_logprobs(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="qwen-sglang", messages=HI, max_tokens=4, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert r.usage is not None and r.usage.completion_tokens == 12
    chunks = list(
        oai.chat.completions.create(model="qwen", messages=HI, max_tokens=3, n=2, stream=True)
    )
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    r = oai.chat.completions.create(
        model="qwen",
        messages=HI,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert json.loads(r.choices[0].message.content or "") == {"answer": "simulated"}
    r = oai.chat.completions.create(
        model="qwen", messages=HI, max_tokens=3, logprobs=True, top_logprobs=2
    )
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert len(content) == 3 and all(len(t.top_logprobs) == 2 for t in content)  # type: ignore[arg-type]


def test_completions_forwarded_as_completions(oai: openai.OpenAI) -> None:
    r = oai.completions.create(model="qwen", prompt="Hello", max_tokens=4, logprobs=2)
    assert r.model == "qwen" and r.usage is not None
    assert r.usage.prompt_tokens == 1 and r.usage.completion_tokens == 4
    assert r.choices[0].logprobs is not None and len(r.choices[0].logprobs.tokens or []) == 4
    streamed = list(
        oai.completions.create(
            model="qwen-lmi",
            prompt="Hello",
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == 4
    # chat-only containers take the prompt as one user message
    r = oai.completions.create(model="qwen-sglang", prompt="Hello", max_tokens=4)
    assert r.usage is not None and r.usage.prompt_tokens > 1


def test_langchain_chat_openai(gw: str) -> None:
    llm = ChatOpenAI(base_url=f"{gw}/v1", api_key="x", model="qwen", max_tokens=5)  # type: ignore[arg-type]
    answer = llm.invoke("Hi")
    assert answer.content and answer.usage_metadata is not None  # type: ignore[union-attr]
    assert "".join(str(c.content) for c in llm.stream("Hi")) != ""
    tools = ChatOpenAI(base_url=f"{gw}/v1", api_key="x", model="qwen")  # type: ignore[arg-type]
    bound = tools.bind_tools([WEATHER], tool_choice="get_weather")
    message = bound.invoke("Weather in Paris?")
    assert message.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]


# -- errors in OpenAI's shape, whatever the container's ---------------------------------------


@pytest.mark.parametrize("model", ["qwen", "qwen-flat", "qwen-sglang", "qwen-lmi"])
def test_container_validation_errors_are_openai_400(oai: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model=model, messages=HI, max_tokens=100000)
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert "context length" in body["message"] and "ErrorInfo" not in body["message"]


def test_lmi_input_parsing_failure_and_server_errors(
    oai: openai.OpenAI, faulty: Callable[..., None]
) -> None:
    faulty(
        faults=[
            Fault(
                kind="model_error",
                status=424,
                message='{"error":"Input parsing failed: bad \\u0027x\\u0027","code":424}',
            )
        ]
    )
    with pytest.raises(openai.BadRequestError, match="Input parsing failed: bad 'x'"):
        oai.chat.completions.create(model="qwen-faulty", messages=HI)
    faulty(faults=[Fault(kind="model_error", status=500)])  # vLLM's nested 500: not shown
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="qwen-faulty", messages=HI)
    assert info.value.status_code == 502 and "simulated failure" not in str(info.value.body)
    faulty(faults=[Fault(kind="model_error", status=503)])
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="qwen-faulty", messages=HI)
    assert info.value.status_code == 429


def test_mid_stream_error_event(gw: str, faulty: Callable[..., None]) -> None:
    faulty(faults=[Fault(kind="tgi_error_event", at_token=3, status=500, message="engine died")])
    with httpx.stream(
        "POST",
        f"{gw}/v1/chat/completions",
        json={"model": "qwen-faulty", "messages": HI, "stream": True},
        timeout=30,
    ) as r:
        body = r.read()
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    error = json.loads(events[-2].removeprefix(b"data: "))["error"]
    assert error["message"] == "engine died" and error["type"] == "server_error"
    faulty(faults=[Fault(kind="tgi_error_event", at_token=2, status=500, message="engine died")])
    with httpx.stream(
        "POST",
        f"{gw}/models/qwen-faulty/generate_stream",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 20}},
        timeout=30,
    ) as r:
        body = r.read()
    last = json.loads(body.strip().split(b"\n\n")[-1].removeprefix(b"data: "))
    assert last == {"error": "engine died", "error_type": "generation"}


# -- TGI dialect over an OpenAI server ----------------------------------------------------------


@pytest.mark.parametrize("model", ["qwen", "qwen-split", "qwen-sglang", "qwen-lmi"])
def test_text_generation_client(gw: str, model: str) -> None:
    client = Client(f"{gw}/models/{model}")
    response = client.generate("Why is the sky blue?", max_new_tokens=6, do_sample=True, seed=3)
    details = response.details
    assert details.generated_tokens == 6 and details.finish_reason.value == "length"
    assert details.seed == 3 and len(details.tokens) == 6
    assert response.generated_text == "".join(t.text for t in details.tokens)
    streamed = list(client.generate_stream("Why is the sky blue?", max_new_tokens=5))
    assert streamed[-1].details is not None and streamed[-1].details.generated_tokens == 5
    assert streamed[-1].generated_text == "".join(r.token.text for r in streamed)
    assert all(r.generated_text is None for r in streamed[:-1])


def test_text_generation_eos_and_top_tokens(gw: str) -> None:
    client = Client(f"{gw}/models/qwen")
    response = client.generate("Hi", max_new_tokens=200, top_n_tokens=2)
    details = response.details
    assert details.finish_reason.value == "eos_token"
    assert details.tokens[-1].special and details.generated_tokens == len(details.tokens)
    assert len(details.top_tokens) == len(details.tokens)
    assert all(len(top) == 2 for top in details.top_tokens)  # the EOS row too


def test_huggingface_hub_client(gw: str) -> None:
    client = InferenceClient(f"{gw}/models/qwen-lmi")
    out = client.text_generation("Hello", max_new_tokens=4, details=True)
    assert out.details is not None and out.details.generated_tokens == 4
    events = list(client.text_generation("Hello", max_new_tokens=4, details=True, stream=True))
    assert events[-1].details is not None and events[-1].details.finish_reason == "length"
    assert events[-1].details.input_length == 1  # type: ignore[attr-defined]


def _calls(emulator: Emulator) -> int:
    return emulator.stats_for("oa-vllm").requests


def test_sampling_hints_are_dropped_and_reported(gw: str, emulator: Emulator) -> None:
    hinted = {"max_new_tokens": 4, "typical_p": 0.95, "watermark": True, "do_sample": True}
    before = _calls(emulator)
    r = httpx.post(
        f"{gw}/models/qwen/generate", json={"inputs": "Hi", "parameters": hinted}, timeout=10
    )
    assert r.status_code == 200 and r.json()["generated_text"]
    assert r.headers[DROPPED] == "typical_p,watermark"
    with httpx.stream(
        "POST",
        f"{gw}/models/qwen/generate_stream",
        json={
            "inputs": "Hi",
            "parameters": {"max_new_tokens": 4, "typical_p": 0.5, "details": True},
        },
        timeout=10,
    ) as streamed:
        events = [json.loads(e) for e in sse_events(streamed.read())]
        assert streamed.status_code == 200 and streamed.headers[DROPPED] == "typical_p"
    assert events[-1]["details"]["generated_tokens"] == 4
    assert _calls(emulator) == before + 2
    sent = [json.loads(r["body"]) for r in list(emulator.stats_for("oa-vllm").recent)[-2:]]
    assert [sorted({"typical_p", "watermark"} & set(body)) for body in sent] == [[], []]
    assert sent[0].get("temperature") != 0  # the rest of the request as asked: sampled
    # nothing dropped, no header (watermark: false is no hint)
    plain = {"max_new_tokens": 2, "watermark": False}
    r = httpx.post(
        f"{gw}/models/qwen/generate", json={"inputs": "Hi", "parameters": plain}, timeout=10
    )
    assert r.status_code == 200 and DROPPED not in r.headers


def test_unsupported_tgi_fields_are_refused_before_any_call(gw: str, emulator: Emulator) -> None:
    before = _calls(emulator)
    strict = Client(f"{gw}/models/qwen-strict")
    with pytest.raises(TGValidationError, match=r"`typical_p` is not supported.*openai"):
        strict.generate("Hi", typical_p=0.5)
    with pytest.raises(TGValidationError, match="`watermark` is not supported"):
        list(strict.generate_stream("Hi", watermark=True))
    client = Client(f"{gw}/models/qwen")  # unsupported_params: drop (the default)
    with pytest.raises(TGValidationError, match="`best_of` is not supported"):
        client.generate("Hi", best_of=2, do_sample=True, typical_p=0.5)
    with pytest.raises(TGValidationError, match="`decoder_input_details` is not supported"):
        client.generate("Hi", decoder_input_details=True, typical_p=0.5)
    assert _calls(emulator) == before  # refused before any call
    r = httpx.post(
        f"{gw}/models/qwen-sglang/generate",
        json={"inputs": "Hi", "parameters": {"truncate": 5}},
        timeout=10,
    )
    assert r.status_code == 422 and r.json()["error_type"] == "validation"
    assert "`truncate` is not supported by this model's backend (openai)" in r.json()["error"]


def test_default_max_new_tokens_from_the_model(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="qwen-defaults", messages=HI)
    assert r.usage is not None and r.usage.completion_tokens == 4
