"""Reassembling TGI's SSE from PayloadParts split anywhere, in both TGI formats."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.backends.framing import LineBuffer
from llm_gateway.backends.tgi.stream import TGIStreamDecoder as StreamDecoder
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import TokenEvent
from llm_gateway.dialects.tgi.errors import error_body as _tgi_error_body


def tgi_body(error: GatewayError) -> object:
    """The error as the TGI dialect renders it."""
    return orjson.loads(_tgi_error_body(error)[1])


# Recorded shapes: TGI 3.x (reference §1.7 example) and the same stream as TGI 0.8.2 sends it.
TGI3 = (
    b'data: {"index":1,"token":{"id":415,"text":" The","logprob":-0.42,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data: {"index":2,"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},'
    b'"generated_text":" The","details":{"finish_reason":"eos_token","generated_tokens":2,'
    b'"seed":null,"input_length":7}}\n\n'
)
TGI082 = (
    b'data:{"token":{"id":415,"text":" The","logprob":-0.42,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data:{"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},'
    b'"generated_text":" The","details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null}}\n\n'
)
# Multi-byte characters (2, 3 and 4 bytes in UTF-8), a keep-alive comment, CRLF line ends.
UNICODE = (
    b":\n\n"
    + 'data: {"index":1,"token":{"id":7,"text":" caf\u00e9 \u2192 \U0001f680","logprob":-1.0,"special":false},'
    '"generated_text":null,"details":null}\r\n\r\n'.encode()
    + b": keep-alive\n\n"
    + 'data: {"index":2,"token":{"id":8,"text":"\u00fc","logprob":-0.5,"special":false},'
    '"generated_text":" caf\u00e9 \u2192 \U0001f680\u00fc","details":null}\n\n'.encode()
)


def decode_all(chunks: list[bytes]) -> list[TokenEvent | GatewayError]:
    decoder = StreamDecoder()
    out: list[TokenEvent | GatewayError] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.close())
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    parts, last = [], 0
    for p in points:
        parts.append(data[last:p])
        last = p
    parts.append(data[last:])
    return parts


def summary(events):
    return [
        (e.index, e.token, e.generated_text, e.details)
        if isinstance(e, TokenEvent)
        else tgi_body(e)
        for e in events
    ]


@pytest.mark.parametrize("recorded", [TGI3, TGI082, UNICODE], ids=["tgi3", "tgi082", "unicode"])
def test_every_single_split_point(recorded):
    whole = summary(decode_all([recorded]))
    for cut in range(len(recorded) + 1):
        assert summary(decode_all([recorded[:cut], recorded[cut:]])) == whole


@settings(max_examples=300, deadline=None)
@given(
    recorded=st.sampled_from([TGI3, TGI082, UNICODE]),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
)
def test_any_splitting_gives_the_same_events(recorded, cuts):
    assert summary(decode_all(split_at(recorded, cuts))) == summary(decode_all([recorded]))


def test_both_formats_decode_to_the_same_events():
    tgi3, legacy = decode_all([TGI3]), decode_all([TGI082])
    assert [e.index for e in legacy] == [1, 2]  # 0.8.2 has no index: counted from 1
    assert [e.token for e in tgi3] == [e.token for e in legacy]
    assert tgi3[-1].generated_text == legacy[-1].generated_text == " The"
    assert tgi3[-1].details is not None and tgi3[-1].details.input_length == 7
    assert legacy[-1].details is not None and legacy[-1].details.input_length is None


def test_unicode_survives_byte_by_byte_delivery():
    events = decode_all([bytes([b]) for b in UNICODE])
    assert events[0].token.text == " caf\u00e9 \u2192 \U0001f680"
    assert events[-1].generated_text.endswith("\u00fc")


def test_stream_without_last_token_is_incomplete():
    first_event = TGI3.split(b"\n\n")[0] + b"\n\n"
    events = decode_all([first_event])
    assert isinstance(events[-1], GatewayError)
    assert tgi_body(events[-1]) == {
        "error": "Incomplete generation stream",
        "error_type": "incomplete_generation_stream",
    }


def test_tgi_error_event_is_final():
    body = (
        TGI3.split(b"\n\n")[0]
        + b'\n\ndata: {"error":"Request failed during generation: OOM","error_type":"generation"}\n\n'
    )
    events = decode_all([body + TGI3])  # anything after the error is ignored
    assert isinstance(events[0], TokenEvent)
    err = events[1]
    assert isinstance(err, GatewayError) and len(events) == 2
    assert tgi_body(err) == {
        "error": "Request failed during generation: OOM",
        "error_type": "generation",
    }
    assert err.status == 424


def test_malformed_json_line_ends_with_an_upstream_error():
    events = decode_all([b'data: {"token": oops\n\n'])
    assert len(events) == 1 and isinstance(events[0], GatewayError)
    assert events[0].error_type == "upstream" and events[0].status == 502


def test_last_line_without_newline_is_flushed():
    body = TGI3.rstrip(b"\n")
    events = decode_all([body])
    assert events[-1].generated_text == " The"


def test_ignores_other_sse_fields_and_done():
    body = b"event: message\nid: 1\nretry: 10\n" + TGI3 + b"data: [DONE]\n\n"
    assert summary(decode_all([body])) == summary(decode_all([TGI3]))


def test_ndjson_lines_are_read_too():
    ndjson = b"".join(
        orjson.dumps(orjson.loads(line[6:])) + b"\n" for line in TGI3.split(b"\n\n") if line
    )
    assert summary(decode_all([ndjson])) == summary(decode_all([TGI3]))


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=10),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_line_buffer_reassembles_any_lines(lines, cuts):
    data = b"".join(line + b"\n" for line in lines)
    buffer, out = LineBuffer(), []
    for part in split_at(data, cuts):
        out.extend(buffer.feed(part))
    assert buffer.flush() == b""
    assert out == [line[:-1] if line.endswith(b"\r") else line for line in lines]


def test_a_leading_byte_order_mark_is_dropped():
    events = decode_all([b"\xef\xbb", b"\xbf" + TGI3])
    assert summary(events) == summary(decode_all([TGI3]))


def test_last_event_with_details_but_no_text_still_ends_the_stream():
    body = (
        b'data: {"token":{"id":1,"text":" Hi","logprob":-0.1,"special":false}}\n\n'
        b'data: {"token":{"id":2,"text":"</s>","logprob":-0.1,"special":true},'
        b'"details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null}}\n\n'
    )
    events = decode_all([body])
    assert len(events) == 2 and events[-1].is_last
    assert events[-1].generated_text == " Hi"  # the EOS token is not part of the text
