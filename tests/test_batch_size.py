"""Prompt arrays are bounded by the model's ``max_client_batch_size`` (issue 12 item 4), as
TGI bounds them: refused before any upstream call, and a huge array never stalls the server."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from llm_gateway.config import Settings
from llm_gateway.core.parameters import Limits
from tests.conftest import MODELS, gateway_config

BATCH = "Number of prompts exceeds the maximum allowed batch size of"


def test_the_limit_is_tgis_default_and_configurable():
    assert Limits().max_client_batch_size == 4
    config = gateway_config([{**MODELS[0], "limits": {"max_client_batch_size": 2}}, *MODELS[1:]])
    assert config.get("tgi3").limits.max_client_batch_size == 2
    with pytest.raises(Exception, match="max_client_batch_size"):
        gateway_config([{**MODELS[0], "limits": {"max_client_batch_size": 0}}])


def test_info_advertises_the_models_limit(start_gateway):
    config = gateway_config([{**MODELS[0], "limits": {"max_client_batch_size": 2}}, MODELS[1]])
    url = start_gateway(config, Settings())
    assert httpx.get(f"{url}/info").json()["max_client_batch_size"] == 2
    assert httpx.get(f"{url}/models/tgi082/info").json()["max_client_batch_size"] == 4


@pytest.mark.parametrize("path", ["/v1/completions", "/models/tgi3/v1/completions"])
def test_more_prompts_than_the_limit_are_refused_before_any_call(client, emulator, path):
    before = emulator.stats_for("tgi3-endpoint").requests
    r = client.post(path, json={"model": "tgi3", "prompt": ["hi"] * 5, "max_tokens": 1})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error == {
        "message": f"{BATCH} 4",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "batch_size_exceeded",
    }
    assert emulator.stats_for("tgi3-endpoint").requests == before
    r = client.post(path, json={"model": "tgi3", "prompt": ["hi"] * 4, "max_tokens": 1})
    assert r.status_code == 200 and len(r.json()["choices"]) == 4
    assert emulator.stats_for("tgi3-endpoint").requests == before + 4


def test_a_huge_prompt_array_does_not_stall_health(start_gateway, emulator):
    url = start_gateway(gateway_config(), Settings())
    body = b'{"model": "tgi3", "prompt": [' + b",".join([b'"hi"'] * 200_000) + b"]}"
    before = emulator.stats_for("tgi3-endpoint").requests
    answers: list[httpx.Response] = []

    def big() -> None:
        answers.append(
            httpx.post(
                f"{url}/v1/completions",
                content=body,
                headers={"content-type": "application/json"},
                timeout=30,
            )
        )

    worst = 0.0
    with httpx.Client(base_url=url, timeout=10) as probe:
        probe.get("/health")
        sender = threading.Thread(target=big)
        sender.start()
        while sender.is_alive():
            start = time.perf_counter()
            assert probe.get("/health").status_code == 200
            worst = max(worst, time.perf_counter() - start)
            time.sleep(0.005)
        sender.join()
    assert answers[0].status_code == 400 and BATCH in answers[0].json()["error"]["message"]
    assert worst < 0.5, f"/health waited {worst:.2f} s behind the big request"
    assert emulator.stats_for("tgi3-endpoint").requests == before
