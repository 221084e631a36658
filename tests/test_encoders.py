"""The dialect encoders on their own, byte for byte: the core's events in, the wire out.

Whole-gateway tests (test_tgi_dialect, test_openai_dialect, test_responses_wire,
test_anthropic) prove the encoders are wired in; these pin each branch of the encoders — field
order, what is left out when, the status each error becomes, where a held-back stop sequence's
logprobs go — with hand-written expected bytes (serde's and OpenAI's shapes, TGI reference
§1), so that a changed byte fails here first (docs/testing.md: the mutation run). Encoders
return frames; each comparison renders them through the relay's one writer (``http.sse.wire``),
so the bytes compared are the bytes on the wire.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.backends.chunks import chat_chunk as read_chunk
from llm_gateway.backends.tgi.tokens import details as read_details
from llm_gateway.core import errors as e
from llm_gateway.core.errors import ErrorKind, GatewayError
from llm_gateway.core.events import ChatChunk, Details, Token, TokenEvent, TokenUsage
from llm_gateway.core.generation import GenerationResult
from llm_gateway.dialects.anthropic.encoding import MessageEncoder, first_stop
from llm_gateway.dialects.openai import encoding as oai
from llm_gateway.dialects.openai.errors import error_body as openai_error_body
from llm_gateway.dialects.openai.responses.encoding import ResponseEncoder, response_usage
from llm_gateway.dialects.openai.responses.errors import response_error
from llm_gateway.dialects.tgi import encoding as tgi
from llm_gateway.dialects.tgi.errors import error_body as tgi_error_body
from llm_gateway.http.frames import Frame
from llm_gateway.http.sse import wire


def tok(text: str, id_: int = 1, logprob: float = -0.5, special: bool = False) -> Token:
    return Token(id_, text, logprob, special)


def tgi_token(token: Token) -> dict[str, Any]:
    """A token as TGI sends it."""
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}


def D(details: dict[str, Any]) -> Details | None:
    """Details as TGI sends them, read the way the TGI back-end reads them."""
    return read_details(details)


def as_json(body: Any) -> Any:
    """The body as it goes on the wire."""
    return orjson.loads(orjson.dumps(body))


def wire_chunk(data: dict[str, Any]) -> ChatChunk:
    """A chat chunk as the upstream sends it, read the way the chat back-ends read it."""
    chunk = read_chunk(data)
    assert chunk is not None
    return chunk


EOS = tok("</s>", 2, -0.01, special=True)

# -- TGI ----------------------------------------------------------------------------------------


def test_tgi_error_body_is_compact_and_not_ascii_escaped():
    error = e.validation_error("`stop` cannot hold «é»")
    assert tgi_error_body(error) == (
        422,
        (
            '{"error":"Input validation error: `stop` cannot hold «é»","error_type":"validation"}'
        ).encode(),
    )


def test_tgi_details_in_serde_order_with_every_optional_field():
    top = [tgi_token(tok("a", 3, -1.0))]
    details = {
        "tokens": [tgi_token(tok("Hi"))],
        "seed": 42,
        "top_tokens": [top],
        # TGI's PrefillToken has no `special`; the first one has no logprob (NaN -> null)
        "prefill": [{"id": 0, "text": "<s>", "logprob": None}],
        "generated_tokens": 1,
        "finish_reason": "length",
        "best_of_sequences": [
            {
                "tokens": [tgi_token(tok("Ho"))],
                "seed": 7,
                "generated_text": "Ho",
                "finish_reason": "eos_token",
                "generated_tokens": 1,
                "top_tokens": [top],
            },
            {"generated_text": "He", "finish_reason": "length", "generated_tokens": 1},
        ],
    }
    t = '{"id":1,"text":"%s","logprob":-0.5,"special":false}'
    top_json = '[[{"id":3,"text":"a","logprob":-1.0,"special":false}]]'
    assert orjson.dumps(tgi.details_body(D(details))).decode() == (
        '{"finish_reason":"length","generated_tokens":1,"seed":42,'
        '"prefill":[{"id":0,"text":"<s>","logprob":null}],'
        f'"tokens":[{t % "Hi"}],'
        '"best_of_sequences":['
        '{"generated_text":"Ho","finish_reason":"eos_token","generated_tokens":1,"seed":7,'
        f'"prefill":[],"tokens":[{t % "Ho"}],"top_tokens":{top_json}}},'
        '{"generated_text":"He","finish_reason":"length","generated_tokens":1,"seed":null,'
        '"prefill":[],"tokens":[]}],'
        f'"top_tokens":{top_json}}}'
    )


def test_tgi_details_leave_out_what_was_not_asked_for():
    details = {"finish_reason": "eos_token", "generated_tokens": 3, "top_tokens": []}
    assert as_json(tgi.details_body(D(details))) == {
        "finish_reason": "eos_token",
        "generated_tokens": 3,
        "seed": None,
        "prefill": [],
        "tokens": [],
    }


@pytest.mark.parametrize(
    ("details", "asked", "expected"),
    [
        (None, True, {"generated_text": "Hi"}),
        ({"finish_reason": "length", "generated_tokens": 1}, False, {"generated_text": "Hi"}),
        (
            {"finish_reason": "length", "generated_tokens": 1},
            True,
            {
                "generated_text": "Hi",
                "details": {
                    "finish_reason": "length",
                    "generated_tokens": 1,
                    "seed": None,
                    "prefill": [],
                    "tokens": [],
                },
            },
        ),
    ],
)
def test_tgi_generate_body_has_details_only_when_asked_and_known(details, asked, expected):
    result = GenerationResult(
        generated_text="Hi", details=None if details is None else D(details), upstream_seconds=0.1
    )
    assert as_json(tgi.generate_body(result, details=asked)) == expected


def test_tgi_stream_details_has_input_length_only_when_reported():
    base = {
        "finish_reason": "length",
        "generated_tokens": 2,
        "seed": 1,
        "tokens": [tgi_token(tok("x"))],
    }
    assert tgi.stream_details(D(base)) == {
        "finish_reason": "length",
        "generated_tokens": 2,
        "seed": 1,
    }
    assert tgi.stream_details(D({**base, "input_length": 0})) == {
        "finish_reason": "length",
        "generated_tokens": 2,
        "seed": 1,
        "input_length": 0,
    }


def test_tgi_stream_events_byte_for_byte():
    encoder = tgi.TGIStreamEncoder(details=True, prefix="Q: ")
    top = [tok("a", 3, -1.0)]
    first = TokenEvent(0, tok("Hel"), top_tokens=top)
    # A token before the last carries no details, even when the decoder has some.
    middle = TokenEvent(1, tok("lo"), details=D({"finish_reason": "length"}))
    last = TokenEvent(
        2, EOS, None, "Hello", D({"finish_reason": "eos_token", "generated_tokens": 3})
    )
    assert wire(encoder.event(first)) == (
        b'data: {"index":0,"token":{"id":1,"text":"Hel","logprob":-0.5,"special":false},'
        b'"top_tokens":[{"id":3,"text":"a","logprob":-1.0,"special":false}],'
        b'"generated_text":null,"details":null}\n\n'
    )
    assert wire(encoder.event(middle)) == (
        b'data: {"index":1,"token":{"id":1,"text":"lo","logprob":-0.5,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
    )
    assert wire(encoder.event(last)) == (
        b'data: {"index":2,"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},'
        b'"generated_text":"Q: Hello",'
        b'"details":{"finish_reason":"eos_token","generated_tokens":3,"seed":null}}\n\n'
    )
    assert wire(encoder.end()) == b""


def test_tgi_stream_without_details_asked_ends_with_null_details():
    last = TokenEvent(0, EOS, [], "", D({"finish_reason": "eos_token", "generated_tokens": 1}))
    assert wire(tgi.TGIStreamEncoder(details=False).event(last)) == (
        b'data: {"index":0,"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},'
        b'"generated_text":"","details":null}\n\n'
    )


def test_tgi_stream_error_is_one_event():
    encoder = tgi.TGIStreamEncoder(details=False)
    assert wire(encoder.error(e.incomplete_stream())) == (
        b'data: {"error":"Incomplete generation stream",'
        b'"error_type":"incomplete_generation_stream"}\n\n'
    )


# -- OpenAI: errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, 400),
        (413, 413),
        (422, 400),  # TGI's validation status: OpenAI says 400 for every bad request
        (424, 502),  # the container failed
        (499, 499),
        (500, 502),  # never a bare 500
        (501, 502),
        (502, 502),
        (503, 503),
        (504, 504),
        (507, 502),
    ],
)
def test_openai_status_of_an_upstreams_own_error(status, expected):
    error = GatewayError("boom", status=status, error_type="generation", kind=ErrorKind.UPSTREAM)
    got, raw = openai_error_body(error)
    body = orjson.loads(raw)
    assert got == expected
    # Blame follows the status: a 4xx is the request's fault, a 5xx the server's.
    assert body["error"]["type"] == ("invalid_request_error" if expected < 500 else "server_error")
    assert body["error"]["code"] == "generation"


@pytest.mark.parametrize(
    ("param", "named"),
    [
        ("max_new_tokens", "max_tokens"),
        ("top_n_tokens", "top_logprobs"),
        ("inputs", "messages"),
        ("temperature", "temperature"),
        (None, None),
    ],
)
def test_openai_errors_name_the_parameter_the_client_sent(param, named):
    error = e.validation_error("bad", param=param)
    status, body = openai_error_body(error)
    assert (status, orjson.loads(body)) == (
        400,
        {
            "error": {
                "message": "Input validation error: bad",
                "type": "invalid_request_error",
                "param": named,
                "code": "invalid_value",
            }
        },
    )


def test_openai_stream_error_is_one_event_then_done():
    encoder = chat_encoder()
    assert wire(encoder.error(e.timeout_error("slow"))) == (
        b'data: {"error":{"message":"slow","type":"server_error","param":null,"code":"timeout"}}'
        b"\n\n"
        b"data: [DONE]\n\n"
    )
    assert wire(encoder.end()) == b"data: [DONE]\n\n"


# -- OpenAI: small shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "stopped_here", "expected"),
    [
        ("length", False, "length"),
        ("eos_token", False, "stop"),
        ("stop_sequence", False, "stop"),
        (None, False, "stop"),
        ("length", True, "stop"),  # the gateway cut a stop sequence in the last tokens
    ],
)
def test_openai_finish_reason(reason, stopped_here, expected):
    assert oai.finish_reason(reason, stopped_here) == expected


def test_openai_usage_marks_an_estimated_prompt():
    assert oai.usage_body(7, 3, False) == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
    }
    assert oai.usage_body(7, 3, True) == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_estimated": True,
    }


def test_openai_chat_logprob_has_utf8_bytes():
    top = [tok("é", 5, -0.1), tok("e", 6, -2.5)]
    assert oai.chat_logprob(tok("é", 5, -0.1), top) == {
        "token": "é",
        "logprob": -0.1,
        "bytes": [195, 169],
        "top_logprobs": [
            {"token": "é", "logprob": -0.1, "bytes": [195, 169]},
            {"token": "e", "logprob": -2.5, "bytes": [101]},
        ],
    }
    assert oai.chat_logprob(tok("x"), None)["top_logprobs"] == []


def test_openai_text_logprobs_are_parallel_lists_with_offsets():
    entries = [(tok("Hi", logprob=-0.1), [tok("Hi", logprob=-0.1), tok("Ho", logprob=-2.0)])]
    entries += [(tok(" there", logprob=-0.3), None)]
    assert oai.text_logprobs(entries, 5) == {
        "tokens": ["Hi", " there"],
        "token_logprobs": [-0.1, -0.3],
        "top_logprobs": [{"Hi": -0.1, "Ho": -2.0}, None],
        "text_offset": [5, 7],
    }


# -- OpenAI: streams ----------------------------------------------------------------------------


def chat_encoder(**overrides: Any) -> oai.OpenAIStreamEncoder:
    options: dict[str, Any] = {
        "chat": True,
        "completion_id": "chatcmpl-1",
        "model": "m",
        "created": 1_700_000_000,
        "stops": [],
        "include_usage": False,
        "logprobs": False,
        "prompt_tokens": lambda details: (7, False),
    }
    return oai.OpenAIStreamEncoder(**{**options, **overrides})


CHAT_HEAD = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"%s","system_fingerprint":null,"choices":[{"index":0,'
)


def chat_chunk(choice: bytes, model: bytes = b"m", usage: bytes = b"") -> bytes:
    return CHAT_HEAD % model + choice + b"}]" + usage + b"}\n\n"


def test_openai_chat_stream_byte_for_byte_with_usage():
    encoder = chat_encoder(include_usage=True, prompt_tokens=lambda d: (7, True))
    null_usage = b',"usage":null'
    out = wire(encoder.event(TokenEvent(0, tok("Hel"))))
    assert out == chat_chunk(
        b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null',
        usage=null_usage,
    ) + chat_chunk(
        b'"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null', usage=null_usage
    )
    encoder.answer_as("fallback")
    assert wire(encoder.event(TokenEvent(1, tok("lo")))) == chat_chunk(
        b'"delta":{"content":"lo"},"logprobs":null,"finish_reason":null',
        model=b"fallback",
        usage=null_usage,
    )
    last = TokenEvent(
        2, EOS, None, "Hello", D({"finish_reason": "eos_token", "generated_tokens": 3})
    )
    assert wire(encoder.event(last)) == chat_chunk(
        b'"delta":{},"logprobs":null,"finish_reason":"stop"', model=b"fallback", usage=null_usage
    ) + (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,'
        b'"model":"fallback","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":7,'
        b'"completion_tokens":3,"total_tokens":10,"prompt_tokens_estimated":true}}\n\n'
    )
    assert (encoder.finish, encoder.completion_tokens) == ("stop", 3)
    assert wire(encoder.end()) == b"data: [DONE]\n\n"


def test_openai_chat_stream_holds_back_and_removes_a_stop_sequence():
    encoder = chat_encoder(stops=["END"])
    head = chat_chunk(
        b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null'
    )
    assert wire(encoder.event(TokenEvent(0, tok("Hi E")))) == head + chat_chunk(
        b'"delta":{"content":"Hi "},"logprobs":null,"finish_reason":null'
    )
    assert wire(encoder.event(TokenEvent(1, tok("ND")))) == b""
    # The upstream ran on to its length limit; the client sees the stop it asked for. Without
    # details, the tokens seen are the count.
    assert wire(
        encoder.event(TokenEvent(2, tok(" more"), None, "Hi END more", None))
    ) == chat_chunk(b'"delta":{},"logprobs":null,"finish_reason":"stop"')
    assert encoder.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_openai_chat_stream_releases_a_held_prefix_that_never_became_a_stop():
    encoder = chat_encoder(stops=["END"])
    encoder.event(TokenEvent(0, tok("Hi E")))
    last = TokenEvent(1, EOS, None, "Hi E", D({"finish_reason": "length", "generated_tokens": 2}))
    assert wire(encoder.event(last)) == chat_chunk(
        b'"delta":{"content":"E"},"logprobs":null,"finish_reason":null'
    ) + chat_chunk(b'"delta":{},"logprobs":null,"finish_reason":"length"')


def test_openai_chat_logprobs_follow_the_text_shown_and_drop_a_withheld_stop():
    encoder = chat_encoder(stops=["##"], logprobs=True)
    out = wire(encoder.event(TokenEvent(0, tok("a#", logprob=-0.25))))
    # "#" is held back (it may start "##"), but the token's text starts inside what is shown.
    assert out.endswith(
        chat_chunk(
            b'"delta":{"content":"a"},"logprobs":{"content":[{"token":"a#","logprob":-0.25,'
            b'"bytes":[97,35],"top_logprobs":[]}]},"finish_reason":null'
        )
    )
    last = TokenEvent(
        1, tok("#b"), None, "a##b", D({"finish_reason": "length", "generated_tokens": 2})
    )
    assert wire(encoder.event(last)) == chat_chunk(
        b'"delta":{},"logprobs":null,"finish_reason":"stop"'
    )


def test_openai_completion_stream_with_echo_and_logprobs():
    encoder = chat_encoder(chat=False, echo="Say: ", logprobs=True, completion_id="cmpl-1")
    head = (
        b'data: {"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",'
        b'"system_fingerprint":null,"choices":[{"index":0,'
    )
    top = [tok("Hi", logprob=-0.1), tok("Ho", logprob=-2.0)]
    assert wire(encoder.event(TokenEvent(0, tok("Hi", logprob=-0.1), top))) == (
        head + b'"text":"Say: ","logprobs":null,"finish_reason":null}]}\n\n'
        b"" + head + b'"text":"Hi","logprobs":{"tokens":["Hi"],"token_logprobs":[-0.1],'
        b'"top_logprobs":[{"Hi":-0.1,"Ho":-2.0}],"text_offset":[5]},"finish_reason":null}]}\n\n'
    )
    last = TokenEvent(
        1, tok(" there", logprob=-0.3), None, "Hi there", D({"finish_reason": "length"})
    )
    assert wire(encoder.event(last)) == (
        head + b'"text":" there","logprobs":{"tokens":[" there"],"token_logprobs":[-0.3],'
        b'"top_logprobs":[null],"text_offset":[7]},"finish_reason":null}]}\n\n'
        + head
        + b'"text":"","logprobs":null,"finish_reason":"length"}]}\n\n'
    )
    assert encoder.usage == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def test_openai_special_tokens_show_no_text_and_no_logprobs():
    encoder = chat_encoder(logprobs=True)
    encoder.event(TokenEvent(0, tok("Hi")))
    last = TokenEvent(1, EOS, None, "Hi", D({"finish_reason": "eos_token", "generated_tokens": 2}))
    assert wire(encoder.event(last)) == chat_chunk(
        b'"delta":{},"logprobs":null,"finish_reason":"stop"'
    )


# -- Anthropic ----------------------------------------------------------------------------------


def message_encoder(**overrides: Any) -> MessageEncoder:
    options: dict[str, Any] = {
        "message_id": "msg_1",
        "model": "m",
        "input_tokens": 5,
        "estimated": True,
        "stops": ["END", "<|im_end|>"],
        "client_stops": ["END"],
    }
    return MessageEncoder(**{**options, **overrides})


def ev(kind: str, data: str) -> bytes:
    return f'event: {kind}\ndata: {{"type":"{kind}"{data}}}\n\n'.encode()


def usage(input_tokens: int, output_tokens: int) -> str:
    return (
        f'{{"input_tokens":{input_tokens},"cache_creation_input_tokens":0,'
        f'"cache_read_input_tokens":0,"output_tokens":{output_tokens}}}'
    )


def message_start(model: str = "m", input_tokens: int = 5) -> bytes:
    return ev(
        "message_start",
        f',"message":{{"id":"msg_1","type":"message","role":"assistant","model":"{model}",'
        f'"content":[],"stop_reason":null,"stop_sequence":null,"usage":{usage(input_tokens, 0)}}}',
    )


def text_start(index: int = 0) -> bytes:
    return ev(
        "content_block_start", f',"index":{index},"content_block":{{"type":"text","text":""}}'
    )


def text_delta(text: str, index: int = 0) -> bytes:
    return ev(
        "content_block_delta",
        f',"index":{index},"delta":{{"type":"text_delta","text":{orjson.dumps(text).decode()}}}',
    )


def block_stop(index: int = 0) -> bytes:
    return ev("content_block_stop", f',"index":{index}')


def message_end(reason: str, sequence: str | None, input_tokens: int, output_tokens: int) -> bytes:
    seq = "null" if sequence is None else f'"{sequence}"'
    return ev(
        "message_delta",
        f',"delta":{{"stop_reason":"{reason}","stop_sequence":{seq}}},'
        f'"usage":{usage(input_tokens, output_tokens)}',
    ) + ev("message_stop", "")


def test_first_stop_is_the_one_that_completes_first():
    assert first_stop("a END b STOP", ["STOP", "END"]) == "END"
    # Both complete at the same place: the one that starts first (the longer) was matched.
    assert first_stop("xABC", ["BC", "ABC"]) == "ABC"
    assert first_stop("xABC", ["ABC", "BC"]) == "ABC"
    assert first_stop("ABCD", ["BCD", "AB"]) == "AB"
    assert first_stop("abc", ["", "x"]) is None
    assert first_stop("abc", []) is None


def test_anthropic_tgi_stream_byte_for_byte():
    encoder = message_encoder()
    assert wire(encoder.opening()) == message_start()
    assert wire(encoder.opening()) == b""  # owed once
    assert wire(encoder.event(TokenEvent(0, tok("Hi")))) == text_start() + text_delta("Hi")
    last = TokenEvent(
        1,
        EOS,
        None,
        "Hi",
        D({"finish_reason": "eos_token", "generated_tokens": 4, "input_length": 9}),
    )
    # The endpoint's counts replace the estimate and the tokens seen.
    assert wire(encoder.event(last)) == block_stop() + message_end("end_turn", None, 9, 4)
    assert encoder.final == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": orjson.loads(usage(9, 4)),
    }
    assert encoder.token_usage == TokenUsage(9, 4, prompt_estimated=False)
    assert wire(encoder.event(TokenEvent(2, tok("late")))) == b""  # nothing after the end
    assert wire(encoder.end()) == b""


def test_anthropic_names_the_clients_stop_sequence_and_hides_it():
    encoder = message_encoder()
    out = wire(encoder.event(TokenEvent(0, tok("Hi E"))))
    assert out == message_start() + text_start() + text_delta("Hi ")
    assert wire(encoder.event(TokenEvent(1, tok("ND!")))) == b""
    last = TokenEvent(2, EOS, None, "Hi END!", D({"finish_reason": "length"}))
    # No counts from the endpoint: the estimate stays, and is marked as one.
    assert wire(encoder.event(last)) == block_stop() + message_end("stop_sequence", "END", 5, 3)
    assert encoder.token_usage == TokenUsage(5, 3, prompt_estimated=True)


@pytest.mark.parametrize(
    ("text", "reason", "stop_reason"),
    [
        ("Hi<|im_end|>", "stop_sequence", "end_turn"),  # a template's stop is no stop_sequence
        ("Hi", "length", "max_tokens"),
        ("Hi", "eos_token", "end_turn"),
        ("Hi", None, "end_turn"),
    ],
)
def test_anthropic_stop_reason_of_a_tgi_stream(text, reason, stop_reason):
    encoder = message_encoder(wire=False)
    assert wire(encoder.event(TokenEvent(0, tok(text)))) == b""
    assert wire(encoder.event(TokenEvent(1, EOS, None, text, D({"finish_reason": reason})))) == b""
    assert encoder.final is not None
    assert (encoder.final["stop_reason"], encoder.final["stop_sequence"]) == (stop_reason, None)
    assert encoder.final["content"] == [{"type": "text", "text": "Hi"}]


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return wire_chunk({"choices": [choice], **extra})


def call(index: int, arguments: str, name: str | None = None, id_: str | None = None) -> Any:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if name is not None:
        fragment["function"]["name"] = name
    if id_ is not None:
        fragment["id"] = id_
    return fragment


def test_anthropic_chat_stream_text_then_tool_calls():
    encoder = message_encoder(stops=[], client_stops=[])
    out = wire(encoder.event(chunk({"role": "assistant", "content": "Let me"})))
    assert out == message_start() + text_start() + text_delta("Let me")
    out = wire(encoder.event(chunk({"tool_calls": [call(0, '{"city"', "get_weather", "call_a")]})))
    assert out == block_stop(0) + ev(
        "content_block_start",
        ',"index":1,"content_block":{"type":"tool_use","id":"call_a","name":"get_weather",'
        '"input":{}}',
    ) + ev(
        "content_block_delta",
        ',"index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\""}',
    )
    out = wire(encoder.event(chunk({"tool_calls": [call(0, ':"Paris"}')]})))
    assert out == ev(
        "content_block_delta",
        ',"index":1,"delta":{"type":"input_json_delta","partial_json":":\\"Paris\\"}"}',
    )
    # A second call without an id gets one made from the message id and its index.
    out = wire(encoder.event(chunk({"tool_calls": [call(1, "{}", "now")]})))
    assert out == block_stop(1) + ev(
        "content_block_start",
        ',"index":2,"content_block":{"type":"tool_use","id":"toolu_1_1","name":"now","input":{}}',
    ) + ev(
        "content_block_delta",
        ',"index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}',
    )
    # A late fragment of the first call cannot be streamed (its block is closed).
    assert wire(encoder.event(chunk({"tool_calls": [call(0, " ")]}))) == b""
    assert wire(encoder.event(chunk(finish="tool_calls"))) == b""
    out = wire(encoder.event(chunk(usage={"prompt_tokens": 11, "completion_tokens": 6})))
    assert out == b""
    assert wire(encoder.end()) == block_stop(2) + message_end("tool_use", None, 11, 6)
    assert encoder.final is not None
    assert encoder.final["content"] == [
        {"type": "text", "text": "Let me"},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_1_1", "name": "now", "input": {}},
    ]
    assert encoder.token_usage == TokenUsage(11, 6, prompt_estimated=False)
    assert wire(encoder.end()) == b""


def test_anthropic_late_fragments_of_interleaved_calls_count_in_the_answer():
    """An upstream that interleaves calls (0, then 1, then more of 0): the late fragment
    cannot be streamed (its block is closed) but the buffered answer parses all of it."""
    encoder = message_encoder(wire=False)
    encoder.event(chunk({"tool_calls": [call(0, '{"city": ', "weather", "call_a")]}))
    encoder.event(chunk({"tool_calls": [call(1, "{}", "now", "call_b")]}))
    encoder.event(chunk({"tool_calls": [call(0, '"Paris"}')]}))
    encoder.event(chunk(finish="tool_calls"))
    encoder.end()
    assert encoder.final is not None
    assert [(b["id"], b["input"]) for b in encoder.final["content"]] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {}),
    ]


def test_anthropic_broken_tool_arguments_are_an_empty_input():
    encoder = message_encoder(wire=False)
    encoder.event(chunk({"tool_calls": [call(0, '{"city": "Par', "f")]}))
    encoder.event(chunk({"tool_calls": [{"index": 1, "function": {"name": "g"}}]}))
    encoder.event(chunk(finish="stop"))
    encoder.end()
    assert encoder.final is not None
    blocks = encoder.final["content"]
    assert [(b["name"], b["input"]) for b in blocks] == [("f", {}), ("g", {})]
    # Tool calls made with a plain "stop" are still tool use.
    assert encoder.final["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "matched", "stop_reason", "stop_sequence"),
    [
        ("stop", "END", "stop_sequence", "END"),  # vLLM names the stop string it matched
        ("stop", "<|im_end|>", "end_turn", None),
        ("stop", 7, "end_turn", None),  # a stop token id is no stop sequence
        ("length", None, "max_tokens", None),
        ("content_filter", None, "refusal", None),
        ("function_call", None, "tool_use", None),
    ],
)
def test_anthropic_stop_reason_of_a_chat_stream(finish, matched, stop_reason, stop_sequence):
    encoder = message_encoder(wire=False)
    choice = {"index": 0, "delta": {"content": "Hi"}, "finish_reason": finish}
    choice["stop_reason"] = matched
    encoder.event(wire_chunk({"choices": [choice]}))
    encoder.end()
    assert encoder.final is not None
    assert (encoder.final["stop_reason"], encoder.final["stop_sequence"]) == (
        stop_reason,
        stop_sequence,
    )


def test_anthropic_chat_stream_reads_only_the_first_choice_and_counts_without_usage():
    encoder = message_encoder(wire=False)
    encoder.event(
        wire_chunk(
            {
                "choices": [
                    "junk",
                    {"index": 1, "delta": {"content": "other"}},
                    {"index": 0, "delta": {"content": "Hi"}},
                    {"index": 0, "delta": {"content": ""}},
                ]
            }
        )
    )
    encoder.end()
    assert encoder.final is not None
    assert encoder.final["content"] == [{"type": "text", "text": "Hi"}]
    assert encoder.token_usage == TokenUsage(5, 1, prompt_estimated=True)


def test_anthropic_fallback_renames_unless_asked_by_alias():
    renamed = message_encoder()
    renamed.answer_as("backup")
    assert wire(renamed.opening()) == message_start(model="backup")
    kept = message_encoder(rename=False)
    kept.answer_as("backup")
    assert wire(kept.opening()) == message_start(model="m")


def test_anthropic_heartbeat_and_error_events():
    encoder = message_encoder()
    assert wire(encoder.heartbeat()) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert message_encoder(wire=False).heartbeat() == ()  # a buffered answer makes no frames
    assert wire(
        encoder.error(e.overloaded_error("SageMaker is throttling"))
    ) == message_start() + ev(
        "error", ',"error":{"type":"overloaded_error","message":"SageMaker is throttling"}'
    )


def test_one_event_is_as_many_frames_as_sse_events_it_owes():
    """Encoders return frames; the relay writes them (http.sse.wire) in one write."""
    anthropic = message_encoder()
    anthropic.opening()
    frames = anthropic.event(TokenEvent(0, tok("Hi")))
    assert [f.event for f in frames] == ["content_block_start", "content_block_delta"]
    assert wire(frames) == text_start() + text_delta("Hi")
    assert anthropic.event(TokenEvent(1, tok("E"))) == ()  # held back: may start "END"

    openai = chat_encoder(include_usage=True)
    openai.event(TokenEvent(0, tok("Hi")))
    last = TokenEvent(1, EOS, None, "Hi", D({"finish_reason": "eos_token", "generated_tokens": 2}))
    finish, usage_chunk = openai.event(last)  # the finish chunk, then the usage chunk
    assert isinstance(finish, Frame) and finish.event is None
    assert orjson.loads(finish.data)["choices"][0]["finish_reason"] == "stop"
    assert isinstance(usage_chunk, Frame) and orjson.loads(usage_chunk.data)["choices"] == []
    assert openai.end() == (Frame(b"[DONE]"),)


# -- OpenAI Responses ---------------------------------------------------------------------------


def responses_encoder(**overrides: Any) -> ResponseEncoder:
    options: dict[str, Any] = {
        "request_id": "r1",
        "echo": {"model": "m"},
        "stops": [],
        "prompt_tokens": lambda finish: (7, True),
    }
    return ResponseEncoder(**{**options, **overrides})


def events(body: bytes) -> list[dict[str, Any]]:
    """The events of a Responses stream, each checked: ``event:`` is its data's ``type``."""
    out = []
    for block in body.split(b"\n\n"):
        if not block:
            continue
        name, data = block.split(b"\n")
        event = orjson.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + event["type"].encode()
        out.append(event)
    return out


