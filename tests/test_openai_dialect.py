"""The OpenAI dialect over real HTTP with the openai SDK and huggingface_hub, unmodified."""

from __future__ import annotations

import asyncio

import httpx
import openai
import orjson
import pytest
from huggingface_hub import InferenceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.emulator.model import tokenize
from llm_gateway.templates import FAMILIES, Message
from tests.conftest import sse_events

HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


def upstream(emulator, endpoint="tgi3-endpoint"):
    return orjson.loads(emulator.stats_for(endpoint).recent[-1]["body"])


def prompt_of(messages, family="chatml"):
    return FAMILIES[family].render([Message(m["role"], m["content"]) for m in messages])


def test_chat_completion_shape_and_exact_usage(oai, emulator):
    r = oai.chat.completions.create(model="tgi3", messages=HI, max_tokens=8, seed=1)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "tgi3"
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    sent = upstream(emulator)
    assert sent["inputs"] == prompt_of(HI)  # the model's template, exactly
    assert sent["stream"] is True  # buffered answers come from TGI's stream: it reports usage
    assert r.usage.prompt_tokens == len(tokenize(prompt_of(HI)))
    assert r.usage.completion_tokens == 8 and r.usage.total_tokens == r.usage.prompt_tokens + 8
    assert "prompt_tokens_estimated" not in r.usage.model_dump()


def test_stream_matches_buffered_answer(oai, gateway):
    whole = oai.chat.completions.create(model="tgi3", messages=HI, max_tokens=12, seed=5)
    chunks = list(
        oai.chat.completions.create(
            model="tgi3",
            messages=HI,
            max_tokens=12,
            seed=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump(
        exclude_none=True
    ) == whole.usage.model_dump(exclude_none=True)
    raw = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "tgi3", "messages": HI, "max_tokens": 3, "stream": True},
    ).content
    assert raw.endswith(b"data: [DONE]\n\n")
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    assert all(b'"usage"' not in e for e in events[:-1])  # no usage chunk unless asked


def test_async_client(gateway):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key="x", max_retries=0)
        whole = await client.chat.completions.create(
            model="tgi3", messages=HI, max_tokens=6, seed=2
        )
        stream = await client.chat.completions.create(
            model="tgi3", messages=HI, max_tokens=6, seed=2, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        return whole.choices[0].message.content, text

    whole, streamed = asyncio.run(run())
    assert whole == streamed


def test_huggingface_chat_completion(gateway):
    client = InferenceClient(base_url=f"{gateway}/v1")
    out = client.chat_completion(messages=HI, model="tgi3", max_tokens=6, seed=3)
    assert out.choices[0].message.content and out.usage.completion_tokens == 6
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat_completion(
            messages=HI, model="tgi3", max_tokens=6, seed=3, stream=True
        )
    )
    assert streamed == out.choices[0].message.content


def test_parameter_mapping_reaches_tgi(oai, emulator):
    oai.chat.completions.create(
        model="tgi3",
        messages=HI,
        temperature=0,
        top_p=1,
        max_completion_tokens=4,
        presence_penalty=1.0,
        frequency_penalty=0.5,
        seed=9,
        stop=["zzz"],
    )
    sent = upstream(emulator)["parameters"]
    assert sent["do_sample"] is False and "temperature" not in sent and "top_p" not in sent
    assert sent["max_new_tokens"] == 4 and sent["seed"] == 9 and sent["frequency_penalty"] == 0.5
    assert sent["repetition_penalty"] == pytest.approx(2**0.5)
    assert sent["stop"] == ["zzz", "<|im_end|>", "<|im_start|>", "<|endoftext|>"]  # client first
    assert sent["return_full_text"] is False and sent["details"] is True
    oai.chat.completions.create(model="tgi3", messages=HI, temperature=0.6, top_p=0.9, max_tokens=2)
    sent = upstream(emulator)["parameters"]
    assert sent["do_sample"] is True and sent["temperature"] == 0.6 and sent["top_p"] == 0.9


