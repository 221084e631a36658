"""Every error of ``/v1/messages`` in Anthropic's shape, with Anthropic's status, as the
anthropic SDK raises it: 400 ``invalid_request_error``, 401 ``authentication_error``, 403
``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``, 429
``rate_limit_error`` (budgets, with ``retry-after`` and ``anthropic-ratelimit-tokens-*``),
``api_error`` 500/502/504 and 529 ``overloaded_error`` (in-flight cap, throttling, warming).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from anthropic.types import ErrorResponse

from llm_gateway.budgets.local import local_client, start_store_server
from llm_gateway.budgets.table import create_table
from llm_gateway.config import Settings
from llm_gateway.core.errors import model_not_allowed, timeout_error
from llm_gateway.dialects.anthropic.errors import error_body
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.budgeting import within_one_minute
from tests.conftest import MODELS, env, gateway_config

KEY = "sk-acme"
HI = [{"role": "user", "content": "Hi"}]
SMALL = {
    "name": "small",
    "endpoint": "anth-small",  # an endpoint whose TGI launcher limits are small too
    "template": "chatml",
    "limits": {"max_input_tokens": 50, "max_total_tokens": 100},
}
_tables = itertools.count()


def ask(model: str = "tgi3", **fields: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 8, "messages": HI, **fields}


def post(url: str, body: Any, path: str = "/v1/messages", **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"content-type": "application/json", "x-api-key": KEY, **headers}
    return httpx.post(f"{url}{path}", content=content, headers=headers, timeout=30)


def error_of(r: httpx.Response, status: int, kind: str) -> str:
    """The answer's error message, once its status and shape are Anthropic's."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"type", "error"} and set(body["error"]) == {"type", "message"}
    assert body["type"] == "error" and body["error"]["type"] == kind
    if kind != "request_too_large":  # the SDK's union lists every type but Cloudflare's 413
        ErrorResponse.model_validate(body)
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def gw(emulator: Emulator, start_gateway: Callable[..., str]) -> Iterator[str]:
    limits = {"max_input_tokens": 50, "max_total_tokens": 100}
    emulator.set_endpoint("anth-small", EndpointSpec.model_validate({"limits": limits}))
    settings = Settings(api_keys=(f"acme:{KEY}",), max_body_bytes=4096, stream_commit_seconds=3.0)
    yield start_gateway(gateway_config([*MODELS, SMALL]), settings)
    emulator.endpoints.pop("anth-small", None)


@pytest.fixture
def sdk(gw: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw, api_key=KEY, max_retries=0)