def kinds(body: bytes) -> list[str]:
    return [event["type"].removeprefix("response.") for event in events(body)]


def test_responses_usage_object():
    assert response_usage(TokenUsage(7, 3)) == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }
    assert response_usage(TokenUsage(7, 3, prompt_estimated=True))["input_tokens_estimated"] is True


@pytest.mark.parametrize(
    ("make", "code", "type_"),
    [
        (
            lambda: e.overloaded_error("SageMaker is throttling"),
            "rate_limit_exceeded",
            "overloaded",
        ),
        (lambda: e.upstream_error("Model 'm' failed"), "server_error", "upstream"),
    ],
)
def test_responses_error_object(make, code, type_):
    error = make()  # made in the test: a mutation run collects once for every mutant
    assert response_error(error) == {
        "code": code,
        "message": error.message,
        "param": None,
        "type": type_,
    }


def test_responses_tgi_stream_counts_tokens_and_holds_back_a_stop():
    encoder = responses_encoder(stops=["END"])
    body = wire(encoder.opening()) + wire(encoder.event(TokenEvent(0, tok("Hi E"))))
    assert kinds(body) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
    ]
    assert events(body)[-1]["delta"] == "Hi "
    assert [event["sequence_number"] for event in events(body)] == [0, 1, 2, 3, 4]
    # The held "E" never became "END": it is released at the end. No count from the endpoint:
    # the tokens seen are the count.
    last = TokenEvent(1, EOS, None, "Hi E", D({"finish_reason": "eos_token"}))
    body = wire(encoder.event(last))
    assert kinds(body) == [
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    assert events(body)[0]["delta"] == "E"
    assert events(body)[0]["sequence_number"] == 5
    final = events(body)[-1]["response"]
    assert final == encoder.final
    assert final["status"] == "completed" and final["incomplete_details"] is None
    assert final["output"][0]["content"][0]["text"] == "Hi E"
    assert final["usage"]["output_tokens"] == 2
    assert final["usage"]["input_tokens_estimated"] is True
    assert encoder.token_usage == TokenUsage(7, 2, prompt_estimated=True)
    assert wire(encoder.event(TokenEvent(2, tok("late")))) == b""


def test_responses_length_cut_is_incomplete_unless_a_stop_ended_it():
    cut = responses_encoder(wire=False)
    cut.event(TokenEvent(0, tok("Hi"), None, "Hi", D({"finish_reason": "length"})))
    assert cut.final is not None
    assert (cut.final["status"], cut.final["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
    )
    assert cut.final["output"][0]["status"] == "incomplete"
    stopped = responses_encoder(wire=False, stops=["!"])
    stopped.event(TokenEvent(0, tok("Hi!"), None, "Hi!", D({"finish_reason": "length"})))
    assert stopped.final is not None
    assert stopped.final["status"] == "completed"
    assert stopped.final["output"][0]["content"][0]["text"] == "Hi"


def test_responses_an_empty_answer_is_one_empty_message():
    encoder = responses_encoder()
    body = wire(encoder.event(TokenEvent(0, EOS, None, "", D({"finish_reason": "eos_token"}))))
    assert kinds(body) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    assert encoder.final is not None
    assert encoder.final["output"] == [
        {
            "id": "msg_r1",
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": ""}],
            "role": "assistant",
        }
    ]


def test_responses_chat_stream_calls_with_and_without_ids():
    encoder = responses_encoder(wire=False)
    fragments = [
        "junk",  # not a choice: skipped, the next one is read
        {
            "delta": {
                "tool_calls": [
                    # no index: the first call; no id: one is made
                    {"function": {"name": "get_weather", "arguments": '{"city"'}},
                    {"index": "x", "function": {"arguments": ': "Paris"}'}},  # index 0 again
                    {"index": 1, "id": "call_b", "function": "junk"},
                ]
            },
            "finish_reason": "tool_calls",
        },
    ]
    encoder.event(wire_chunk({"choices": fragments}))
    encoder.event(
        wire_chunk(
            {
                "choices": [
                    {
                        "delta": {
                            "tool_calls": [
                                {"index": 1, "function": {"name": "now", "arguments": "{}"}},
                                {
                                    "index": 0,
                                    "function": {"arguments": " "},
                                },  # after its call closed: kept
                            ]
                        }
                    }
                ]
            }
        )
    )
    encoder.event(wire_chunk({"choices": [], "usage": {"prompt_tokens": 11}}))
    encoder.end()
    assert encoder.final is not None
    assert [
        (item["id"], item["call_id"], item["name"], item["arguments"], item["status"])
        for item in encoder.final["output"]
    ] == [
        ("fc_r1_0", "call_r1_0", "get_weather", '{"city": "Paris"} ', "completed"),
        ("fc_r1_1", "call_b", "now", "{}", "completed"),
    ]
    # No completion count from the upstream: each content or call fragment counts.
    assert encoder.token_usage == TokenUsage(11, 5, prompt_estimated=False)
    assert encoder.final["status"] == "completed"


def test_responses_chat_stream_streams_every_fragment_of_a_chunk():
    encoder = responses_encoder()
    body = wire(
        encoder.event(
            wire_chunk(
                {
                    "choices": [
                        {
                            "delta": {
                                "content": "Hi",
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": "call_a",
                                        "function": {"name": "f", "arguments": "{"},
                                    },
                                    {"index": 0, "function": {"arguments": "}"}},
                                ],
                            }
                        }
                    ]
                }
            )
        )
    )
    assert kinds(body) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
    ]


