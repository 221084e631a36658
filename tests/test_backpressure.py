"""GATEWAY_MAX_CONCURRENT_REQUESTS (issue 12 item 6): past the cap a request is refused at once in
its dialect's shape, never queued; /health answers whatever the load; slots come back."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import MODELS, gateway_config

BODY = {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}


@pytest.fixture
def slow(emulator: Emulator) -> Iterator[str]:
    # Long enough for the test's three requests after both heads are out: one call through
    # the gateway took 0.3 s on a loaded 2-core machine.
    emulator.set_endpoint(
        "held-endpoint", EndpointSpec.model_validate({"pacing": {"first_token_ms": 3000}})
    )
    yield "held-endpoint"
    emulator.endpoints.pop("held-endpoint", None)


def test_past_the_cap_requests_are_refused_at_once_in_each_dialect(start_gateway, slow):
    model = {"name": "held", "endpoint": slow, "template": "chatml"}
    url = start_gateway(
        gateway_config([*MODELS, model]),
        Settings(max_concurrent_requests=2, stream_commit_seconds=0.2),
    )
    started = threading.Barrier(3)
    answers: list[int] = []

    def occupy() -> None:
        with httpx.stream("POST", f"{url}/models/held/generate_stream", json=BODY, timeout=30) as r:
            started.wait()
            r.read()
            answers.append(r.status_code)

    holders = [threading.Thread(target=occupy) for _ in range(2)]
    for t in holders:
        t.start()
    started.wait()  # both generations are in flight (their heads are out)
    tgi = httpx.post(f"{url}/generate", json=BODY, timeout=5)
    assert tgi.status_code == 429 and tgi.headers["retry-after"] == "1"
    assert tgi.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    chat = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "tgi3", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=5,
    )
    assert chat.status_code == 503 and "retry-after" in chat.headers
    error = chat.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "overloaded")
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    for t in holders:
        t.join()
    assert answers == [200, 200]
    # The slots came back when the streams ended.
    assert httpx.post(f"{url}/generate", json=BODY, timeout=10).status_code == 200
