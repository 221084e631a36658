"""Hostile input gets a clear 4xx in the right dialect's shape: never a 5xx, never a hang."""

from __future__ import annotations

import httpx
import pytest

from llm_gateway.config import Settings
from tests.conftest import gateway_config

CHAT = "/v1/chat/completions"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/generate",
            b'{"inputs": "x", "parameters": {"grammar": {"type": "json", "value": '
            + nested(300).encode()
            + b"}}}",
        ),
        ("/generate", b'{"inputs": ' + nested(5000).encode() + b"}"),
        ("/generate", b'{"inputs": "x", "parameters": {"max_new_tokens": 1e400}}'),
        (
            "/generate",
            b'{"inputs": "x", "parameters": {"max_new_tokens": 123456789012345678901234567890}}',
        ),
        ("/generate", b'{"inputs": "x", "parameters": {"seed": 18446744073709551616}}'),
        ("/generate", b'{"inputs": "\\ud800", "parameters": {"max_new_tokens": 1}}'),
        ("/generate", b"\xc3\x28"),
        ("/generate", b'{"inputs": "x", "parameters": "nope"}'),
        (
            CHAT,
            b'{"model": "tgi3", "messages": [{"role": "user", "content": "hi"}], "response_format": '
            b'{"type": "json_schema", "json_schema": {"schema": ' + nested(300).encode() + b"}}}",
        ),
        (
            CHAT,
            b'{"model": "chat-api", "messages": [{"role": "user", "content": "hi"}], "x": '
            + nested(300).encode()
            + b"}",
        ),
        (
            CHAT,
            b'{"model": "tgi3", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
        ),
        (CHAT, b'{"model": "tgi3", "messages": [{"role": "tool", "content": "42"}]}'),
        (CHAT, b'{"model": "tgi3", "messages": "hi"}'),
        (CHAT, b'{"model": 5, "messages": [{"role": "user", "content": "hi"}]}'),
        (
            CHAT,
            b'{"model": "tgi3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}',
        ),
        ("/v1/completions", b'{"model": "tgi3", "prompt": [[1, 2, 3]]}'),
        ("/v1/completions", b'{"model": "tgi3", "prompt": []}'),
    ],
)
def test_hostile_bodies_are_4xx(client, path, body):
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    payload = r.json()
    if path.startswith("/v1/"):
        assert set(payload["error"]) == {"message", "type", "param", "code"}
    else:
        assert isinstance(payload["error"], str) and payload["error_type"]


def test_unknown_fields_and_tgi_legal_extremes_are_accepted(client):
    r = client.post(
        "/generate",
        json={
            "inputs": "x",
            "unknown": {"deep": [1, {"x": None}]},
            "parameters": {"zzz": 1, "max_new_tokens": 1},
        },
    )
    assert r.status_code == 200
    # 1e39 is infinity as TGI's f32, which TGI accepts as a (strictly positive) temperature
    r = client.post(
        "/generate", json={"inputs": "x", "parameters": {"temperature": 1e39, "max_new_tokens": 1}}
    )
    assert r.status_code == 200


def test_limits_on_messages_and_characters(start_gateway):
    url = start_gateway(gateway_config(), Settings(max_messages=4, max_input_chars=50))
    with httpx.Client(base_url=url) as c:
        many = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi"} for i in range(5)]
        r = c.post(CHAT, json={"model": "tgi3", "messages": many})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        assert "at most 4 messages" in r.json()["error"]["message"]
        r = c.post(
            CHAT, json={"model": "tgi3", "messages": [{"role": "user", "content": "x" * 60}]}
        )
        assert r.status_code == 400 and "at most 50 characters" in r.json()["error"]["message"]
        r = c.post("/generate", json={"inputs": "x" * 51})
        assert r.status_code == 422 and r.json()["error_type"] == "validation"
        assert "at most 50 characters" in r.json()["error"]
        r = c.post("/v1/completions", json={"model": "tgi3", "prompt": "y" * 51})
        assert r.status_code == 400
        assert (
            c.post(
                "/generate", json={"inputs": "x" * 50, "parameters": {"max_new_tokens": 1}}
            ).status_code
            == 200
        )


def test_wrong_method_content_type_and_empty_body(client):
    assert client.get("/generate").status_code == 405
    r = client.post("/generate", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    # Bodies not declared JSON are refused before they are read, as TGI (axum) does: a
    # "simple" cross-site POST (text/plain, forms) cannot make a local gateway spend credentials.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        r = client.post(
            "/generate",
            content=b'{"inputs": "x", "parameters": {"max_new_tokens": 1}}',
            headers={"content-type": content_type} if content_type else {},
        )
        assert r.status_code == 415 and r.json()["error_type"] == "unsupported_media_type"