def test_responses_chat_stream_finish_reason_and_usage_arrive_separately():
    encoder = responses_encoder(wire=False, prompt_tokens=lambda finish: (3, True))
    encoder.event(
        wire_chunk({"choices": [{"delta": {"content": "Hi"}, "finish_reason": "length"}]})
    )
    encoder.event(wire_chunk({"choices": [{"delta": {}}]}))  # a later chunk names no reason
    encoder.end()
    assert encoder.final is not None
    assert encoder.final["status"] == "incomplete"
    # No usage from the upstream: the prompt is estimated, the deltas are the count.
    assert encoder.token_usage == TokenUsage(3, 1, prompt_estimated=True)
    assert encoder.final["usage"]["input_tokens_estimated"] is True
    assert wire(encoder.end()) == b""


def test_responses_chat_usage_counts_are_the_upstreams():
    encoder = responses_encoder(wire=False)
    encoder.event(wire_chunk({"choices": [{"delta": {"content": "Hi"}}]}))
    encoder.event(
        wire_chunk({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    )
    encoder.end()
    assert encoder.token_usage == TokenUsage(9, 4, prompt_estimated=False)


def test_responses_a_fallback_is_named_and_a_failure_keeps_the_partial_answer():
    encoder = responses_encoder()
    encoder.answer_as("backup")
    encoder.event(TokenEvent(0, tok("Hi")))
    body = wire(encoder.error(e.overloaded_error("SageMaker is throttling")))
    assert kinds(body) == ["failed"]
    final = events(body)[0]["response"]
    assert final["model"] == "backup"
    assert final["status"] == "failed"
    assert final["error"]["code"] == "rate_limit_exceeded"
    assert final["output"][0]["status"] == "incomplete"
    assert final["output"][0]["content"][0]["text"] == "Hi"


def test_tgi_stream_usage_is_known_at_the_last_event():
    encoder = tgi.TGIStreamEncoder(details=False, counted=12, estimate=lambda: 99)
    assert encoder.token_usage is None
    encoder.event(TokenEvent(0, tok("Hi")))
    assert encoder.token_usage is None
    encoder.event(
        TokenEvent(1, EOS, None, "Hi", D({"finish_reason": "length", "generated_tokens": 2}))
    )
    # No count from the endpoint: the model's tokenizer counted the prompt.
    assert encoder.token_usage == TokenUsage(12, 2)
    counted_upstream = tgi.TGIStreamEncoder(details=False, counted=12)
    last = {"finish_reason": "length", "generated_tokens": 2, "input_length": 9}
    counted_upstream.event(TokenEvent(0, EOS, None, "", D(last)))
    assert counted_upstream.token_usage == TokenUsage(9, 2)
    estimated = tgi.TGIStreamEncoder(details=False, estimate=lambda: 99)
    estimated.event(TokenEvent(0, EOS, None, "", D({"generated_tokens": 1})))
    assert estimated.token_usage == TokenUsage(99, 1, prompt_estimated=True)


def test_first_stop_compares_first_occurrences():
    # "STOP" occurs first (and last); "END" completes before the last "STOP".
    assert first_stop("STOP a END b STOP", ["STOP", "END"]) == "STOP"


def test_anthropic_tool_fragments_without_an_index_are_the_first_call():
    encoder = message_encoder(wire=False, stops=[], client_stops=[])
    encoder.event(chunk({"tool_calls": [{"function": {"arguments": '{"a"'}}]}))
    encoder.event(chunk({"tool_calls": [{"index": "x", "function": {"arguments": ":1"}}]}))
    encoder.event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))
    # Arguments that are not text (not OpenAI's shape) are not appended.
    encoder.event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": {"b": 2}}}]}))
    encoder.event(chunk(finish="tool_calls"))
    encoder.end()
    assert encoder.final is not None
    assert encoder.final["content"] == [
        {"type": "tool_use", "id": "toolu_1_0", "name": "", "input": {"a": 1}}
    ]


