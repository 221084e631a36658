"""Out-of-range integers are the client's mistake, answered as such (issue 12 item 5): OpenAI
400 ``invalid_request_error`` naming the field, TGI 422 as serde's deserializer words it; and
an exception nobody expected is still answered inside the request context."""

from __future__ import annotations

import pytest

from tests.observed import Stdout, metrics_of

HI = [{"role": "user", "content": "Hi"}]
U32, I32, I64, U64 = 2**32, 2**31, 2**63, 2**64


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"prompt": "hi", "max_tokens": U32}, "max_tokens"),
        ("/v1/completions", {"prompt": "hi", "max_tokens": 10**30}, "max_tokens"),
        ("/v1/completions", {"prompt": "hi", "top_k": I32}, "top_k"),
        ("/v1/completions", {"prompt": "hi", "seed": U64}, "seed"),
        ("/v1/completions", {"prompt": "hi", "logprobs": I64}, "logprobs"),
        ("/v1/completions", {"prompt": "hi", "best_of": U64 - 1}, "best_of"),
        ("/v1/completions", {"prompt": "hi", "n": -(2**70)}, "n"),
        ("/v1/chat/completions", {"messages": HI, "top_k": I64}, "top_k"),
        ("/v1/chat/completions", {"messages": HI, "max_tokens": U32}, "max_tokens"),
        (
            "/v1/chat/completions",
            {"messages": HI, "max_completion_tokens": 99999999999},
            "max_completion_tokens",
        ),
        ("/v1/chat/completions", {"messages": HI, "seed": -1}, "seed"),
        ("/v1/chat/completions", {"messages": HI, "seed": U64 * 4}, "seed"),
        ("/v1/chat/completions", {"messages": HI, "top_logprobs": I64, "logprobs": True}, None),
    ],
)
def test_openai_out_of_range_integers_are_400_naming_the_field(client, path, body, param):
    r = client.post(path, json={"model": "tgi3", **body})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == (param or "top_logprobs"), error


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("max_new_tokens", U32, "invalid value: integer `4294967296`, expected u32"),
        ("top_k", I64, "invalid value: integer `9223372036854775808`, expected i32"),
        ("top_k", -I32 - 1, "invalid value: integer `-2147483649`, expected i32"),
        ("top_n_tokens", -1, "invalid value: integer `-1`, expected u32"),
        ("truncate", -5, "invalid value: integer `-5`, expected usize"),
        ("seed", U64, "invalid type: floating point `18446744073709552000.0`, expected u64"),
        ("best_of", 10**30, "invalid type: floating point `1000000000000000000000000000000.0`"),
    ],
)
def test_tgi_out_of_range_integers_are_serde_422s(client, field, value, expected):
    for path in ("/generate", "/generate_stream", "/"):
        r = client.post(path, json={"inputs": "x", "parameters": {field: value}})
        assert r.status_code == 422, r.text
        message = r.json()["error"]
        assert message.startswith(
            f"Failed to deserialize the JSON body into the target type: parameters.{field}: "
        )
        assert expected in message, message


def test_an_unexpected_exception_is_answered_inside_the_request_context(
    client, capsys, monkeypatch
):
    import llm_gateway.dialects.openai.dialect as openai_dialect
    import llm_gateway.dialects.tgi.dialect as tgi_dialect

    def boom(*args, **kwargs):
        raise RuntimeError("an internal detail that must not reach the client")

    monkeypatch.setattr(tgi_dialect, "decode", boom)
    monkeypatch.setattr(openai_dialect, "decode", boom)
    out = Stdout(capsys)
    r = client.post("/generate", json={"inputs": "x"}, headers={"x-request-id": "boom-1"})
    assert r.status_code == 500
    assert r.json() == {"error": "Internal gateway error", "error_type": "internal"}
    assert r.headers["x-request-id"] == "boom-1" and "gateway;dur=" in r.headers["server-timing"]
    log = out.log("boom-1")
    assert log["status"] == 500 and log["error_kind"] == "upstream"
    assert log["error_type"] == "internal"
    assert metrics_of(out.emf("boom-1"))["ErrorRate"] == (100.0, "Percent")
    r = client.post(
        "/v1/chat/completions",
        json={"model": "tgi3", "messages": HI},
        headers={"x-request-id": "boom-2"},
    )
    assert r.status_code == 502 and r.json()["error"]["type"] == "server_error"
    assert r.headers["x-request-id"] == "boom-2" and "server-timing" in r.headers
    assert "internal detail" not in r.text
    assert out.log("boom-2")["status"] == 502
