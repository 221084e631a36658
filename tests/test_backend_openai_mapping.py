"""The openai backend's mappings, byte for byte: TGI requests to the bodies an OpenAI server
gets, its streams (SSE or LMI's JSON Lines, split anywhere) to TGI's SSE and to OpenAI chunks,
its error bodies to the gateway's errors, and the TGI fields it refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.backends.openai import OpenAIBackend
from llm_gateway.backends.openai.errors import container_error, error_event
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import ChatChunk, StreamItem, TokenEvent
from llm_gateway.core.parameters import GenerateParameters, Grammar
from llm_gateway.dialects.openai.passthrough import ChatChunkEncoder
from llm_gateway.dialects.tgi.encoding import TGIStreamEncoder
from llm_gateway.http.sse import wire

P = GenerateParameters


# -- TGI request -> upstream body ---------------------------------------------------------------

BODIES: list[tuple[str, GenerateParameters, bool, bool, bytes]] = [
    (
        "greedy stream",
        P(max_new_tokens=3, do_sample=False),
        True,
        False,
        b'{"model":"","prompt":"Hi","max_tokens":3,"stream":true,'
        b'"stream_options":{"include_usage":true},"include_stop_str_in_output":true,'
        b'"temperature":0}',
    ),
    (
        "sampled, details, top_n, seed, stop, penalties",
        P(
            max_new_tokens=8,
            temperature=0.7,
            top_p=0.9,
            top_k=40,
            repetition_penalty=1.1,
            frequency_penalty=0.5,
            seed=3,
            stop=["\n"],
            details=True,
            top_n_tokens=2,
        ),
        False,
        False,
        b'{"model":"","prompt":"Hi","max_tokens":8,"stream":false,'
        b'"include_stop_str_in_output":true,"temperature":0.7,"top_p":0.9,"top_k":40,'
        b'"repetition_penalty":1.1,"frequency_penalty":0.5,"seed":3,"stop":["\\n"],'
        b'"logprobs":2,"return_token_ids":true}',
    ),
    (
        "unset max_new_tokens is the rest of the context; full text, truncate, adapter",
        P(do_sample=True, return_full_text=True, truncate=10, adapter_id="lora1"),
        False,
        False,
        b'{"model":"lora1","prompt":"Hi","max_tokens":null,"stream":false,'
        b'"include_stop_str_in_output":true,"echo":true,"truncate_prompt_tokens":10}',
    ),
    (
        "grammar json and regex",
        P(max_new_tokens=2, grammar=Grammar(type="json", value={"type": "object"})),
        False,
        False,
        b'{"model":"","prompt":"Hi","max_tokens":2,"stream":false,'
        b'"include_stop_str_in_output":true,"temperature":0,"response_format":'
        b'{"type":"json_schema","json_schema":{"name":"schema","schema":{"type":"object"}}}}',
    ),
    (
        "chat only: the prompt as one user message",
        P(
            max_new_tokens=4,
            details=True,
            top_n_tokens=3,
            grammar=Grammar(type="regex", value="a+"),
        ),
        True,
        True,
        b'{"model":"","messages":[{"role":"user","content":"Hi"}],"stream":true,'
        b'"max_completion_tokens":4,"stream_options":{"include_usage":true},'
        b'"no_stop_trim":true,"include_stop_str_in_output":true,"temperature":0,'
        b'"logprobs":true,"top_logprobs":3,"regex":"a+"}',
    ),
]


@pytest.mark.parametrize(
    ("parameters", "stream", "chat_only", "expected"),
    [b[1:] for b in BODIES],
    ids=[b[0] for b in BODIES],
)
def test_generate_body(
    parameters: GenerateParameters, stream: bool, chat_only: bool, expected: bytes
) -> None:
    backend = OpenAIBackend(chat_only=chat_only)
    backend.check(parameters, stream=stream)
    assert backend.generate_body("Hi", parameters, stream=stream) == expected


def test_relayed_chat_body_keeps_everything_and_fills_defaults() -> None:
    data = {
        "model": "qwen",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "n": 2,
        "logprobs": True,
        "stream": False,
    }
    body = OpenAIBackend().chat_body(data, P(max_new_tokens=9, temperature=0.2, stop=["x"]))
    assert body == (
        b'{"model":"","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function",'
        b'"function":{"name":"f"}}],"tool_choice":"auto","n":2,"logprobs":true,"stream":true,'
        b'"stream_options":{"include_usage":true},"max_completion_tokens":9,"temperature":0.2,'
        b'"stop":["x"]}'
    )


# Refused whatever `unsupported_params` says: without them the client reads something else.
REFUSED: list[tuple[GenerateParameters, bool, bool, str]] = [
    (P(best_of=2, do_sample=True), False, False, "best_of"),
    (P(decoder_input_details=True), False, False, "decoder_input_details"),
    (P(return_full_text=True), True, False, "return_full_text"),
    (P(return_full_text=True), False, True, "return_full_text"),
    (P(truncate=4), False, True, "truncate"),
    (P(adapter_id="a"), False, True, "adapter_id"),
]


HINTS: list[tuple[GenerateParameters, str]] = [
    (P(typical_p=0.5), "typical_p"),
    (P(watermark=True), "watermark"),
]


def _refused(
    backend: OpenAIBackend, parameters: GenerateParameters, stream: bool, field: str
) -> None:
    with pytest.raises(GatewayError) as info:
        backend.check(parameters, stream=stream)
    error = info.value
    assert (error.status, error.error_type, error.param) == (422, "validation", field)
    assert error.message.startswith(
        f"Input validation error: `{field}` is not supported by this model's backend (openai)"
    )


@pytest.mark.parametrize("unsupported", ["drop", "refuse"])
@pytest.mark.parametrize(("parameters", "stream", "chat_only", "field"), REFUSED)
def test_unsupported_fields_are_422_naming_field_and_backend(
    parameters: GenerateParameters, stream: bool, chat_only: bool, field: str, unsupported: str
) -> None:
    backend = OpenAIBackend(chat_only=chat_only, unsupported_params=unsupported)
    _refused(backend, parameters, stream, field)


@pytest.mark.parametrize(("parameters", "field"), HINTS)
def test_sampling_hints_are_refused_under_refuse(
    parameters: GenerateParameters, field: str
) -> None:
    _refused(OpenAIBackend(unsupported_params="refuse"), parameters, False, field)


@pytest.mark.parametrize("chat_only", [False, True])
def test_sampling_hints_are_dropped_by_default_and_never_sent(chat_only: bool) -> None:
    backend = OpenAIBackend(chat_only=chat_only)
    p = P(typical_p=0.95, watermark=True, max_new_tokens=3, temperature=0.8)
    assert backend.check(p, stream=False) == ("typical_p", "watermark")
    assert backend.check(P(typical_p=0.95), stream=True) == ("typical_p",)
    for stream in (False, True):
        body = orjson.loads(backend.generate_body("Hi", p, stream=stream))
        assert not {"typical_p", "typical", "watermark"} & set(body)
        assert body["temperature"] == 0.8  # the rest of the sampling request is kept


def test_fields_tgi_clients_always_send_pass() -> None:
    # text_generation sends watermark: false and nulls for everything unset
    for unsupported in ("drop", "refuse"):
        backend = OpenAIBackend(unsupported_params=unsupported)
        assert backend.check(P(watermark=False, best_of=1, do_sample=False), stream=True) == ()


# -- upstream stream -> TGI SSE -----------------------------------------------------------------

# vLLM completions stream (reference §7.2's framing), with logprobs and the usage chunk
VLLM_STREAM = (
    b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,'
    b'"text":" Deep","logprobs":{"text_offset":[0],"token_logprobs":[-0.31],"tokens":[" Deep"],'
    b'"top_logprobs":[{" Deep":-0.31}]},"finish_reason":null,"stop_reason":null}]}\n\n'
    b": keep-alive\n\n"
    b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,'
    b'"text":" learning","logprobs":{"text_offset":[5],"token_logprobs":[-0.02],'
    b'"tokens":[" learning"],"top_logprobs":[{" learning":-0.02}]},"finish_reason":null,'
    b'"stop_reason":null}]}\n\n'
    b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,'
    b'"text":"","logprobs":{"text_offset":[14],"token_logprobs":[-0.01],"tokens":["</s>"],'
    b'"top_logprobs":[{"</s>":-0.01}]},"finish_reason":"stop","stop_reason":null}]}\n\n'
    b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":6,"total_tokens":9,"completion_tokens":3}}\n\n'
    b"data: [DONE]\n\n"
)
TGI_SSE = (
    b'data: {"index":1,"token":{"id":0,"text":" Deep","logprob":-0.31,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data: {"index":2,"token":{"id":0,"text":" learning","logprob":-0.02,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data: {"index":3,"token":{"id":0,"text":"</s>","logprob":-0.01,"special":true},'
    b'"generated_text":" Deep learning","details":{"finish_reason":"eos_token",'
    b'"generated_tokens":3,"seed":null,"input_length":6}}\n\n'
)
# SGLang chat stream (chat_only): the role rides on the first content chunk, the finish on an
# empty delta, matched_stop names the stop string
SGLANG_STREAM = (
    b'data: {"id":"0b1c","object":"chat.completion.chunk","created":1,"model":"default","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"Hello"},"logprobs":null,'
    b'"finish_reason":null,"matched_stop":null}]}\n\n'
    b'data: {"id":"0b1c","object":"chat.completion.chunk","created":1,"model":"default","choices":'
    b'[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":null,'
    b'"matched_stop":null}]}\n\n'
    b'data: {"id":"0b1c","object":"chat.completion.chunk","created":1,"model":"default","choices":'
    b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop","matched_stop":"."}]}\n\n'
    b'data: {"id":"0b1c","object":"chat.completion.chunk","created":1,"model":"default",'
    b'"choices":[],"usage":{"prompt_tokens":9,"total_tokens":11,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
SGLANG_TGI_SSE = (
    b'data: {"index":1,"token":{"id":0,"text":"Hello","logprob":null,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data: {"index":2,"token":{"id":0,"text":".","logprob":null,"special":false},'
    b'"generated_text":"Hello.","details":{"finish_reason":"stop_sequence","generated_tokens":2,'
    b'"seed":3,"input_length":9}}\n\n'
)
# LMI chat stream: JSON Lines, no data: prefix, [DONE] turned into an empty line (§7.1 L3)
LMI_STREAM = (
    b'{"id":"chatcmpl-5f0c","object":"chat.completion.chunk","created":1,"model":"lmi","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n'
    b'{"id":"chatcmpl-5f0c","object":"chat.completion.chunk","created":1,"model":"lmi","choices":'
    b'[{"index":0,"delta":{"content":"Hello!"},"logprobs":null,"finish_reason":null}]}\n'
    b'{"id":"chatcmpl-5f0c","object":"chat.completion.chunk","created":1,"model":"lmi","choices":'
    b'[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length",'
    b'"stop_reason":null}]}\n'
    b'{"id":"chatcmpl-5f0c","object":"chat.completion.chunk","created":1,"model":"lmi",'
    b'"choices":[],"usage":{"prompt_tokens":9,"total_tokens":12,"completion_tokens":3}}\n'
    b"\n"
)


def as_json(value: Any) -> Any:
    """A typed object as it goes on the wire (orjson writes dataclasses as objects)."""
    return orjson.loads(orjson.dumps(value))


def decode(decoder: Any, parts: list[bytes]) -> list[StreamItem]:
    items: list[StreamItem] = []
    for part in parts:
        items += decoder.feed(part)
    return items + decoder.close()


def tgi_sse(items: list[StreamItem]) -> bytes:
    encoder = TGIStreamEncoder(details=True)
    return b"".join(
        wire(encoder.event(i) if isinstance(i, TokenEvent) else encoder.error(i))  # type: ignore[arg-type]
        for i in items
    )


def test_vllm_completion_stream_as_tgi_sse() -> None:
    items = decode(OpenAIBackend().generate_decoder(P(details=True)), [VLLM_STREAM])
    assert tgi_sse(items) == TGI_SSE


def test_sglang_chat_stream_as_tgi_sse() -> None:
    parameters = P(do_sample=True, seed=3, stop=["."])
    items = decode(OpenAIBackend(chat_only=True).generate_decoder(parameters), [SGLANG_STREAM])
    assert tgi_sse(items) == SGLANG_TGI_SSE


def test_lmi_json_lines_chat_stream_ends_without_done() -> None:
    items = decode(OpenAIBackend(chat_only=True).generate_decoder(), [LMI_STREAM])
    assert tgi_sse(items) == (
        b'data: {"index":1,"token":{"id":0,"text":"Hello!","logprob":null,"special":false},'
        b'"generated_text":"Hello!","details":{"finish_reason":"length","generated_tokens":3,'
        b'"seed":null,"input_length":9}}\n\n'
    )


def test_a_stream_without_its_finish_is_incomplete() -> None:
    items = decode(
        OpenAIBackend().generate_decoder(), [VLLM_STREAM[: VLLM_STREAM.index(b": keep")]]
    )
    assert isinstance(items[-1], GatewayError)
    assert items[-1].error_type == "incomplete_generation_stream"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_payload_parts_split_anywhere(data: st.DataObject) -> None:
    for stream, chat_only, parameters, expected in (
        (VLLM_STREAM, False, P(details=True), TGI_SSE),
        (SGLANG_STREAM, True, P(do_sample=True, seed=3, stop=["."]), SGLANG_TGI_SSE),
    ):
        cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=12)))
        parts = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        decoder = OpenAIBackend(chat_only=chat_only).generate_decoder(parameters)
        assert tgi_sse(decode(decoder, parts)) == expected


def test_buffered_completion_as_tgi_details() -> None:
    raw = (
        b'{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,'
        b'"text":" Deep learning.","logprobs":{"text_offset":[0,5,14],"token_logprobs":[-0.31,'
        b'-0.02,-0.5],"tokens":[" Deep"," learning","."],"top_logprobs":[{" Deep":-0.31," A":-2.0},'
        b'{" learning":-0.02," is":-3.0},{".":-0.5,",":-1.0}]},"finish_reason":"stop",'
        b'"stop_reason":".","token_ids":[18682,6975,13]}],'
        b'"usage":{"prompt_tokens":6,"total_tokens":9,"completion_tokens":3}}\n'
    )
    generated = OpenAIBackend().parse_generated(raw, P(details=True, top_n_tokens=1))
    assert generated.text == " Deep learning."
    assert as_json(generated.details) == {
        "finish_reason": "stop_sequence",
        "generated_tokens": 3,
        "seed": None,
        "prefill": [],
        "tokens": [
            {"id": 18682, "text": " Deep", "logprob": -0.31, "special": False},
            {"id": 6975, "text": " learning", "logprob": -0.02, "special": False},
            {"id": 13, "text": ".", "logprob": -0.5, "special": False},
        ],
        "top_tokens": [
            [{"id": 18682, "text": " Deep", "logprob": -0.31, "special": False}],
            [{"id": 6975, "text": " learning", "logprob": -0.02, "special": False}],
            [{"id": 13, "text": ".", "logprob": -0.5, "special": False}],
        ],
        "input_length": 6,
        "best_of_sequences": None,
    }


# An EOS the container shows no log-probs for (the stream's finish chunk has none), then one
# it names in the log-probs, with token ids.
EOS_STREAM = (
    b'data: {"choices":[{"index":0,"text":" Hi","logprobs":{"tokens":[" Hi"],"token_logprobs":'
    b'[-0.1],"top_logprobs":[{" Hi":-0.1," Yo":-2.5,".":-3.0}]},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop",'
    b'"stop_reason":null}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
EOS_NAMED = (
    b'{"choices":[{"index":0,"text":" Hi","logprobs":{"tokens":[" Hi","</s>"],"token_logprobs":'
    b'[-0.1,-0.2],"top_logprobs":[{" Hi":-0.1," Yo":-2.5},{"</s>":-0.2,".":-1.9}]},'
    b'"finish_reason":"stop","stop_reason":null,"token_ids":[17,2]}],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":2}}'
)
UNKNOWN = {"id": 0, "text": "", "logprob": None, "special": False}


@pytest.mark.parametrize("top_n", [1, 2, 3])
def test_every_top_tokens_row_is_as_wide_as_asked_eos_included(top_n: int) -> None:
    parameters = P(details=True, top_n_tokens=top_n)
    items = decode(OpenAIBackend().generate_decoder(parameters), [EOS_STREAM])
    events = [i for i in items if isinstance(i, TokenEvent)]
    assert [e.token.text for e in events] == [" Hi", ""]
    hi = [(" Hi", -0.1), (" Yo", -2.5), (".", -3.0)][:top_n]
    assert as_json(events[0].top_tokens) == [
        {"id": 0, "text": t, "logprob": lp, "special": False} for t, lp in hi
    ]
    eos = {"id": 0, "text": "", "logprob": None, "special": True}
    assert as_json(events[1].token) == eos
    # the EOS itself first, then entries the container did not report
    assert as_json(events[1].top_tokens) == [eos] + [UNKNOWN] * (top_n - 1)

    generated = OpenAIBackend().parse_generated(EOS_NAMED, parameters)
    assert generated.details is not None
    assert as_json(generated.details.tokens[-1]) == {
        "id": 2,
        "text": "</s>",
        "logprob": -0.2,
        "special": True,
    }
    rows = as_json(generated.details.top_tokens)
    assert [len(row) for row in rows] == [top_n, top_n]
    named = [{"id": 2, "text": "</s>", "logprob": -0.2, "special": True}]
    named.append({"id": 0, "text": ".", "logprob": -1.9, "special": False})
    assert rows[1] == [*named, UNKNOWN][:top_n]


# -- upstream chat stream -> OpenAI chunks (relay) --------------------------------------------


def test_relayed_tool_call_chunks() -> None:
    head = b'"id":"x","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen3-4B"'
    stream = (
        b"data: {" + head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        b"data: {" + head + b',"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"id":"chatcmpl-tool-1","type":"function","function":{"name":"f","arguments":"{\\"a\\""}}]},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        b"data: {" + head + b',"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"function":{"arguments":": 1}"}}]},"logprobs":null,"finish_reason":"tool_calls",'
        b'"stop_reason":null}]}\n\n'
        b"data: {" + head + b',"choices":[],"usage":{"prompt_tokens":5,"total_tokens":9,'
        b'"completion_tokens":4}}\n\n'
        b"data: [DONE]\n\n"
    )
    items = decode(OpenAIBackend().chat_decoder(), [stream])
    assert all(isinstance(i, ChatChunk) for i in items)
    encoder = ChatChunkEncoder(
        chat=True,
        completion_id="chatcmpl-1",
        model="qwen",
        created=7,
        stops=[],
        include_usage=True,
        logprobs=False,
        prompt_estimate=1,
        relay=True,
    )
    out = wire([f for i in items if isinstance(i, ChatChunk) for f in encoder.event(i)])
    out += wire(encoder.end())
    base = b'"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"qwen","system_fingerprint":null'
    assert out == (
        b"data: {" + base + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        b"data: {" + base + b',"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"id":"chatcmpl-tool-1","type":"function","function":{"name":"f","arguments":"{\\"a\\""}}]},'
        b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        b"data: {" + base + b',"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"function":{"arguments":": 1}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        b"data: {" + base + b',"choices":[{"index":0,"delta":{},"logprobs":null,'
        b'"finish_reason":"tool_calls"}],"usage":null}\n\n'
        b"data: {" + base + b',"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,'
        b'"total_tokens":9}}\n\n'
        b"data: [DONE]\n\n"
    )


# -- the containers' error bodies ---------------------------------------------------------------

ERRORS: list[tuple[str, int, str, tuple[int, str, str] | None]] = [
    (
        "vLLM nested",
        400,
        '{"error":{"message":"bad","type":"BadRequestError","param":"n","code":400}}',
        (422, "validation", "bad"),
    ),
    (
        "vLLM flat / SGLang",
        400,
        '{"object":"error","message":"bad","type":"Bad Request","param":null,"code":400}',
        (422, "validation", "bad"),
    ),
    (
        "LMI 424",
        424,
        '{"error":"Input parsing failed: invalid payload. must contain prompt, inputs, or '
        'messages","code":424}',
        (
            422,
            "validation",
            "Input parsing failed: invalid payload. must contain prompt, inputs, or messages",
        ),
    ),
    (
        "LMI v16+ stringified vLLM error",
        500,
        '{"error":"error=ErrorInfo(message=\\u0027too long\\u0027, type=\\u0027BadRequestError'
        '\\u0027, param=None, code=400)","code":500}\n',
        (422, "validation", "too long"),
    ),
    (
        "DJL queue full",
        503,
        '{\n  "code": 503,\n  "type": "X",\n  "message": "busy"\n}',
        (429, "overloaded", "busy"),
    ),
    ("vLLM 500: not shown", 500, '{"error":{"message":"Traceback","type":"x","code":500}}', None),
    ("LMI custom formatter", 424, '{"error":"Custom formatter failed: x","code":424}', None),
    ("HTML", 502, "<html>", None),
]


@pytest.mark.parametrize(
    ("status", "body", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_container_errors(status: int, body: str, expected: tuple[int, str, str] | None) -> None:
    error = container_error(status, body)
    if expected is None:
        assert error is None
    else:
        assert error is not None and (error.status, error.error_type, error.message) == expected


def test_mid_stream_errors() -> None:
    nested = error_event({"error": {"message": "boom", "type": "x", "param": None, "code": 500}})
    assert (nested.status, nested.error_type, nested.message) == (424, "generation", "boom")
    lmi = error_event({"error": "exception occurred during rolling batch inference", "code": 424})
    assert lmi.error_type == "generation"
    traceback = error_event({"error": {"message": "Traceback\n  File x", "code": 500}})
    assert traceback.message == "The model failed during generation"


# -- configuration ------------------------------------------------------------------------------


def test_unsupported_params_is_drop_or_refuse() -> None:
    from llm_gateway.config.loader import ConfigError, parse_config

    model = {"name": "m", "endpoint": "e", "backend": "openai"}
    assert parse_config({"models": [model]}, "t").models[0].unsupported_params == "drop"
    strict = parse_config({"models": [{**model, "unsupported_params": "refuse"}]}, "t")
    assert strict.models[0].unsupported_params == "refuse"
    with pytest.raises(ConfigError, match="unsupported_params"):
        parse_config({"models": [{**model, "unsupported_params": "ignore"}]}, "t")