def lp_of(chunk_bytes: bytes) -> list[str] | None:
    """The tokens whose logprobs a chat chunk carries (None: no logprobs)."""
    logprobs = orjson.loads(chunk_bytes.removeprefix(b"data: "))["choices"][0]["logprobs"]
    return None if logprobs is None else [entry["token"] for entry in logprobs["content"]]


def chunks_of(body: bytes) -> list[bytes]:
    return [block for block in body.split(b"\n\n") if block]


def test_openai_a_logprob_waits_while_its_token_is_held_back():
    encoder = chat_encoder(stops=["#!"], logprobs=True)
    top = [tok("a#", logprob=-0.25), tok("b", logprob=-3.0)]
    first = chunks_of(wire(encoder.event(TokenEvent(0, tok("a#", logprob=-0.25), top))))
    assert lp_of(first[-1]) == ["a#"]  # "a" shown, "#" held (it may start "#!")
    assert orjson.loads(first[-1].removeprefix(b"data: "))["choices"][0]["logprobs"] == {
        "content": [oai.chat_logprob(tok("a#", logprob=-0.25), top)]
    }
    # "##": the first "#" is released, the second held; the second token's text starts at the
    # held "#", so its logprob waits for the chunk that shows it.
    second = chunks_of(wire(encoder.event(TokenEvent(1, tok("#")))))
    assert [orjson.loads(c.removeprefix(b"data: "))["choices"][0]["delta"] for c in second] == [
        {"content": "#"}
    ]
    assert lp_of(second[0]) is None
    third = chunks_of(wire(encoder.event(TokenEvent(2, tok("c")))))
    assert lp_of(third[0]) == ["#", "c"]