# -- 400 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "tgi3", "messages": HI}, "max_tokens: Field required"),
        (ask(max_tokens="8"), "max_tokens: Input should be a valid integer"),
        (ask(temperature=1.5), "temperature: Input should be between 0 and 1"),
        (ask(top_k=0), "top_k: Input should be greater than or equal to 1"),
        (ask(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (ask(frequency=1), "frequency: Extra inputs are not permitted"),
        (ask(container="c1"), "container: not supported by this gateway's models"),
        (ask(messages=[]), "messages: at least one message is required"),
        (
            ask(messages=[{"role": "tool", "content": "x"}]),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            ask(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            "messages.0.content.0: text content blocks must be non-empty",
        ),
        (
            ask(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}]),
            "messages.0.content.0.type: content blocks of type 'image' are not supported by "
            "this gateway's models (text, tool_use and tool_result are)",
        ),
        (
            ask(messages=[*HI, {"role": "assistant", "content": "Sure"}]),
            "messages: a final assistant message (prefill) is not supported by this gateway's "
            "models; end with a user message",
        ),
        (
            ask(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
            "tools.0.type: server tools ('web_search_20250305') run on Anthropic's servers and "
            "are not available here; declare client tools with input_schema",
        ),
        (
            ask(tools=[{"name": "t", "input_schema": {"type": "object"}}]),
            "tools: model 'tgi3' renders a prompt template, which has no tool format; tools "
            "need a model with `backend: openai`",
        ),
        (ask(stop_sequences=["a", "b", "c", "d", "e"]), "stop_sequences: this model accepts"),
        (b'{"model": ', "Failed to parse the request body as JSON"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(gw: str, body: Any, message: str) -> None:
    assert error_of(post(gw, body), 400, "invalid_request_error").startswith(message)


def test_tgi_validation_422_is_400(gw: str, sdk: anthropic.Anthropic) -> None:
    long = [{"role": "user", "content": "word " * 300}]  # over the model's max_input_tokens
    message = error_of(post(gw, ask("small", messages=long)), 400, "invalid_request_error")
    assert "`inputs` tokens + `max_new_tokens` must be <= 100" in message
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(model="small", max_tokens=8, messages=long)  # type: ignore[arg-type]


# -- 401, 403, 404, 413 -----------------------------------------------------------------------


def test_a_missing_or_wrong_key_is_401_and_both_headers_work(gw: str) -> None:
    for headers in ({"x-api-key": "wrong"}, {"x-api-key": ""}):
        error_of(post(gw, ask(), **headers), 401, "authentication_error")
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw, api_key="wrong", max_retries=0).messages.create(**ask())
    assert post(gw, ask()).status_code == 200  # x-api-key
    bearer = post(gw, ask(), **{"x-api-key": "", "authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200  # Authorization: Bearer (ANTHROPIC_AUTH_TOKEN)


def test_a_model_the_token_does_not_allow_is_403_permission_error() -> None:
    status, body = error_body(model_not_allowed("tgi3"))
    assert status == 403
    assert ErrorResponse.model_validate_json(body).error.type == "permission_error"


def test_an_unknown_model_or_route_is_404(gw: str, sdk: anthropic.Anthropic) -> None:
    error_of(post(gw, ask("nope")), 404, "not_found_error")
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(**ask("nope"))
    error_of(post(gw, ask(), path="/v1/messages/batches"), 404, "not_found_error")


def test_a_body_over_the_limit_is_413(gw: str, sdk: anthropic.Anthropic) -> None:
    big = ask(messages=[{"role": "user", "content": "x" * 5000}])
    error_of(post(gw, big), 413, "request_too_large")
    with pytest.raises(anthropic.RequestTooLargeError):
        sdk.messages.create(**big)


# -- 429: budgets ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store() -> Iterator[str]:
    url, stop = start_store_server()
    yield url
    stop()


def test_a_budget_refusal_is_429_with_anthropic_rate_limit_headers(
    store: str, start_gateway: Callable[..., str]
) -> None:
    table = f"anthropic-budgets-{next(_tables)}"
    create_table(local_client(store), table)
    config = gateway_config(MODELS)
    config = config.model_validate(
        {
            **config.model_dump(),
            "budgets": {"table": table, "default": {"tokens_per_minute": 100}},
        }
    )
    with env(AWS_ENDPOINT_URL_DYNAMODB=store):
        url = start_gateway(config, Settings(api_keys=(f"acme:{KEY}",)))
    within_one_minute()  # the per-minute window must not turn over between the requests
    assert post(url, ask(max_tokens=5)).status_code == 200
    # A reservation is the prompt (count_tokens' count) plus max_tokens: exactly the limit,
    # which the first answer's tokens leave no room for until the window resets.
    prompt = post(url, {"model": "tgi3", "messages": HI}, "/v1/messages/count_tokens")
    most = 100 - prompt.json()["input_tokens"]
    r = post(url, ask(max_tokens=most))
    message = error_of(r, 429, "rate_limit_error")
    assert "Budget reached for key acme on tokens per minute" in message
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["anthropic-ratelimit-tokens-limit"] == "100"
    assert int(r.headers["anthropic-ratelimit-tokens-remaining"]) < 100
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r.headers["anthropic-ratelimit-tokens-reset"]
    )
    streamed = post(url, ask(max_tokens=most, stream=True))
    error_of(streamed, 429, "rate_limit_error")
    with pytest.raises(anthropic.RateLimitError):
        anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0).messages.create(
            **ask(max_tokens=most)
        )


# -- 5xx -------------------------------------------------------------------------------------


def test_upstream_failures_are_api_errors(gw: str, faulty: Any) -> None:
    faulty(faults=[{"kind": "truncate", "at_token": 2}])
    error_of(post(gw, ask("faulty")), 500, "api_error")  # the stream ended without its end
    faulty(faults=[{"kind": "model_error", "status": 500, "message": "CUDA out of memory"}])
    error_of(post(gw, ask("faulty")), 502, "api_error")  # the container failed
    error_of(post(gw, ask("missing")), 502, "api_error")  # no such SageMaker endpoint
    faulty(faults=[{"kind": "model_stream_error", "at_token": 0}])
    error_of(post(gw, ask("faulty", stream=True)), 504, "api_error")  # ModelInvocationTimeExceeded


def test_a_timeout_is_api_error_504() -> None:
    status, body = error_body(timeout_error("Model 'm' did not answer in time"))
    assert status == 504 and orjson.loads(body)["error"]["type"] == "api_error"


# -- 529 -------------------------------------------------------------------------------------


def test_throttling_is_529_overloaded(gw: str, faulty: Any, sdk: anthropic.Anthropic) -> None:
    faulty(faults=[{"kind": "throttling"}])
    r = post(gw, ask("faulty"))
    error_of(r, 529, "overloaded_error")
    assert r.headers["retry-after"] == "1"
    with pytest.raises(anthropic.OverloadedError):
        sdk.messages.create(**ask("faulty"))


def test_the_in_flight_cap_is_529_overloaded(
    emulator: Emulator, start_gateway: Callable[..., str]
) -> None:
    emulator.set_endpoint(
        "anth-busy", EndpointSpec.model_validate({"pacing": {"first_token_ms": 1000}})
    )
    busy = {"name": "busy", "endpoint": "anth-busy", "template": "chatml"}
    url = start_gateway(
        gateway_config([busy], "busy"),
        Settings(api_keys=(f"acme:{KEY}",), max_concurrent_requests=1),
    )
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: post(url, ask("busy", max_tokens=2)), range(3)))
    finally:
        emulator.endpoints.pop("anth-busy", None)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 529, 529]
    for r in answers:
        if r.status_code == 529:
            assert error_of(r, 529, "overloaded_error") == "Model is overloaded"
            assert r.headers["retry-after"]


def test_a_model_warming_from_zero_is_529_overloaded(
    emulator: Emulator, start_gateway: Callable[..., str]
) -> None:
    emulator.set_endpoint(
        "anth-sleepy",
        EndpointSpec.model_validate(
            {
                "inference_component": "anth-ic",
                "scale_to_zero": {"wake_seconds": 60, "idle_seconds": 600},
            }
        ),
    )
    sleepy = {
        "name": "sleepy",
        "endpoint": "anth-sleepy",
        "inference_component": "anth-ic",
        "template": "chatml",
        "wake": {"wait_seconds": 60, "retry_seconds": 0.25},
    }
    url = start_gateway(
        gateway_config([sleepy], "sleepy"),
        Settings(api_keys=(f"acme:{KEY}",), request_timeout=1.0),
    )
    try:
        r = post(url, ask("sleepy"))
    finally:
        emulator.endpoints.pop("anth-sleepy", None)
    assert "scaling up from zero" in error_of(r, 529, "overloaded_error")
    assert r.headers["retry-after"] == "30" and r.headers["x-should-retry"] == "true"