def test_logprobs(oai):
    r = oai.chat.completions.create(
        model="tgi3", messages=HI, max_tokens=3, logprobs=True, top_logprobs=2, seed=6
    )
    content = r.choices[0].logprobs.content
    assert len(content) == 3
    assert "".join(t.token for t in content) == r.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.bytes == list(t.token.encode()) for t in content)
    chunks = list(
        oai.chat.completions.create(
            model="tgi3",
            messages=HI,
            max_tokens=3,
            logprobs=True,
            top_logprobs=1,
            stream=True,
            seed=6,
        )
    )
    streamed = [
        t
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content
    ]
    assert [t.token for t in streamed] == [t.token for t in content]


def test_stop_text_never_reaches_the_client(oai):
    full = oai.chat.completions.create(model="tgi3", messages=HI, max_tokens=30, seed=4)
    text = full.choices[0].message.content
    stop = text[5:12]  # spans token boundaries
    cut = oai.chat.completions.create(model="tgi3", messages=HI, max_tokens=30, seed=4, stop=stop)
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    chunks = list(
        oai.chat.completions.create(
            model="tgi3", messages=HI, max_tokens=30, seed=4, stop=[stop], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text[: text.index(stop)]
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_stop_inside_the_answer_cuts_there_in_both_modes(oai, data):
    full = oai.chat.completions.create(model="tgi3", messages=HI, max_tokens=25, seed=11)
    text = full.choices[0].message.content
    start = data.draw(st.integers(0, len(text) - 2))
    stop = text[start : start + data.draw(st.integers(1, 6))]
    expected = text[: text.index(stop)]
    whole = oai.chat.completions.create(
        model="tgi3", messages=HI, max_tokens=25, seed=11, stop=stop
    )
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in oai.chat.completions.create(
            model="tgi3", messages=HI, max_tokens=25, seed=11, stop=stop, stream=True
        )
    )
    assert whole.choices[0].message.content == streamed == expected


def test_completions(oai, emulator):
    r = oai.completions.create(model="tgi3", prompt="Once upon a time", max_tokens=5, seed=1)
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5
    assert r.usage.prompt_tokens == len(tokenize("Once upon a time"))
    assert upstream(emulator)["inputs"] == "Once upon a time"  # no template on completions
    echo = oai.completions.create(model="tgi3", prompt="Once upon", max_tokens=3, seed=1, echo=True)
    assert echo.choices[0].text.startswith("Once upon")
    streamed = list(
        oai.completions.create(
            model="tgi3",
            prompt="Once upon a time",
            max_tokens=5,
            seed=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == r.choices[0].text
    assert streamed[-1].usage.completion_tokens == 5
    several = oai.completions.create(model="tgi3", prompt=["One", "Two"], max_tokens=2)
    assert [c.index for c in several.choices] == [0, 1] and several.usage.completion_tokens == 4
    lp = oai.completions.create(model="tgi3", prompt="Hi", max_tokens=3, logprobs=2)
    assert (
        len(lp.choices[0].logprobs.tokens) == 3 and len(lp.choices[0].logprobs.top_logprobs[0]) == 2
    )


def test_models(oai):
    ids = [m.id for m in oai.models.list()]
    assert ids[:3] == ["tgi3", "tgi082", "mistral"]
    model = oai.models.retrieve("tgi082")
    assert model.object == "model" and model.owned_by == "llm-gateway"
    with pytest.raises(openai.NotFoundError) as info:
        oai.models.retrieve("nope")
    assert info.value.code == "model_not_found"


def test_legacy_endpoint_usage_is_marked_estimated(oai):
    r = oai.chat.completions.create(
        model="tgi082", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert r.usage.completion_tokens == 3
    assert r.usage.model_dump()["prompt_tokens_estimated"] is True


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"n": 2}, "n", "Only `n: 1`"),
        ({"temperature": 3}, "temperature", "not between 0 and 2"),
        ({"top_p": 1.5}, "top_p", "not between 0 and 1"),
        ({"presence_penalty": -3}, "presence_penalty", "not between -2 and 2"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "up to 4 stop sequences. Given: 5"),
        ({"logprobs": True, "top_logprobs": 9}, "top_logprobs", "not between 0 and 5"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "not supported"),
        ({"response_format": {"type": "json_object"}}, "response_format", "json_schema"),
    ],
)
def test_out_of_range_parameters_are_400_with_param(oai, kwargs, param, fragment):
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="tgi3", messages=HI, **kwargs)
    err = info.value
    assert err.status_code == 400 and err.param == param and fragment in err.message
    assert err.body["type"] == "invalid_request_error"