def test_openai_the_logprobs_of_a_withheld_stop_are_dropped():
    encoder = chat_encoder(stops=["##"], logprobs=True)
    encoder.event(TokenEvent(0, tok("ab")))
    encoder.event(TokenEvent(1, tok("c#")))
    last = TokenEvent(2, tok("#x"), None, "abc##x", D({"finish_reason": "length"}))
    assert lp_of(chunks_of(wire(encoder.event(last)))[-1]) is None
    wholly_held = chat_encoder(stops=["##"], logprobs=True)
    wholly_held.event(TokenEvent(0, tok("#")))
    last = TokenEvent(1, tok("#"), None, "##", D({"finish_reason": "length"}))
    assert lp_of(chunks_of(wire(wholly_held.event(last)))[-1]) is None


def test_openai_an_echoed_prompt_is_not_generated_text():
    encoder = chat_encoder(chat=False, echo="Q#", stops=["##"], logprobs=True)
    encoder.event(TokenEvent(0, tok("a#")))
    last = TokenEvent(1, tok("#"), None, "a##", D({"finish_reason": "length"}))
    final = orjson.loads(chunks_of(wire(encoder.event(last)))[-1].removeprefix(b"data: "))
    assert final["choices"][0] == {
        "index": 0,
        "text": "",
        "logprobs": None,  # the withheld "#" token's is dropped: the echo is not shown text
        "finish_reason": "stop",
    }


