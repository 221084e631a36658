"""Per-key token budgets through the gateway (SPEC §5.4): over HTTP, real boto3, moto's server.

Each test gets its own table in the suite's store server and its own gateway whose
``GATEWAY_API_KEYS`` name two partners. Refusals are checked at the emulator too: a refused
request makes no model call. What the table holds is read back, not inferred from headers.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from llm_gateway.config import Settings
from llm_gateway.emulator import EndpointSpec
from tests.budgeting import ACME, BETA, KEYS, MODELS, PROMPT
from tests.conftest import gateway_config


def generate(
    url: str, headers: dict[str, str], max_new_tokens: int, model: str = "b-tgi", **extra: object
) -> httpx.Response:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": max_new_tokens, **extra}}
    return httpx.post(f"{url}/models/{model}/generate", json=body, headers=headers, timeout=30)


def test_concurrent_requests_never_exceed_the_limit(budgeted):
    # Each request reserves 1 prompt token + 9 new tokens = 10; the limit admits 10 of them.
    # The model is slow to start, so every reservation is made before any is reconciled. (A
    # daily limit: a minute's window could turn over while the 40 requests arrive.)
    gw = budgeted(default={"tokens_per_day": 100})
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 9}}

    def call(_: int) -> httpx.Response:
        return httpx.post(f"{gw.url}/models/b-slow/generate", json=body, headers=ACME, timeout=30)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(call, range(40)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 10 and statuses.count(429) == 30, gw.items("key#acme")
    assert gw.calls("budget-slow") == 10  # the 30 refused never reached the model
    for r in answers:
        if r.status_code == 429:
            assert r.json()["error_type"] == "rate_limit" and r.headers["x-should-retry"] == "false"
        else:
            remaining = int(r.headers["x-ratelimit-remaining-tokens"])
            assert 0 <= remaining <= 90  # never charged past the limit
            assert r.headers["x-ratelimit-limit-tokens"] == "100"
    totals = gw.settled("key#acme", 10)
    assert totals["requests"] == 10  # only the admitted requests were ever charged
    assert gw.used("key#acme", "day") == totals["input_tokens"] + totals["generated_tokens"]


def test_unused_tokens_come_back(budgeted):
    gw = budgeted(default={"tokens_per_minute": 1000})
    first = generate(gw.url, ACME, 200, details=True)  # the model stops after 12 words + EOS
    assert first.status_code == 200
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 1000 - 201  # all reserved
    generated = first.json()["details"]["generated_tokens"]
    assert generated == 13
    totals = gw.settled("key#acme", 1)
    assert (totals["input_tokens"], totals["generated_tokens"]) == (1, 13)
    # Exactly the unused part came back: 201 reserved, 14 used, 187 returned.
    assert gw.used("key#acme", "tpm") == 14
    probe = generate(gw.url, ACME, 1)
    assert int(probe.headers["x-ratelimit-remaining-tokens"]) == 1000 - 14 - 2


def test_keys_are_isolated_and_openai_sees_its_own_429(budgeted):
    gw = budgeted(default={"tokens_per_minute": 50})
    assert generate(gw.url, ACME, 40).status_code == 200
    calls = gw.calls("budget-tgi")
    refused = generate(gw.url, ACME, 40)
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Budget reached for key acme")
    assert gw.calls("budget-tgi") == calls  # refused: no model call
    assert generate(gw.url, BETA, 40).status_code == 200  # another key, its own window
    calls = gw.calls("budget-tgi")
    chat = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "b-tgi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 40},
        headers=ACME,
        timeout=10,
    )
    # The rendered prompt plus 40 new tokens no longer fits what is left of the window: either
    # retryable after the reset, or (if it could never fit) marked as not worth retrying.
    assert chat.status_code == 429
    assert "retry-after" in chat.headers or chat.headers["x-should-retry"] == "false"
    error = chat.json()["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="sk-acme", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="b-tgi", messages=[{"role": "user", "content": "Hi"}], max_tokens=40
        )
    assert gw.calls("budget-tgi") == calls
    assert gw.settled("key#acme", 1)["requests"] == 1  # refusals are never charged


def test_a_daily_quota_says_do_not_retry(budgeted):
    gw = budgeted(default={"tokens_per_day": 30})
    assert generate(gw.url, ACME, 20).status_code == 200
    calls = gw.calls("budget-tgi")
    chat = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "b-tgi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 40},
        headers=ACME,
        timeout=10,
    )
    assert chat.status_code == 429 and chat.headers["x-should-retry"] == "false"
    error = chat.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert gw.calls("budget-tgi") == calls
    assert gw.settled("key#acme", 1)["used"] == 14  # 1 prompt + 13 generated, nothing else


def test_a_stream_slot_is_released_when_the_client_leaves(budgeted):
    gw = budgeted(default={"max_concurrent_streams": 1})
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 50}}
    with httpx.stream(
        "POST", f"{gw.url}/models/b-slow/generate_stream", json=body, headers=ACME, timeout=30
    ) as r:
        assert r.status_code == 200
        calls = gw.calls("budget-tgi")
        busy = httpx.post(f"{gw.url}/generate_stream", json=body, headers=ACME, timeout=10)
        assert busy.status_code == 429  # the one slot is taken
        assert gw.calls("budget-tgi") == calls
    # The client hung up: the upstream is closed and the slot released in the table.
    gw.settled("key#acme", 1)
    assert gw.items("key#acme")["streams"]["used"] == {"N": "0"}
    again = httpx.post(f"{gw.url}/generate_stream", json=body, headers=ACME, timeout=10)
    assert again.status_code == 200


@pytest.mark.parametrize(("policy", "status"), [("allow", 200), ("deny", 503)])
def test_an_unreachable_store_follows_the_policy(budgeted, policy, status):
    gw = budgeted(
        url="http://127.0.0.1:9", on_store_error=policy, default={"tokens_per_minute": 1000}
    )
    calls = gw.calls("budget-tgi")
    assert generate(gw.url, ACME, 5).status_code == status
    assert gw.calls("budget-tgi") == calls + (1 if policy == "allow" else 0)


def test_keys_without_budgets_behave_as_before(start_gateway):
    url = start_gateway(gateway_config(), Settings(api_keys=KEYS))
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}}
    r = httpx.post(f"{url}/generate", json=body, headers=ACME, timeout=30)
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
        body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 10}}
        r = httpx.post(f"{url}/generate", json=body, headers=ACME, timeout=30)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-tokens"] == "500"
        assert int(r.headers["x-ratelimit-remaining-tokens"]) == 500 - 11
    assert "embedded DynamoDB-compatible store" in (tmp_path / "log").read_text()


def test_failed_wake_attempts_are_never_charged(budgeted, emulator):
    """A model scaling up from zero refuses calls until it wakes: those attempts generated
    nothing, so a request that found it asleep is charged once, for what it finally generated,
    and a request whose wait ran out is charged nothing."""

    for name, wake in (("budget-sleepy-short", 0.6), ("budget-sleepy-long", 60)):
        emulator.set_endpoint(
            name,
            EndpointSpec.model_validate(
                {
                    "inference_component": "ic-1",
                    "output_tokens": 12,
                    "scale_to_zero": {"wake_seconds": wake, "idle_seconds": 600},
                }
            ),
        )
    sleepy = [
        {
            "name": f"b-{size}",
            "endpoint": f"budget-sleepy-{size}",
            "inference_component": "ic-1",
            "template": "chatml",
            "wake": {"wait_seconds": 30, "retry_seconds": 0.2},
        }
        for size in ("short", "long")
    ]
    gw = budgeted(
        settings=Settings(api_keys=KEYS, request_timeout=2.0),
        config_extra={"models": [*MODELS, *sleepy]},
        default={"tokens_per_day": 10_000},
    )
    woke = generate(gw.url, ACME, 50, model="b-short", details=True)
    assert woke.status_code == 200
    assert gw.calls("budget-sleepy-short") >= 2  # the failed call that woke it, then more
    generated = woke.json()["details"]["generated_tokens"]
    totals = gw.settled("key#acme", 1)
    assert (totals["input_tokens"], totals["generated_tokens"]) == (1, generated)
    assert gw.used("key#acme", "day") == 1 + generated  # once, whatever the attempts

    asleep = generate(gw.url, ACME, 50, model="b-long")
    assert asleep.status_code == 503 and asleep.json()["error_type"] == "unavailable"
    assert gw.calls("budget-sleepy-long") >= 2
    deadline = time.monotonic() + 10
    while gw.used("key#acme", "day") != 1 + generated and time.monotonic() < deadline:
        time.sleep(0.05)  # the refund of the warming request
    assert gw.used("key#acme", "day") == 1 + generated  # nothing charged for the wait