def test_unknown_model_and_bad_bodies(gateway, oai):
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(model="gpt-4o", messages=HI)
    assert info.value.code == "model_not_found" and info.value.param == "model"
    for body in (
        b'{"model": "tgi3", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
        b"{not json",
        b'{"model": "tgi3"}',
        b'{"model": "tgi3", "messages": []}',
    ):
        r = httpx.post(
            f"{gateway}/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400, body
        error = r.json()["error"]
        assert (
            set(error) == {"message", "type", "param", "code"}
            and error["type"] == "invalid_request_error"
        )


def test_template_errors_are_400(oai):
    with pytest.raises(openai.BadRequestError) as info:  # the Jinja template raises
        oai.chat.completions.create(model="gemma-jinja", messages=HI)
    assert info.value.body["message"] == "Template error: System role not supported"
    with pytest.raises(openai.BadRequestError, match="Conversation roles must alternate"):
        oai.chat.completions.create(
            model="mistral",
            messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        )
    with pytest.raises(openai.BadRequestError, match="template not found"):
        oai.chat.completions.create(model="bytes", messages=HI)


def test_context_length_is_reported_as_openai_does(oai):
    with pytest.raises(openai.BadRequestError) as info:
        oai.completions.create(model="tgi3", prompt=" x" * 1100, max_tokens=1000)
    assert info.value.code == "context_length_exceeded"


def test_upstream_failures_keep_openai_shapes(oai, faulty):
    faulty(faults=[{"kind": "throttling"}])
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="faulty", messages=HI)
    assert info.value.body["type"] == "rate_limit_error"
    faulty(faults=[{"kind": "internal_failure"}])
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="faulty", messages=HI)
    assert info.value.status_code == 502 and info.value.body["type"] == "server_error"


def test_mid_stream_failure_is_one_error_event_then_done(gateway, oai, faulty):
    faulty(faults=[{"kind": "model_stream_error", "at_token": 2}])
    raw = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "faulty", "messages": HI, "max_tokens": 6, "stream": True},
    ).content
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    error = orjson.loads(events[-2])["error"]
    assert error["type"] == "server_error" and error["code"] == "timeout"
    assert sum(b'"error"' in e for e in events) == 1
    faulty(faults=[{"kind": "model_stream_error", "at_token": 2}])
    with pytest.raises(openai.APIError, match="allotted time"):
        for _ in oai.chat.completions.create(
            model="faulty", messages=HI, max_tokens=6, stream=True
        ):
            pass


# -- TGI Messages API endpoints (chat_api: true) ------------------------------------------------


def test_chat_api_forwards_the_chat_body(oai, emulator):
    r = oai.chat.completions.create(model="chat-api", messages=HI, max_tokens=5, top_p=1, seed=3)
    sent = upstream(emulator)
    assert sent["messages"] == HI and sent["model"] == "tgi" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True} and "top_p" not in sent
    assert r.model == "chat-api" and r.id.startswith("chatcmpl-")
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"
    assert "prompt_tokens_estimated" not in r.usage.model_dump()  # TGI's own counts
    chunks = list(
        oai.chat.completions.create(
            model="chat-api",
            messages=HI,
            max_tokens=5,
            seed=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == r.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens == 5


def test_chat_api_normalises_finish_reason_and_stop_text(oai):
    full = oai.chat.completions.create(model="chat-api", messages=HI, max_tokens=40, seed=8)
    text = full.choices[0].message.content
    stop = text.split()[3]
    r = oai.chat.completions.create(
        model="chat-api", messages=HI, max_tokens=40, seed=8, stop=[stop]
    )
    # TGI answers finish_reason "stop_sequence" and keeps the stop text; clients see neither
    assert r.choices[0].finish_reason == "stop"
    assert stop not in r.choices[0].message.content
    chunks = list(
        oai.chat.completions.create(
            model="chat-api", messages=HI, max_tokens=40, seed=8, stop=[stop], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == r.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]


def test_chat_api_errors_from_tgi(oai):
    with pytest.raises(openai.BadRequestError) as info:  # TGI's error event, before any token
        oai.chat.completions.create(
            model="chat-api",
            messages=[{"role": "user", "content": " x" * 1100}],
            max_tokens=1000,
            stream=True,
        )
    assert "must be <= 2048" in info.value.message