def test_openai_a_completion_without_echo_starts_with_the_text():
    encoder = chat_encoder(chat=False, completion_id="cmpl-1")
    assert wire(encoder.event(TokenEvent(0, tok("Hi")))) == (
        b'data: {"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",'
        b'"system_fingerprint":null,"choices":[{"index":0,"text":"Hi","logprobs":null,'
        b'"finish_reason":null}]}\n\n'
    )


def test_openai_usage_counts_are_the_endpoints_when_it_gives_them():
    seen: list[Any] = []

    def prompt_tokens(finish: Any) -> tuple[int, bool]:
        seen.append(finish)
        return (finish.input_length, False)

    encoder = chat_encoder(prompt_tokens=prompt_tokens)
    assert encoder.token_usage is None and encoder.usage is None and encoder.finish is None
    last = {"finish_reason": "eos_token", "generated_tokens": 5, "input_length": 9}
    encoder.event(TokenEvent(0, EOS, None, "", D(last)))
    assert encoder.token_usage == TokenUsage(9, 5)
    assert encoder.usage == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    assert [f.input_length for f in seen] == [9]


def test_anthropic_chat_stream_stop_across_chunks_and_counts_without_usage():
    encoder = message_encoder()
    # Choices without an index are the first choice; two in one chunk are both read.
    out = wire(
        encoder.event(wire_chunk({"choices": [{"delta": {"content": "Hi"}}, {"delta": {}}]}))
    )
    assert out == message_start() + text_start() + text_delta("Hi")
    out = wire(
        encoder.event(
            wire_chunk({"choices": [{"delta": {"content": " E"}}, {"delta": {"content": "ND"}}]})
        )
    )
    assert out == text_delta(" ")
    encoder.event(chunk(finish="stop"))
    # No usage from the upstream: three content deltas, the estimated prompt.
    assert wire(encoder.end()) == block_stop() + message_end("stop_sequence", "END", 5, 3)
    assert encoder.token_usage == TokenUsage(5, 3, prompt_estimated=True)


