"""Request bodies parsed as strictly as TGI's serde_json (issue 12 item 9): duplicate keys and
nesting at serde_json's recursion limit (the 128th level) are refused, in each dialect's
shape, before any upstream call."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.decoding import loads
from llm_gateway.core.errors import GatewayError


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_duplicate_keys_are_refused_with_their_place():
    with pytest.raises(GatewayError) as info:
        loads(b'{"inputs":"a","inputs":"b"}')
    assert info.value.status == 422 and info.value.param == "inputs"
    assert info.value.message == (
        "Failed to deserialize the JSON body into the target type: duplicate field `inputs` "
        "at line 1 column 22"
    )
    with pytest.raises(GatewayError) as info:
        loads(b'{"inputs": "a",\n "parameters": {"top_k": 1, "top_k": 2}}')
    assert info.value.message.endswith("parameters: duplicate field `top_k` at line 2 column 35"), (
        info.value.message
    )
    with pytest.raises(GatewayError, match=r"messages\.1: duplicate field `role`"):
        loads(b'{"messages": [{"role": "a"}, {"role": "b", "role": "c"}]}')
    with pytest.raises(GatewayError) as info:  # escaped keys are compared unescaped
        loads(b'{"x": {"a\\u0000": 1, "a\\u0000": 2}}')
    assert "x: duplicate field `a\x00` at line 1 column 30" in info.value.message


def test_same_keys_in_different_objects_and_escaped_quotes_are_fine():
    assert loads(b'[{"a": 1}, {"a": 2}, {"b": {"a": "\\"a\\": 1"}}]') == [
        {"a": 1},
        {"a": 2},
        {"b": {"a": '"a": 1'}},
    ]
    assert loads(b'{"a": "{\\"a\\": 1, \\"a\\": 2}", "b": "[[[["}') == {
        "a": '{"a": 1, "a": 2}',
        "b": "[[[[",
    }


def test_nesting_stops_at_serde_jsons_recursion_limit():
    assert str(loads(nested(127).encode())) == nested(127)
    for depth in (128, 129, 300, 5000):
        with pytest.raises(GatewayError) as info:
            loads(nested(depth).encode())
        assert info.value.status == 400
        assert info.value.message == (
            "Failed to parse the request body as JSON: recursion limit exceeded at line 1 "
            "column 128"
        )
    deep_object = b'{"a":' * 128 + b"1" + b"}" * 128
    with pytest.raises(GatewayError, match="recursion limit exceeded at line 1 column 636"):
        loads(deep_object)


def test_the_checks_stay_cheap_on_large_bodies():
    body = b'{"prompt": [' + b",".join([b'"hi"'] * 200_000) + b"]}"
    start = time.perf_counter()
    assert len(loads(body)["prompt"]) == 200_000
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", b'{"inputs": "x", "inputs": "y"}'),
        ("/generate_stream", b'{"inputs": "x", "parameters": {"seed": 1, "seed": 2}}'),
        ("/", b'{"inputs": "x", "stream": false, "stream": true}'),
    ],
)
def test_tgi_dialect_refuses_duplicates_as_tgi_does(client, emulator, path, body):
    before = emulator.stats_for("tgi3-endpoint").requests
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error_type"] == "validation"
    assert "duplicate field" in r.json()["error"]
    assert emulator.stats_for("tgi3-endpoint").requests == before


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            b'{"model": "tgi3", "model": "mistral", "messages": [{"role": "user", "content": "x"}]}',
            "model",
        ),
        (
            "/v1/completions",
            b'{"model": "tgi3", "prompt": "a", "max_tokens": 1, "prompt": "b"}',
            "prompt",
        ),
    ],
)
def test_openai_dialect_refuses_duplicates_with_param(client, path, body, param):
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert "duplicate field" in error["message"]


def test_deep_bodies_are_400_in_both_dialects(client):
    deep = (
        b'{"inputs": "x", "parameters": {"grammar": {"type": "json", "value": '
        + nested(200).encode()
        + b"}}}"
    )
    r = client.post("/generate", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "recursion limit exceeded" in r.json()["error"]
    deep = (
        b'{"model": "tgi3", "messages": [{"role": "user", "content": "x"}], "x": '
        + nested(130).encode()
        + b"}"
    )
    r = client.post(
        "/v1/chat/completions", content=deep, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "recursion limit exceeded" in r.json()["error"]["message"]


# Parsed JSON as pairs, so an object can repeat a key: strings lean on colons, quotes and
# backslashes (what the duplicate check counts and what escapes hide).
_text = st.text(alphabet=st.sampled_from(["a", "b", ":", '"', "\\", " ", "é", "\x00"]), max_size=6)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda v: ("list", v))
        | st.lists(st.tuples(_text, inner), max_size=4).map(lambda v: ("object", v))
    ),
    max_leaves=12,
)


def _write(value, draw_escape) -> str:
    """JSON text of ``value``, colons in strings written plainly or as ``\\u003a``/``\\u003A``
    and spaces around separators as ``draw_escape`` decides."""
    if isinstance(value, tuple):
        kind, items = value
        if kind == "list":
            return "[" + ",".join(_write(v, draw_escape) for v in items) + "]"
        sep = " : " if draw_escape() else ":"
        return (
            "{"
            + ", ".join(_write(k, draw_escape) + sep + _write(v, draw_escape) for k, v in items)
            + "}"
        )
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=draw_escape())
        return (
            text.replace(":", "\\u003a" if draw_escape() else "\\u003A") if draw_escape() else text
        )
    return json.dumps(value)


def _repeats_reference(text: str) -> bool:
    """The stdlib parser, keys in order: does any object repeat a key?"""
    found = False

    def pairs(items):
        nonlocal found
        found = found or len({k for k, _ in items}) != len(items)
        return dict(items)

    json.loads(text, object_pairs_hook=pairs)
    return found


@settings(max_examples=600, deadline=None)
@given(value=_json_values, choices=st.randoms(use_true_random=False))
def test_repeated_keys_are_found_exactly_as_a_full_parse_finds_them(value, choices):
    text = _write(value, lambda: choices.random() < 0.5)
    repeated = _repeats_reference(text)
    try:
        parsed = loads(text.encode())
    except GatewayError as error:
        assert repeated, (text, error.message)
        assert error.status == 422 and "duplicate field" in error.message, error.message
    else:
        assert not repeated, text
        assert parsed == json.loads(text)
