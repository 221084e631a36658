"""The Mangum handler (buffered mode) with the API Gateway events in ``events/``."""

from __future__ import annotations

import base64
import importlib
import json
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import env, sse_events

EVENTS = Path(__file__).resolve().parent.parent / "events"
CONFIG = {
    "default_model": "oasst-pythia-12b",
    "models": [{"name": "oasst-pythia-12b", "endpoint": "tgi3-endpoint"}],
}


class Context:
    """What Lambda passes as ``context`` (the attributes Powertools reads)."""

    function_name = "llm-gateway"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:llm-gateway"
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/llm-gateway"
    log_stream_name = "2026/11/25/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture(scope="module")
def handler(emulator):
    with env(GATEWAY_CONFIG_JSON=json.dumps(CONFIG)):
        for name in ("llm_gateway.handler", "llm_gateway.asgi"):
            sys.modules.pop(name, None)
        module = importlib.import_module("llm_gateway.handler")
        yield module.handler
    for name in ("llm_gateway.handler", "llm_gateway.asgi"):
        sys.modules.pop(name, None)


def invoke(handler, name: str) -> dict:
    event = json.loads((EVENTS / name).read_text())
    response = handler(event, Context())
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    response["body"] = body
    return response


def header(response: dict, name: str) -> str:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    return headers.get(name) or (multi.get(name) or [None])[0]


def test_generate_event(handler):
    response = invoke(handler, "generate.json")
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["details"]["generated_tokens"] <= 20
    assert header(response, "x-request-id")
    assert header(response, "server-timing").startswith("gateway;dur=")


def test_stream_event_is_buffered_whole(handler):
    response = invoke(handler, "generate_stream.json")
    assert response["statusCode"] == 200
    assert header(response, "content-type") == "text/event-stream"
    events = [orjson.loads(e) for e in sse_events(response["body"].encode())]
    assert events and events[-1]["details"]["generated_tokens"] == len(events)


def test_model_compat_info_health_and_http_api_events(handler):
    compat = invoke(handler, "compat_generate_model.json")
    assert compat["statusCode"] == 200 and isinstance(json.loads(compat["body"]), list)
    info = invoke(handler, "info.json")
    assert json.loads(info["body"])["model_id"] == "oasst-pythia-12b"
    assert invoke(handler, "health.json")["statusCode"] == 200
    v2 = invoke(handler, "http_api_generate.json")
    assert v2["statusCode"] == 200 and "generated_text" in json.loads(v2["body"])


def test_errors_in_buffered_mode(handler):
    event = json.loads((EVENTS / "generate.json").read_text())
    event["body"] = json.dumps({"inputs": "x", "parameters": {"top_p": 1.0}})
    response = handler(event, Context())
    assert response["statusCode"] == 422
    assert json.loads(response["body"]) == {
        "error": "Input validation error: `top_p` must be > 0.0 and < 1.0",
        "error_type": "validation",
    }


def test_powertools_decorates_the_handler(handler, capsys):
    capsys.readouterr()
    response = invoke(handler, "generate.json")
    docs = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    request_id = header(response, "x-request-id")
    (log,) = [
        d for d in docs if d.get("message") == "request" and d.get("request_id") == request_id
    ]
    # API Gateway's request id is the correlation id; Lambda's context is on the line
    assert log["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert log["function_name"] == "llm-gateway" and log["request_id"] == request_id
    assert log["api_key_id"] == "k1a2b3c4d5" and "REPLACE-WITH-A-PARTNER-KEY" not in json.dumps(
        docs
    )
    (emf,) = [d for d in docs if "_aws" in d and d.get("request_id") == request_id]
    assert emf["Requests"] == [1.0] and emf["GeneratedTokens"] == [
        json.loads(response["body"])["details"]["generated_tokens"]
    ]
    assert emf["api_key_id"] == "k1a2b3c4d5"
