"""Deadlines: buffered answers inside API Gateway's limit, streams end cleanly before Lambda's,
and retries never start what cannot finish."""

from __future__ import annotations

import json
import time

import httpx
import orjson
import pytest

from llm_gateway.config import Settings
from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.errors import GatewayError
from llm_gateway.http.deadline import LAMBDA_MARGIN, compute_deadline
from llm_gateway.transport.sagemaker import SageMakerRuntime, make_client
from tests.conftest import gateway_config, sse_events

GEN = {"inputs": "Hello", "parameters": {"max_new_tokens": 5}}


@pytest.fixture(scope="module")
def limited(start_gateway):
    """A gateway in buffered mode's shoes: every request must finish within 0.6 s."""
    return start_gateway(gateway_config(), Settings(request_timeout=0.6, heartbeat_seconds=0.2))


def test_buffered_request_fails_cleanly_at_the_limit(limited, faulty):
    faulty(faults=[{"kind": "slow_first_byte", "seconds": 2.0}])
    started = time.perf_counter()
    r = httpx.post(f"{limited}/models/faulty/generate", json=GEN, timeout=10)
    elapsed = time.perf_counter() - started
    assert r.status_code == 504 and r.json() == {
        "error": "The request did not finish within the gateway's time limit",
        "error_type": "timeout",
    }
    assert elapsed < 1.5
    faulty(faults=[{"kind": "slow_first_byte", "seconds": 2.0}])
    r = httpx.post(
        f"{limited}/v1/chat/completions",
        timeout=10,
        json={"model": "faulty", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def test_stream_ends_with_a_timeout_event_before_the_limit(limited, faulty, emulator):
    faulty(output_tokens=200, pacing={"token_ms": 30})
    aborted = emulator.stats_for("faulty-endpoint").streams_aborted
    started = time.perf_counter()
    r = httpx.post(
        f"{limited}/models/faulty/generate_stream",
        timeout=10,
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 200}},
    )
    elapsed = time.perf_counter() - started
    events = [orjson.loads(e) for e in sse_events(r.content)]
    assert r.status_code == 200 and 0.5 < elapsed < 1.5
    assert "token" in events[0] and events[-1] == {
        "error": "The request did not finish within the gateway's time limit",
        "error_type": "timeout",
    }
    deadline = time.monotonic() + 2
    while (
        emulator.stats_for("faulty-endpoint").streams_aborted == aborted
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert emulator.stats_for("faulty-endpoint").streams_aborted == aborted + 1


def test_lambda_deadline_from_the_web_adapter_header(gateway, faulty):
    faulty(output_tokens=200, pacing={"token_ms": 30})
    context = {"function_name": "llm-gateway", "deadline_ms": int(time.time() * 1000) + 1600}
    started = time.perf_counter()
    r = httpx.post(
        f"{gateway}/models/faulty/generate_stream",
        timeout=10,
        headers={"x-amzn-lambda-context": json.dumps(context)},
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 200}},
    )
    elapsed = time.perf_counter() - started
    assert orjson.loads(sse_events(r.content)[-1])["error_type"] == "timeout"
    assert elapsed < 1.6 - LAMBDA_MARGIN + 0.5  # ended a margin before Lambda would kill it


def test_deadline_sources():
    class LambdaContext:
        def get_remaining_time_in_millis(self):
            return 5000

    now = time.monotonic()
    assert compute_deadline({"aws.context": LambdaContext()}, 29.0, now=now) == pytest.approx(
        now + 5 - LAMBDA_MARGIN
    )
    assert compute_deadline({"aws.context": LambdaContext()}, 2.0, now=now) == now + 2.0
    assert compute_deadline({"headers": []}, None, now=now) is None
    legacy = {
        "headers": [
            (
                b"x-amzn-lambda-context",
                json.dumps({"deadline": int(time.time() * 1000) + 10_000}).encode(),
            )
        ]
    }
    assert 8.5 < compute_deadline(legacy, None, now=now) - now < 9.1
    broken = {"headers": [(b"x-amzn-lambda-context", b"not json")]}
    assert compute_deadline(broken, None, now=now) is None


def test_retries_never_start_past_the_deadline(emulator, faulty):
    faulty(faults=[{"kind": "service_unavailable"}])
    settings = Settings(max_attempts=3)
    runtime = SageMakerRuntime(settings, make_client(settings))  # botocore's own retries off
    target = ModelConfig(name="faulty", endpoint="faulty-endpoint")
    stats = emulator.stats_for("faulty-endpoint")
    for deadline, attempts in ((None, 3), (time.monotonic(), 1)):
        before = stats.requests
        with pytest.raises(GatewayError) as info:
            runtime.invoke(target, orjson.dumps(GEN), deadline)
        assert info.value.status == 503
        assert stats.requests - before == attempts


def test_the_lambda_handler_answers_inside_api_gateways_29_seconds():
    import importlib
    import sys

    from tests.conftest import env

    with env(GATEWAY_CONFIG_JSON=json.dumps({"models": [{"name": "m", "endpoint": "e"}]})):
        sys.modules.pop("llm_gateway.handler", None)
        handler = importlib.import_module("llm_gateway.handler")
        assert handler.settings.request_timeout == 28.0
        sys.modules.pop("llm_gateway.handler", None)
