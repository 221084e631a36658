"""Each upstream failure's client-visible outcome in the TGI dialect, driven by the emulator."""

from __future__ import annotations

import time

import boto3
import httpx
import orjson
import pytest

from llm_gateway.config import Settings
from llm_gateway.transport.sagemaker import SageMakerRuntime
from tests.conftest import gateway_config, sse_events

GEN = {"inputs": "Hello", "parameters": {"max_new_tokens": 5}}


def tgi_json(status: int, error: str, error_type: str) -> dict:
    return {
        "OriginalStatusCode": status,
        "message": orjson.dumps({"error": error, "error_type": error_type}).decode(),
    }


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (
            422,
            "Input validation error: `inputs` must have less than 1024 tokens. Given: 2000",
            "validation",
        ),
        (424, "Request failed during generation: CUDA out of memory", "generation"),
        (500, "Incomplete generation", "incomplete_generation"),
    ],
)
def test_model_error_keeps_tgi_status_type_and_message(client, faulty, status, error, error_type):
    original = orjson.dumps({"error": error, "error_type": error_type}).decode()
    faulty(faults=[{"kind": "model_error", "status": status, "message": original}])
    r = client.post("/models/faulty/generate", json=GEN)
    assert r.status_code == status
    assert r.json() == {"error": error, "error_type": error_type}


def test_model_error_with_plain_text_body(client, faulty):
    faulty(
        faults=[
            {
                "kind": "model_error",
                "status": 413,
                "message": "Failed to buffer the request body: length limit exceeded",
            }
        ]
    )
    r = client.post("/models/faulty/generate", json=GEN)
    assert r.status_code == 413
    assert r.json()["error"] == "Failed to buffer the request body: length limit exceeded"


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("throttling", 429, "overloaded"),
        ("model_not_ready", 503, "unavailable"),
        ("service_unavailable", 503, "unavailable"),
        ("internal_failure", 502, "upstream"),
        ("validation_error", 502, "upstream"),
    ],
)
def test_sagemaker_errors_map_to_tgi_shaped_answers(
    client, faulty, emulator, kind, status, error_type
):
    faulty(faults=[{"kind": kind}])
    before = emulator.stats_for("faulty-endpoint").requests
    for path in ("/models/faulty/generate", "/models/faulty/generate_stream"):
        r = client.post(path, json=GEN)
        assert r.status_code == status, r.text
        body = r.json()
        assert body["error_type"] == error_type and "'faulty'" in body["error"]
        if status in (429, 503):
            assert int(r.headers["retry-after"]) >= 1
    attempts = emulator.stats_for("faulty-endpoint").requests - before
    retryable = kind in ("throttling", "model_not_ready", "service_unavailable")
    assert attempts == (6 if retryable else 2)  # 3 attempts each for generate and stream


def test_a_passing_fault_is_retried_before_the_first_byte(client, faulty, emulator):
    faulty(faults=[{"kind": "service_unavailable", "times": 2}])
    before = emulator.stats_for("faulty-endpoint").requests
    r = client.post("/models/faulty/generate_stream", json=GEN)
    assert r.status_code == 200 and len(sse_events(r.content)) == 5
    assert emulator.stats_for("faulty-endpoint").requests - before == 3


def test_tgi_overloaded_behind_model_error_is_retried(client, faulty, emulator):
    """TGI answers "overloaded" before it queues anything, so a retry cannot bill twice: every
    attempt is made, and the last one's answer stands."""
    overloaded = orjson.dumps({"error": "Model is overloaded", "error_type": "overloaded"}).decode()
    faulty(faults=[{"kind": "model_error", "status": 429, "message": overloaded}])
    before = emulator.stats_for("faulty-endpoint").requests
    r = client.post("/models/faulty/generate", json=GEN)
    assert r.status_code == 429 and r.json() == {
        "error": "Model is overloaded",
        "error_type": "overloaded",
    }
    assert emulator.stats_for("faulty-endpoint").requests - before == 3  # every attempt made


def test_tgi_overloaded_once_is_answered_by_the_retry(client, faulty, emulator):
    overloaded = orjson.dumps({"error": "Model is overloaded", "error_type": "overloaded"}).decode()
    faulty(faults=[{"kind": "model_error", "status": 429, "message": overloaded, "times": 1}])
    before = emulator.stats_for("faulty-endpoint").requests
    r = client.post("/models/faulty/generate", json=GEN)
    assert r.status_code == 200 and r.json()["generated_text"]
    assert emulator.stats_for("faulty-endpoint").requests - before == 2


def test_other_model_errors_are_not_retried(client, faulty, emulator):
    """A 424 may have generated tokens: retrying it could bill the generation twice."""
    failed = orjson.dumps({"error": "CUDA out of memory", "error_type": "generation"}).decode()
    faulty(faults=[{"kind": "model_error", "status": 424, "message": failed}])
    before = emulator.stats_for("faulty-endpoint").requests
    assert client.post("/models/faulty/generate", json=GEN).status_code == 424
    assert emulator.stats_for("faulty-endpoint").requests - before == 1


def test_unknown_endpoint_names_the_model(client):
    r = client.post("/models/missing/generate", json=GEN)
    assert r.status_code == 502
    body = r.json()
    assert body["error_type"] == "upstream"
    assert "'missing'" in body["error"] and "'no-such-endpoint'" in body["error"]
    assert "does not exist" in body["error"]


