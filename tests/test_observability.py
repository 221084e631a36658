"""Every request measured: EMF metrics and one JSON log line on stdout, keys never logged."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from llm_gateway.config import Settings
from tests.conftest import gateway_config, sse_events
from tests.observed import metrics_of

GEN = {"inputs": "Hello there", "parameters": {"max_new_tokens": 5, "details": True}}


def test_buffered_request_metrics_and_log(client, out):
    r = client.post("/generate", json=GEN)
    rid = r.headers["x-request-id"]
    doc = out.emf(rid)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "LLMGateway"
    assert [sorted(d) for d in directive["Dimensions"]] == [["model", "service"], ["service"]]
    assert doc["service"] == "llm-gateway" and doc["model"] == "tgi3" and doc["dialect"] == "tgi"
    m = metrics_of(doc)
    assert m["Requests"] == (1.0, "Count")
    assert m["GeneratedTokens"] == (r.json()["details"]["generated_tokens"], "Count")
    assert m["Latency"][1] == m["UpstreamLatency"][1] == m["GatewayOverhead"][1] == "Milliseconds"
    assert m["Latency"][0] >= m["UpstreamLatency"][0] > 0
    assert m["GatewayOverhead"][0] == pytest.approx(
        m["Latency"][0] - m["UpstreamLatency"][0], abs=0.01
    )
    assert m["TokensPerSecond"][1] == "Count/Second"
    assert not any(name.endswith("Errors") for name in m) and "TimeToFirstToken" not in m
    assert m["ErrorRate"] == (0.0, "Percent")
    log = out.log(rid)
    assert log["level"] == "INFO" and log["status"] == 200 and log["model"] == "tgi3"
    assert (
        log["dialect"] == "tgi" and log["generated_tokens"] == 5 and log["service"] == "llm-gateway"
    )
    assert "prompt" not in log and "Hello there" not in json.dumps(log)  # no prompts by default


def test_stream_metrics_count_the_real_tokens(client, out):
    r = client.post("/generate_stream", json=GEN)
    last = orjson.loads(sse_events(r.content)[-1])
    m = metrics_of(out.emf(r.headers["x-request-id"]))
    assert m["GeneratedTokens"][0] == last["details"]["generated_tokens"] == 5
    assert m["InputTokens"][0] == last["details"]["input_length"]
    assert (
        m["TimeToFirstToken"][1] == "Milliseconds"
        and 0 < m["TimeToFirstToken"][0] <= m["Latency"][0]
    )
    assert out.log(r.headers["x-request-id"])["stream"] is True


def test_openai_usage_is_what_metrics_count(client, out):
    r = client.post(
        "/v1/chat/completions",
        json={"model": "tgi3", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]},
    )
    usage = r.json()["usage"]
    doc = out.emf(r.headers["x-request-id"])
    m = metrics_of(doc)
    assert (m["InputTokens"][0], m["GeneratedTokens"][0]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert doc["dialect"] == "openai"


@pytest.mark.parametrize(
    ("fault", "path", "metric"),
    [
        (None, "/generate", "ClientErrors"),  # validation error: no fault needed
        ({"kind": "internal_failure"}, "/models/faulty/generate", "UpstreamErrors"),
        ({"kind": "throttling"}, "/models/faulty/generate", "UpstreamErrors"),
        (
            {"kind": "model_stream_error", "at_token": 2},
            "/models/faulty/generate_stream",
            "TimeoutErrors",
        ),
        (
            {"kind": "internal_stream_failure", "at_token": 2},
            "/models/faulty/generate_stream",
            "StreamErrors",
        ),
    ],
)
def test_errors_are_counted_by_kind(client, out, faulty, fault, path, metric):
    if fault:
        faulty(faults=[fault])
    body = GEN if fault else {"inputs": "x", "parameters": {"top_k": 0}}
    r = client.post(path, json=body)
    doc = out.emf(r.headers["x-request-id"])
    m = metrics_of(doc)
    assert m[metric] == (1.0, "Count")
    assert sum(1 for name in m if name.endswith("Errors")) == 1
    # the error rate counts what is not the client's fault
    assert m["ErrorRate"] == (0.0 if metric == "ClientErrors" else 100.0, "Percent")
    assert doc["model"] == ("tgi3" if path == "/generate" else "faulty")
    log = out.log(r.headers["x-request-id"])
    assert log["level"] in ("WARNING", "ERROR") and log["error_type"]


def test_client_disconnect_is_counted(client, out, faulty):
    faulty(output_tokens=300, pacing={"token_ms": 10})
    with client.stream(
        "POST",
        "/models/faulty/generate_stream",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 300}},
    ) as r:
        rid = r.headers["x-request-id"]
        for line in r.iter_lines():
            if line.startswith("data:"):
                break
    doc = out.emf(rid)
    assert metrics_of(doc)["StreamDisconnects"] == (1.0, "Count")
    assert out.log(rid)["client_disconnected"] is True


def test_key_never_logged_key_id_is(start_gateway, out):
    url = start_gateway(
        gateway_config(), Settings(api_keys=("sk-very-secret-key",), metrics_key_dimension=True)
    )
    context = {
        "requestId": "apigw-req-1",
        "identity": {"apiKeyId": "key-id-42", "apiKey": "sk-very-secret-key"},
    }
    r = httpx.post(
        f"{url}/generate",
        json=GEN,
        headers={
            "authorization": "Bearer sk-very-secret-key",
            "x-amzn-request-context": json.dumps(context),
        },
    )
    assert r.status_code == 200
    doc = out.emf(r.headers["x-request-id"])
    assert doc["api_key_id"] == "key-id-42" and doc["correlation_id"] == "apigw-req-1"
    assert sorted(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == [
        "api_key_id",
        "model",
        "service",
    ]
    log = out.log(r.headers["x-request-id"])
    assert log["api_key_id"] == "key-id-42" and log["correlation_id"] == "apigw-req-1"
    bad = httpx.post(f"{url}/generate", json=GEN, headers={"x-api-key": "sk-wrong-key-attempt"})
    assert bad.status_code == 401
    out.log(bad.headers["x-request-id"])
    captured = out.text()
    assert "sk-very-secret-key" not in captured and "sk-wrong-key-attempt" not in captured


def test_prompts_and_outputs_only_when_enabled(start_gateway, out):
    url = start_gateway(gateway_config(), Settings(log_prompts=True))
    r = httpx.post(f"{url}/generate_stream", json=GEN)
    log = out.log(r.headers["x-request-id"])
    last = orjson.loads(sse_events(r.content)[-1])
    assert log["prompt"] == "Hello there" and log["output"] == last["generated_text"]
    chat = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "model": "tgi3",
            "max_tokens": 3,
            "messages": [{"role": "user", "content": "Tell me"}],
        },
    )
    log = out.log(chat.headers["x-request-id"])
    assert (
        "Tell me" in log["prompt"]
        and log["output"] == chat.json()["choices"][0]["message"]["content"]
    )


def test_health_probes_are_not_traffic(client, out):
    r = client.get("/health")
    log = out.log(r.headers["x-request-id"])
    assert log["dialect"] == "none"
    with pytest.raises(AssertionError):
        out.emf(r.headers["x-request-id"], timeout=0.3)


def test_upstream_calls_run_in_a_tracing_span(client, monkeypatch):
    """With tracing on (Lambda, Tracing: Active), each SageMaker call gets a subsegment
    annotated with the model. Locally the X-Ray daemon is absent, so the Powertools tracer is
    replaced by a recorder with the same ``provider.in_subsegment`` interface."""
    import contextlib

    from llm_gateway.observability import tracing

    spans = []

    class Subsegment:
        def __init__(self, name):
            self.name, self.annotations = name, {}

        def put_annotation(self, key, value):
            self.annotations[key] = value

    class Provider:
        @contextlib.contextmanager
        def in_subsegment(self, name):
            span = Subsegment(name)
            spans.append(span)
            yield span

    class Recorder:
        provider = Provider()

    monkeypatch.setattr(tracing, "_tracer", Recorder())
    monkeypatch.setattr(tracing, "_loaded", True)
    client.post("/generate", json=GEN)
    client.post("/generate_stream", json=GEN)
    assert [(s.name, s.annotations) for s in spans] == [
        ("## sagemaker.invoke_endpoint", {"model": "tgi3"}),
        ("## sagemaker.invoke_endpoint_with_response_stream", {"model": "tgi3"}),
    ]


def test_tracer_is_a_no_op_outside_lambda(monkeypatch):
    from llm_gateway.observability import tracing

    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.setattr(tracing, "_loaded", False)
    monkeypatch.setattr(tracing, "_tracer", None)
    assert tracing.tracer() is None
    with tracing.upstream_span("x", "m"):
        pass


def test_a_budget_refusal_is_counted_apart_from_errors(budgeted, out):
    """A refusal by a budget is the gateway keeping a limit: RateLimited, never ErrorRate."""
    from tests.budgeting import ACME

    gw = budgeted(default={"tokens_per_minute": 10})
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 500}}
    r = httpx.post(f"{gw.url}/generate", json=body, headers=ACME, timeout=10)
    assert r.status_code == 429 and r.json()["error_type"] == "rate_limit"
    metrics = metrics_of(out.emf(r.headers["x-request-id"]))
    assert metrics["RateLimited"] == (1.0, "Count")
    assert metrics["ErrorRate"] == (0.0, "Percent")
    assert "UpstreamErrors" not in metrics
    assert out.log(r.headers["x-request-id"])["error_code"] == "tokens_rate_limited"