def test_anthropic_two_calls_in_one_chunk_are_both_streamed():
    encoder = message_encoder(stops=[], client_stops=[])
    encoder.opening()
    out = wire(
        encoder.event(
            chunk({"tool_calls": [call(0, "{}", "f", "call_a"), call(1, "{}", "g", "call_b")]})
        )
    )
    assert out == (
        ev(
            "content_block_start",
            ',"index":0,"content_block":{"type":"tool_use","id":"call_a","name":"f","input":{}}',
        )
        + ev(
            "content_block_delta",
            ',"index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}',
        )
        + block_stop(0)
        + ev(
            "content_block_start",
            ',"index":1,"content_block":{"type":"tool_use","id":"call_b","name":"g","input":{}}',
        )
        + ev(
            "content_block_delta",
            ',"index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}',
        )
    )


def test_anthropic_text_after_a_tool_call_is_a_new_block_and_text_accumulates():
    encoder = message_encoder(wire=False, stops=["END"], client_stops=["END"])
    assert encoder.token_usage is None
    encoder.event(chunk({"content": "Let "}))
    encoder.event(chunk({"content": "me"}))
    encoder.event(chunk({"tool_calls": [call(0, "{}", "f", "call_a")]}))
    encoder.event(chunk({"content": "Done E"}))  # "E" is held: it may start "END"
    encoder.event(chunk(finish="stop"))
    encoder.end()
    assert encoder.final is not None
    assert encoder.final["content"] == [
        {"type": "text", "text": "Let me"},
        {"type": "tool_use", "id": "call_a", "name": "f", "input": {}},
        {"type": "text", "text": "Done E"},  # the held "E" never became "END": released
    ]


