"""Per-key token budgets through the gateway (SPEC §5.4): over HTTP, real boto3, moto's server.

Each test gets its own table on one embedded DynamoDB-compatible server, and its own gateway
whose ``GATEWAY_API_KEYS`` name two partners.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from llm_gateway.budgets.local import local_client, start_store_server
from llm_gateway.budgets.table import create_table
from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import MODELS, env, gateway_config

KEYS = ("acme:sk-acme", "beta:sk-beta")
ACME = {"x-api-key": "sk-acme"}
BETA = {"authorization": "Bearer sk-beta"}
PROMPT = "Hello"  # 1 token by the documented estimate
_tables = itertools.count()


@pytest.fixture(scope="module")
def store() -> Iterator[str]:
    url, stop = start_store_server()
    yield url
    stop()


@pytest.fixture
def budgeted(
    store: str, start_gateway: Callable[..., str], emulator: Emulator
) -> Iterator[Callable[..., str]]:
    """A gateway with ``budgets`` (limits as given) over a fresh table."""

    def start(settings: Settings | None = None, url: str | None = None, **budgets: Any) -> str:
        table = f"budgets-{next(_tables)}"
        create_table(local_client(store), table)
        config = gateway_config(
            [*MODELS, {"name": "slow", "endpoint": "slow-endpoint", "template": "chatml"}]
        )
        config = config.model_validate(
            {**config.model_dump(), "budgets": {"table": table, **budgets}}
        )
        with env(AWS_ENDPOINT_URL_DYNAMODB=url or store):
            return start_gateway(config, settings or Settings(api_keys=KEYS))

    emulator.set_endpoint(
        "slow-endpoint",
        EndpointSpec.model_validate({"pacing": {"first_token_ms": 1500, "token_ms": 5}}),
    )
    yield start
    emulator.endpoints.pop("slow-endpoint", None)


def generate(
    url: str, headers: dict[str, str], max_new_tokens: int, **extra: Any
) -> httpx.Response:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": max_new_tokens, **extra}}
    return httpx.post(f"{url}/generate", json=body, headers=headers, timeout=30)


def test_concurrent_requests_never_exceed_the_limit(budgeted):
    # Each request reserves 1 prompt token + 9 new tokens = 10; the limit admits 10 of them.
    # The model is slow to start, so every reservation is made before any is reconciled.
    url = budgeted(default={"tokens_per_minute": 100})
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 9}}

    def call(_: int) -> httpx.Response:
        return httpx.post(f"{url}/models/slow/generate", json=body, headers=ACME, timeout=30)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(call, range(40)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 10 and statuses.count(429) == 30, statuses
    for r in answers:
        if r.status_code == 429:
            assert r.json()["error_type"] == "rate_limit" and int(r.headers["retry-after"]) >= 1
        else:
            remaining = int(r.headers["x-ratelimit-remaining-tokens"])
            assert 0 <= remaining <= 90  # never charged past the limit
            assert r.headers["x-ratelimit-limit-tokens"] == "100"


def test_unused_tokens_come_back(budgeted):
    url = budgeted(default={"tokens_per_minute": 1000})
    first = generate(url, ACME, 200, stop=["a"])  # the emulator's answer stops early
    assert first.status_code == 200
    after_first = int(first.headers["x-ratelimit-remaining-tokens"])
    assert after_first == 1000 - 201  # the whole reservation, before the reconcile
    deadline = time.monotonic() + 5
    while True:  # the reconcile runs after the answer, off the response path
        probe = generate(url, ACME, 1)
        remaining = int(probe.headers["x-ratelimit-remaining-tokens"])
        if remaining > after_first - 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert remaining > after_first - 2, "the unused part of the first reservation came back"


def test_keys_are_isolated_and_openai_sees_its_own_429(budgeted):
    url = budgeted(default={"tokens_per_minute": 50})
    assert generate(url, ACME, 40).status_code == 200
    refused = generate(url, ACME, 40)
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Budget")
    assert generate(url, BETA, 40).status_code == 200  # another key, its own window
    chat = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "tgi3", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 40},
        headers=ACME,
        timeout=10,
    )
    # The rendered prompt plus 40 new tokens no longer fits what is left of the window: either
    # retryable after the reset, or (if it could never fit) marked as not worth retrying.
    assert chat.status_code == 429
    assert "retry-after" in chat.headers or chat.headers["x-should-retry"] == "false"
    error = chat.json()["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-acme", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="tgi3", messages=[{"role": "user", "content": "Hi"}], max_tokens=40
        )


def test_a_daily_quota_says_do_not_retry(budgeted):
    url = budgeted(default={"tokens_per_day": 30})
    assert generate(url, ACME, 20).status_code == 200
    chat = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "tgi3", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 40},
        headers=ACME,
        timeout=10,
    )
    assert chat.status_code == 429 and chat.headers["x-should-retry"] == "false"
    error = chat.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")


def test_a_stream_slot_is_released_when_the_client_leaves(budgeted):
    url = budgeted(default={"max_concurrent_streams": 1})
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 50}}
    with httpx.stream(
        "POST", f"{url}/models/slow/generate_stream", json=body, headers=ACME, timeout=30
    ) as r:
        assert r.status_code == 200
        busy = httpx.post(f"{url}/generate_stream", json=body, headers=ACME, timeout=10)
        assert busy.status_code == 429  # the one slot is taken
    # The client hung up: the upstream is closed and the slot released.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        again = httpx.post(f"{url}/generate_stream", json=body, headers=ACME, timeout=10)
        if again.status_code == 200:
            break
        time.sleep(0.2)
    assert again.status_code == 200


@pytest.mark.parametrize(("policy", "status"), [("allow", 200), ("deny", 503)])
def test_an_unreachable_store_follows_the_policy(budgeted, policy, status):
    url = budgeted(
        url="http://127.0.0.1:9", on_store_error=policy, default={"tokens_per_minute": 1000}
    )
    assert generate(url, ACME, 5).status_code == status


def test_keys_without_budgets_behave_as_before(start_gateway):
    url = start_gateway(gateway_config(), Settings(api_keys=KEYS))
    r = generate(url, ACME, 5)
    assert r.status_code == 200 and "x-ratelimit-limit-tokens" not in r.headers


def test_serve_starts_an_embedded_store_for_budgets(emulator, tmp_path):
    from tests.processes import serving

    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - {name: tgi3, endpoint: tgi3-endpoint}\n"
        "budgets:\n"
        "  table: local-budgets\n"
        "  default: {tokens_per_minute: 500}\n"
    )
    child_env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL_DYNAMODB")
    }
    child_env.update(GATEWAY_API_KEYS="acme:sk-acme", POWERTOOLS_METRICS_DISABLED="true")
    with serving("--config", str(config), "--no-ui", env=child_env, log=tmp_path / "log") as url:
        r = generate(url, ACME, 10)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-tokens"] == "500"
        assert int(r.headers["x-ratelimit-remaining-tokens"]) == 500 - 11
    assert "embedded DynamoDB-compatible store" in (tmp_path / "log").read_text()