def test_slow_first_byte_is_a_504_timeout_without_retry(start_gateway, faulty, emulator):
    url = start_gateway(gateway_config(), Settings(read_timeout=0.4))
    faulty(faults=[{"kind": "slow_first_byte", "seconds": 1.0}])
    before = emulator.stats_for("faulty-endpoint").requests
    r = httpx.post(f"{url}/models/faulty/generate", json=GEN, timeout=10)
    assert r.status_code == 504 and r.json()["error_type"] == "timeout"
    assert emulator.stats_for("faulty-endpoint").requests - before == 1  # a generation may have run


def test_connection_refused_is_a_502(start_gateway):
    client = boto3.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:9")
    url = start_gateway_with(start_gateway, SageMakerRuntime(Settings(max_attempts=2), client))
    r = httpx.post(f"{url}/generate", json=GEN, timeout=10)
    assert r.status_code == 502
    assert r.json() == {
        "error": "Could not connect to SageMaker Runtime for model 'tgi3'",
        "error_type": "upstream",
    }


def start_gateway_with(start_gateway, upstream):
    from llm_gateway.app import create_app
    from llm_gateway.local import BackgroundServer

    server = BackgroundServer(create_app(gateway_config(), Settings(), upstream)).start()
    return server.url


# -- in-stream failures ------------------------------------------------------------------------


def stream(client, **params):
    r = client.post(
        "/models/faulty/generate_stream",
        json={"inputs": "Hello", "parameters": {"max_new_tokens": 6, **params}},
    )
    return r, [orjson.loads(e) for e in sse_events(r.content)]


@pytest.mark.parametrize(
    ("fault", "error_type", "needle"),
    [
        (
            {"kind": "tgi_error_event", "message": "Request failed during generation: OOM"},
            "generation",
            "Request failed during generation: OOM",
        ),
        ({"kind": "model_stream_error"}, "timeout", "allotted time"),
        (
            {"kind": "model_stream_error", "error_code": "StreamBroken"},
            "upstream",
            "reset or closed",
        ),
        ({"kind": "internal_stream_failure"}, "upstream", "InternalStreamFailure"),
        ({"kind": "truncate"}, "incomplete_generation_stream", "Incomplete generation stream"),
        ({"kind": "cut_frame"}, "incomplete_generation_stream", "Incomplete generation stream"),
        ({"kind": "corrupt_frame"}, "upstream", "corrupt event-stream frame"),
        ({"kind": "malformed_event"}, "upstream", "unreadable stream event"),
        ({"kind": "reset"}, "upstream", "'faulty'"),
    ],
)
def test_mid_stream_failures_end_with_one_error_event(client, faulty, fault, error_type, needle):
    faulty(faults=[{**fault, "at_token": 3}])
    r, events = stream(client)
    assert r.status_code == 200
    assert [e["index"] for e in events[:3]] == [1, 2, 3]
    assert len(events) == 4, events
    assert set(events[-1]) == {"error", "error_type"}
    assert events[-1]["error_type"] == error_type
    assert needle in events[-1]["error"]


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        (
            {
                "kind": "tgi_error_event",
                "error_type": "overloaded",
                "message": "Model is overloaded",
            },
            429,
            "overloaded",
        ),
        ({"kind": "model_stream_error"}, 504, "timeout"),
        ({"kind": "internal_stream_failure"}, 502, "upstream"),
        ({"kind": "truncate"}, 500, "incomplete_generation_stream"),
    ],
)
def test_failure_before_the_first_token_is_a_plain_http_error(
    client, faulty, fault, status, error_type
):
    faulty(faults=[{**fault, "at_token": 0}])
    r, _ = stream(client)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error_type"] == error_type


def test_silence_gets_heartbeats_and_the_head_goes_out_early(eager_gateway, faulty):
    faulty(faults=[{"kind": "keepalive_silence", "seconds": 1.2}])
    start = time.perf_counter()
    with httpx.stream("POST", f"{eager_gateway}/models/faulty/generate_stream", json=GEN) as r:
        chunks = []
        first_at = None
        for chunk in r.iter_raw():
            if first_at is None:
                first_at = time.perf_counter() - start
            chunks.append(chunk)
    body = b"".join(chunks)
    assert r.status_code == 200
    assert first_at < 1.0  # committed after the 0.5 s window, not after the 1.2 s silence
    assert body.startswith(b": waiting for the model\n\n")
    assert body.count(b":\n\n") >= 2  # heartbeats every 0.2 s while the model is silent
    assert len(sse_events(body)) == 5


def test_client_disconnect_closes_the_upstream_stream(client, faulty, emulator):
    faulty(output_tokens=400, pacing={"token_ms": 20})
    stats = emulator.stats_for("faulty-endpoint")
    aborted = stats.streams_aborted
    with client.stream(
        "POST",
        "/models/faulty/generate_stream",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 400}},
    ) as r:
        lines = r.iter_lines()
        seen = sum(1 for _, line in zip(range(6), lines, strict=False) if line.startswith("data:"))
    closed_at = time.perf_counter()
    assert seen >= 2
    while stats.streams_aborted == aborted and time.perf_counter() - closed_at < 1.0:
        time.sleep(0.02)
    assert stats.streams_aborted == aborted + 1, "the emulator never saw the upstream close"
