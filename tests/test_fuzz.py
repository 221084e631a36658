"""Fuzzing both dialects from the app's own OpenAPI document (schemathesis), bounded and seeded:
whatever a client sends, the gateway never answers 5xx from its own doing.

The upstream is the emulator, so generated requests that pass validation really run; 5xx may
only come from the upstream itself (the fixture's models all point at healthy endpoints).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.app import create_app
from llm_gateway.config import Settings
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
    ("POST", "/v1/responses"),
    ("POST", "/models/{name}/v1/responses"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/models/{name}/v1/messages"),
    ("POST", "/models/{name}/v1/messages/count_tokens"),
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
        max_examples=100,
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


# -- integer edges: every integer field of both dialects, at and past its type's limits ----------

EDGES = [
    -(2**64),
    -(2**63) - 1,
    -(2**63),
    -(2**31) - 1,
    -(2**31),
    -1,
    0,
    1,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    10**30,
]
integers = st.one_of(st.sampled_from(EDGES), st.integers())
TGI_INTEGERS = ["best_of", "top_k", "max_new_tokens", "truncate", "seed", "top_n_tokens"]
CHAT_INTEGERS = ["max_tokens", "max_completion_tokens", "n", "seed", "top_k", "top_logprobs"]
COMPLETION_INTEGERS = ["max_tokens", "n", "seed", "top_k", "logprobs", "best_of"]


def integer_bodies(fields: list[str], base: dict) -> st.SearchStrategy[dict]:
    return st.dictionaries(st.sampled_from(fields), integers, min_size=1).map(
        lambda chosen: {**base, **chosen}
    )


BODIES = {
    "/generate": st.dictionaries(st.sampled_from(TGI_INTEGERS), integers, min_size=1).map(
        lambda p: {"inputs": "Hi", "parameters": p}
    ),
    "/generate_stream": st.dictionaries(st.sampled_from(TGI_INTEGERS), integers, min_size=1).map(
        lambda p: {"inputs": "Hi", "parameters": p}
    ),
    "/v1/chat/completions": integer_bodies(
        CHAT_INTEGERS,
        {"model": "tgi3", "messages": [{"role": "user", "content": "Hi"}], "logprobs": True},
    ),
    "/v1/completions": integer_bodies(COMPLETION_INTEGERS, {"model": "tgi3", "prompt": "Hi"}),
    "/v1/responses": integer_bodies(["max_output_tokens"], {"model": "tgi3", "input": "Hi"}),
    "/v1/messages": integer_bodies(
        ["max_tokens", "top_k"],
        {"model": "tgi3", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]},
    ),
}


@pytest.mark.parametrize("path", list(BODIES))
def test_integers_at_any_edge_are_never_a_5xx(start_gateway, path):
    """The class of issue 12 item 5: an integer outside its TGI type is a 4xx naming it."""
    url = start_gateway(gateway_config(MODELS), Settings(stream_commit_seconds=3.0))
    with httpx.Client(base_url=url, timeout=30) as client:

        @given(body=BODIES[path])
        @settings(
            max_examples=150,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(body):
            if path.startswith("/generate"):
                body["parameters"].setdefault("max_new_tokens", 2)  # keeps each run short
            response = client.post(path, json=body)
            assert response.status_code < 500, (body, response.text[:300])
            if response.status_code >= 400:
                error = response.json()["error"]
                if path == "/v1/messages":  # Anthropic's errors name the field in the message
                    assert response.status_code == 400, (body, error)
                    assert error["type"] == "invalid_request_error", (body, error)
                elif path.startswith("/v1/"):
                    assert response.status_code == 400 and error["param"], (body, error)
                else:
                    assert response.status_code == 422, (body, error)

        run()
