"""The proxy-resource events in ``events/`` (as API Gateway sends them to ``/{proxy+}``),
through the buffered-mode handler against the SageMaker emulator."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from tests.conftest import env
from tests.deploy.conftest import EVENTS

CONFIG = {
    "default_model": "oasst-pythia-12b",
    "models": [
        {"name": "oasst-pythia-12b", "endpoint": "tgi3-endpoint", "template": "openassistant"}
    ],
}
MODULES = ("llm_gateway.handler", "llm_gateway.asgi")


class Context:
    function_name = "llm-gateway"
    aws_request_id = "req-deploy-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:llm-gateway"
    memory_limit_in_mb = 1024

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture(scope="module")
def handler(emulator):
    with env(GATEWAY_CONFIG_JSON=json.dumps(CONFIG)):
        for name in MODULES:
            sys.modules.pop(name, None)
        yield importlib.import_module("llm_gateway.handler").handler
    for name in MODULES:
        sys.modules.pop(name, None)


def invoke(handler, name: str) -> tuple[int, dict]:
    response = handler(json.loads((EVENTS / name).read_text()), Context())
    return response["statusCode"], json.loads(response["body"])


def test_chat_completions_event(handler):
    status, body = invoke(handler, "chat_completions.json")
    assert status == 200, body
    assert body["object"] == "chat.completion"
    assert body["model"] == "oasst-pythia-12b"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] <= 20


def test_models_event(handler):
    status, body = invoke(handler, "models.json")
    assert status == 200
    assert [m["id"] for m in body["data"]] == ["oasst-pythia-12b"]


def test_per_model_generate_through_the_proxy_resource(handler):
    status, body = invoke(handler, "proxy_model_generate.json")
    assert status == 200, body
    assert body["details"]["generated_tokens"] <= 20


@pytest.mark.parametrize(
    "name", ["chat_completions.json", "models.json", "proxy_model_generate.json"]
)
def test_proxy_events_are_shaped_like_the_proxy_resource(name):
    event = json.loads((EVENTS / name).read_text())
    assert event["resource"] == event["requestContext"]["resourcePath"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": event["path"].lstrip("/")}
    assert event["requestContext"]["identity"]["apiKeyId"]  # set by the usage plan check