def test_anthropic_a_last_token_with_text_is_sent_before_the_end():
    encoder = message_encoder(stops=[], client_stops=[])
    encoder.opening()
    last = TokenEvent(0, tok("Hi"), None, "Hi", D({"finish_reason": "eos_token"}))
    assert wire(encoder.event(last)) == (
        text_start() + text_delta("Hi") + block_stop() + message_end("end_turn", None, 5, 1)
    )


def test_anthropic_a_tool_calls_finish_is_tool_use():
    encoder = message_encoder(wire=False)
    encoder.event(chunk({"content": "Hi"}, finish="tool_calls"))
    encoder.end()
    assert encoder.final is not None and encoder.final["stop_reason"] == "tool_use"


def test_responses_a_call_without_a_usable_id_or_name():
    encoder = responses_encoder()
    encoder.opening()
    body = wire(
        encoder.event(
            wire_chunk(
                {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "", "function": {}}]}}]}
            )
        )
    )
    body += wire(
        encoder.event(
            wire_chunk(
                {"choices": [{"delta": {"tool_calls": [{"index": 1, "id": 7, "function": {}}]}}]}
            )
        )
    )
    added = [ev["item"] for ev in events(body) if ev["type"] == "response.output_item.added"]
    assert [(item["call_id"], item["name"]) for item in added] == [
        ("call_r1_0", ""),
        ("call_r1_1", ""),
    ]


def test_responses_counts_are_the_endpoints_else_the_deltas_seen():
    counted = responses_encoder(wire=False)
    counted.event(
        TokenEvent(0, EOS, None, "", D({"finish_reason": "eos_token", "generated_tokens": 5}))
    )
    assert counted.token_usage == TokenUsage(7, 5, prompt_estimated=True)
    deltas = responses_encoder(wire=False)
    deltas.event(wire_chunk({"choices": [{"delta": {"content": "a"}}]}))
    deltas.event(wire_chunk({"choices": [{"delta": {"content": "b"}}]}))
    deltas.end()
    assert deltas.token_usage == TokenUsage(7, 2, prompt_estimated=True)


def test_responses_object_repeats_the_request_and_says_the_defaults():
    encoder = responses_encoder(wire=False)
    encoder.event(
        TokenEvent(0, EOS, None, "", D({"finish_reason": "eos_token", "generated_tokens": 1}))
    )
    assert encoder.final is not None
    final = {k: v for k, v in encoder.final.items() if k not in ("created_at", "completed_at")}
    assert final == {
        "id": "resp_r1",
        "object": "response",
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "m",
        "output": encoder.final["output"],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": None,
        "truncation": "disabled",
        "usage": response_usage(TokenUsage(7, 1, prompt_estimated=True)),
        "user": None,
        "metadata": {},
    }
    echo = {
        "model": "m",
        "instructions": "Be brief.",
        "max_output_tokens": 64,
        "parallel_tool_calls": False,
        "temperature": 0.5,
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "tool_choice": "none",
        "tools": [{"type": "function", "name": "f"}],
        "top_p": 0.9,
        "metadata": {"k": "v"},
    }
    echoed = responses_encoder(wire=False, echo=echo)
    echoed.event(TokenEvent(0, EOS, None, "", D({"finish_reason": "eos_token"})))
    assert echoed.final is not None
    assert {key: echoed.final[key] for key in echo} == echo
