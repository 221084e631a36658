"""Fuzzing both dialects from the app's own OpenAPI document (schemathesis), bounded and seeded:
whatever a client sends, the gateway never answers 5xx from its own doing.

The upstream is the emulator, so generated requests that pass validation really run; 5xx may
only come from the upstream itself (the fixture's models all point at healthy endpoints).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from llm_gateway.config import Settings
from llm_gateway.app import create_app
from tests.conftest import gateway_config

OPERATIONS = [
    ("POST", "/generate"),
    ("POST", "/generate_stream"),
    ("POST", "/"),
    ("POST", "/models/{name}/generate"),
    ("POST", "/models/{name}/generate_stream"),
    ("POST", "/models/{name}"),
    ("GET", "/models/{name}/info"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("GET", "/v1/models/{model_id}"),
    ("POST", "/models/{name}/v1/chat/completions"),
    ("POST", "/models/{name}/v1/completions"),
]
MODELS = [
    {"name": "tgi3", "endpoint": "tgi3-endpoint", "template": "chatml"},
    {"name": "mistral", "endpoint": "tgi082-endpoint", "template": "mistral"},
]


@pytest.fixture(scope="module")
def api_schema(emulator):
    app = create_app(gateway_config(MODELS), Settings(stream_commit_seconds=3.0))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_route_is_fuzzed(api_schema):
    documented = {
        (method.upper(), path)
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
    }
    body_routes = {(m, p) for m, p in documented if m == "POST"}
    assert body_routes <= set(OPERATIONS)


CASES = [(m, p, schemathesis.GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    # negative cases break the body's schema: only routes with a body have one
    (m, p, schemathesis.GenerationMode.NEGATIVE)
    for m, p in OPERATIONS
    if m == "POST"
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_input_makes_the_gateway_fail(api_schema, method, path, mode):
    """Positive cases follow the schema (many reach the emulator); negative ones break it."""
    operation = api_schema[path][method]
    named = (
        {"name": "tgi3", "model_id": "tgi3"}
        if mode is schemathesis.GenerationMode.POSITIVE
        else None
    )

    @given(case=operation.as_strategy(mode, path_parameters=named))
    @settings(
        max_examples=50,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call(timeout=30)
        assert response.status_code < 500, (case.path, case.body, response.text[:300])
        if response.status_code >= 400:
            assert "error" in response.json()

    run()
