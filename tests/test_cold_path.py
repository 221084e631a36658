"""What issue 23's cuts must not change: the collector comes back after start-up, the metric
documents and log lines are the ones Powertools writes, and the dialects' routes still take
their bodies and path parameters."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from llm_gateway.observability.logs import RequestLogger, _message
from llm_gateway.observability.metrics import RequestMetrics
from llm_gateway.observability.record import RequestRecord

SRC = Path(__file__).resolve().parent.parent / "src"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


COLLECTOR = """
import gc, json
gc.disable()  # as the Lambda entry points do before their imports
import llm_gateway.app as composition
paused = not gc.isenabled()
from llm_gateway.config.loader import parse_config
from llm_gateway.config.settings import Settings
try:
    composition.create_app(parse_config(json.loads(CONFIG), "test"), Settings())
except Exception as exc:
    failed = type(exc).__name__
else:
    failed = None
print(json.dumps({"paused": paused, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count() > 0,
                  "failed": failed}))
"""


@pytest.mark.parametrize(
    ("config", "failed"),
    [
        ({"models": [{"name": "m", "endpoint": "m-tgi"}]}, None),
        # a model whose tokenizer cannot load: create_app fails, the collector still comes back
        ({"models": [{"name": "m", "endpoint": "m-tgi", "tokenizer": "/nonexistent"}]}, "x"),
    ],
)
def test_the_collector_is_paused_while_the_app_loads_then_back(config, failed) -> None:
    out = _python(
        f"CONFIG = {json.dumps(json.dumps(config))}\n" + COLLECTOR, AWS_REGION="us-east-1"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["paused"] is True  # importing the composition root did not resume it
    assert result["enabled"] is True and result["frozen"] is True
    assert (result["failed"] is None) == (failed is None)


@pytest.mark.parametrize(("module", "built"), [("handler", "handler"), ("asgi", "app")])
def test_the_lambda_entry_points_turn_the_collector_back_on(module, built) -> None:
    code = (
        f"import gc\nimport llm_gateway.{module} as entry\n"
        f"print(gc.isenabled(), gc.get_freeze_count() > 0, callable(entry.{built}))"
    )
    config = json.dumps({"models": [{"name": "m", "endpoint": "m-tgi"}]})
    out = _python(code, GATEWAY_CONFIG_JSON=config, AWS_REGION="us-east-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["True", "True", "True"]


def test_other_importers_keep_their_collector() -> None:
    """Only the entry points pause it: importing the composition root (the CLI, tests) does
    not, and building an app leaves a collector that was never paused unfrozen."""
    code = (
        "import gc\nimport llm_gateway.app as composition\n"
        "print(gc.isenabled())\ncomposition.resume_collector()\n"
        "print(gc.isenabled(), gc.get_freeze_count())"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["True", "True", "0"]


def _record(**fields: object) -> RequestRecord:
    r = RequestRecord(request_id="rid-1", method="POST", path="/generate", started=0.0)
    r.dialect, r.model, r.status = "tgi", "tgi3", 200
    r.duration, r.upstream_seconds, r.ttft_seconds = 0.0123, 0.0101, 0.004
    r.stream, r.input_tokens, r.generated_tokens = True, 7, 20
    for name, value in fields.items():
        setattr(r, name, value)
    return r


def _powertools_documents(r: RequestRecord, *, key_dimension: bool, cold: bool) -> list[dict]:
    """The documents the gateway wrote through Powertools Metrics before issue 23's rewrite:
    the same calls, in the same order, printed by Powertools' own flush."""
    m = Metrics(namespace="LLMGateway", service="llm-gateway")
    m.add_dimension("model", r.model or "none")
    if key_dimension and r.api_key_id:
        m.add_dimension("api_key_id", r.api_key_id)
    if key_dimension and r.principal and r.principal.startswith("user:"):
        m.add_dimension("principal", r.principal)
    m.add_dimensions(service="llm-gateway")
    m.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    failed = r.error_kind in {"upstream", "throttled", "timeout", "stream"}
    m.add_metric(name="ErrorRate", unit=MetricUnit.Percent, value=100 if failed else 0)
    if cold:
        m.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
    if r.error_kind:
        m.add_metric(name="UpstreamErrors", unit=MetricUnit.Count, value=1)
    if r.disconnected:
        m.add_metric(name="StreamDisconnects", unit=MetricUnit.Count, value=1)
    assert r.duration is not None and r.upstream_seconds is not None
    m.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=r.duration * 1000)
    m.add_metric(
        name="UpstreamLatency", unit=MetricUnit.Milliseconds, value=r.upstream_seconds * 1000
    )
    m.add_metric(
        name="GatewayOverhead",
        unit=MetricUnit.Milliseconds,
        value=max(r.duration - r.upstream_seconds, 0.0) * 1000,
    )
    assert r.ttft_seconds is not None and r.generated_tokens is not None
    m.add_metric(name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=r.ttft_seconds * 1000)
    m.add_metric(name="InputTokens", unit=MetricUnit.Count, value=r.input_tokens or 0)
    m.add_metric(name="GeneratedTokens", unit=MetricUnit.Count, value=r.generated_tokens)
    m.add_metric(
        name="TokensPerSecond",
        unit=MetricUnit.CountPerSecond,
        value=r.generated_tokens / r.upstream_seconds,
    )
    for name, value in r.counters.items():
        unit = MetricUnit.Seconds if name == "WarmingWaitSeconds" else MetricUnit.Count
        m.add_metric(name=name, unit=unit, value=value)
    m.add_metadata(key="request_id", value=r.request_id)
    m.add_metadata(key="dialect", value=r.dialect)
    if r.api_key_id:
        m.add_metadata(key="api_key_id", value=r.api_key_id)
    if r.principal:
        m.add_metadata(key="principal_kind", value=r.principal.partition(":")[0])
        m.add_metadata(key="principal", value=r.principal)
    if r.tenant:
        m.add_metadata(key="tenant", value=r.tenant)
    if r.correlation_id:
        m.add_metadata(key="correlation_id", value=r.correlation_id)
    by_dialect = EphemeralMetrics(namespace="LLMGateway", service="llm-gateway")
    by_dialect.add_dimension(name="model", value=r.model or "none")
    by_dialect.add_dimension(name="dialect", value=r.dialect)
    by_dialect.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        m.flush_metrics()
        by_dialect.flush_metrics()
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _without_timestamps(documents: list[dict]) -> list[dict]:
    for d in documents:
        d["_aws"].pop("Timestamp")
    return documents


@pytest.mark.parametrize(
    ("fields", "key_dimension", "cold"),
    [
        ({}, False, True),
        ({}, False, False),
        (
            {
                "api_key_id": "k1",
                "principal": "user:u-7",
                "tenant": "tenant:acme",
                "correlation_id": "c-9",
                "error_kind": "upstream",
                "disconnected": True,
                "counters": {"WarmingWaits": 1, "WarmingWaitSeconds": 2.5, "Fallbacks": 1},
            },
            True,
            False,
        ),
        ({"api_key_id": "k1", "principal": "key:k1"}, True, False),
    ],
)
def test_metric_documents_are_the_ones_powertools_writes(fields, key_dimension, cold) -> None:
    r = _record(**fields)
    metrics = RequestMetrics(
        namespace="LLMGateway", service="llm-gateway", key_dimension=key_dimension, flush=cold
    )
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        metrics.emit(r)
    ours = [json.loads(line) for line in buffer.getvalue().splitlines()]
    expected = _powertools_documents(r, key_dimension=key_dimension, cold=cold)
    # the same documents, keys in the same order (CloudWatch reads them as JSON either way)
    assert [list(d) for d in ours] == [list(d) for d in expected]
    assert _without_timestamps(ours) == _without_timestamps(expected)


def test_no_documents_and_nothing_kept_when_metrics_are_disabled(monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = RequestMetrics(namespace="LLMGateway", service="llm-gateway")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        for _ in range(200):
            metrics.emit(_record())
    assert buffer.getvalue() == ""
    # Powertools' own metric set, which kept every request's dimensions when its flush was
    # switched off, is not used per request at all
    assert metrics._powertools is None


LOG_LINES = """
import json, logging, os, sys
case = json.loads(os.environ["CASE"])
if case["lambda_root"]:  # Lambda's runtime puts a handler on the root logger before any import
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
from aws_lambda_powertools import Logger
from llm_gateway.observability.logs import RequestLogger, StdoutHandler
from llm_gateway.observability.record import RequestRecord

r = RequestRecord(request_id="rid-1", method="POST", path="/generate", started=0.0)
r.dialect, r.model, r.status, r.duration, r.upstream_seconds = "tgi", "tgi3", 200, 0.0123, 0.0101
r.stream, r.input_tokens, r.generated_tokens = True, 7, 20
for name, value in case["fields"].items():
    setattr(r, name, value)
ours = RequestLogger(service="svc-ours", log_prompts=True)
# the same request logger through Powertools' own formatting and json serializer: a filter
# keeps it off the direct write
reference = RequestLogger(service="svc-ours", log_prompts=True)
reference.logger = Logger(service="svc-reference", logger_handler=StdoutHandler(), utc=True)
logging.getLogger("svc-reference").addFilter(lambda record: True)

def refuse(*args, **kwargs):
    raise SystemExit("the request line went through Powertools' Logger")

for name in ("info", "warning", "error"):  # ours is written directly, never through these
    setattr(ours.logger, name, refuse)
if case["lambda_context"]:
    for logger in (ours.logger, reference.logger):
        logger.append_keys(**case["lambda_keys"])
ours.log(r)
reference.log(r)
"""

LAMBDA_KEYS = {
    "cold_start": False,
    "function_name": "llm-gateway",
    "function_memory_size": 1024,
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:llm-gateway",
    "function_request_id": "req-1",
    "correlation_id": "apigw-req-1",
}


@pytest.mark.parametrize(("lambda_context", "lambda_root"), [(False, False), (True, True)])
@pytest.mark.parametrize("trace", [None, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"])
@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": "Grüß dich, 日本", "output": ["naïve"], "end_user": "ü-1", "api_key_id": "k1"},
        {"status": 503, "error_type": "overloaded", "error_kind": "upstream", "error_code": "x"},
        {"status": 404, "error_type": "not_found", "error_kind": "client", "error_code": "y"},
    ],
)
def test_log_lines_are_the_ones_powertools_writes(lambda_context, lambda_root, trace, fields):
    """The request line written directly reads as Powertools writes it: the same keys in the
    same order and values, compact JSON, non-ASCII text as it is, no empty fields. (In a
    process of its own: pytest's log capture on the root logger would take the standard way.)"""
    case = {
        "fields": fields,
        "lambda_context": lambda_context,
        "lambda_root": lambda_root,
        "lambda_keys": LAMBDA_KEYS,
    }
    env = {"CASE": json.dumps(case)} | ({"_X_AMZN_TRACE_ID": trace} if trace else {})
    out = _python(LOG_LINES, **env)
    assert out.returncode == 0, out.stderr
    mine, theirs = out.stdout.strip().splitlines()[-2:]
    assert ": " not in mine and "\\u" not in mine
    lines = [json.loads(mine), json.loads(theirs)]
    assert list(lines[0]) == list(lines[1])
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\+0000", line.pop("timestamp"))
        assert re.fullmatch(r"log:\d+", line.pop("location"))
        assert line.pop("service") in ("svc-ours", "svc-reference")
    assert lines[0] == lines[1]
    assert ("xray_trace_id" in lines[0]) == bool(trace)
    assert ("function_arn" in lines[0]) == lambda_context
    assert "request" not in out.stderr  # Lambda's root handler got none of it


def test_a_logger_set_up_otherwise_still_logs_through_powertools(capsys) -> None:
    """A filter, or a handler further up that the record would reach, and the line goes the
    standard way (the filter sees it; the other handler gets it too)."""
    seen: list[str] = []
    ours = RequestLogger(service="svc-cold-path-filtered", log_prompts=False)
    std = logging.getLogger(ours.logger.name)

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    std.addFilter(keep)
    try:
        ours.log(_record())
    finally:
        std.removeFilter(keep)
    assert seen == ["request"]
    assert json.loads(capsys.readouterr().out)["request_id"] == "rid-1"
    root_lines: list[str] = []
    root = logging.getLogger()
    handler = logging.Handler()
    handler.emit = lambda record: root_lines.append(record.getMessage())  # type: ignore[method-assign]
    root.addHandler(handler)
    try:
        ours.log(_record())
    finally:
        root.removeHandler(handler)
    assert root_lines == ["request"]
    assert json.loads(capsys.readouterr().out)["request_id"] == "rid-1"


@pytest.mark.parametrize(
    "text",
    [
        "request",
        '{"a": 1}',
        "123",
        " [1, 2] ",
        "NaN",
        "-Infinity",
        "true",
        "tru",
        "",
        "-",
        '"quoted"',
        "{bad",
        "null",
        "nope",
        "1e400",
        "Ünïcode",
    ],
)
def test_messages_read_as_powertools_reads_them(text) -> None:
    """Powertools tries json.loads on every message and keeps the text when that fails."""
    try:
        expected = json.loads(text)
    except ValueError:
        expected = text
    assert repr(_message(text)) == repr(expected)
