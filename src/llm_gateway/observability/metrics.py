"""Per-request CloudWatch metrics as EMF, written by Powertools Metrics.

One EMF document per request with two dimension sets: ``service, model`` (plus
``api_key_id``, or ``principal`` for a signed-in user, when ``GATEWAY_METRICS_KEY_DIMENSION``
is on) and ``service`` alone, the totals that alarms watch; and a second, one-metric document counting ``Requests`` by ``dialect``. Names and units are the README's metrics table. The API key *id*
and the principal (``user:<id>``/``key:<id>``, its kind, the ``tenant:<id>``) are searchable
properties; keys and tokens never appear.

The request's documents are written here, in the shape Powertools gives them (its keys, their
order, values as one-element lists of floats, ``POWERTOOLS_METRICS_DISABLED`` honoured): its
``add_metric`` validates every name, unit and value again on each call, which was about a
quarter of the gateway's own work on the event loop per request, and the names and units here
are constants (docs/benchmarks.md). Powertools still
writes the Lambda handler's cold start and the budget events (:meth:`RequestMetrics.event`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from llm_gateway.observability.record import RequestRecord

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

# Failures that are not the client's doing count towards the ErrorRate the alarms watch.
SERVER_SIDE = frozenset({"upstream", "throttled", "timeout", "stream"})
# A budget refusal is the gateway keeping a limit, not a failure: counted apart, never in the
# ErrorRate (the budgets package also counts BudgetRejections per subject).
REFUSED_BY_BUDGET = frozenset({"tokens_rate_limited", "requests_rate_limited", "quota_exhausted"})

# ErrorKind -> metric name ("errors by kind")
ERROR_METRICS = {
    "client": "ClientErrors",
    "auth": "ClientErrors",
    "upstream": "UpstreamErrors",
    "throttled": "UpstreamErrors",
    "timeout": "TimeoutErrors",
    "stream": "StreamErrors",
}


# Counters a request may add besides the standard set (budgets, scale to zero, fallbacks).
COUNTER_UNITS = {
    "WarmingWaitSeconds": MetricUnit.Seconds,
}


class RequestMetrics:
    def __init__(
        self, *, namespace: str, service: str, key_dimension: bool = False, flush: bool = True
    ) -> None:
        """``flush=False`` when a Lambda handler decorated with ``log_metrics`` counts the cold
        start (Mangum's buffered mode); otherwise the first request's document counts it."""
        self.namespace = namespace
        self.service = service
        self.key_dimension = key_dimension
        self.flush = flush
        self._powertools: Metrics | None = None
        self._cold = flush
        # Powertools' switch (POWERTOOLS_METRICS_DISABLED, POWERTOOLS_DEV), read once
        self.disabled = is_metrics_disabled()

    @property
    def metrics(self) -> Metrics:
        """Powertools' metrics, for the Lambda handler's ``log_metrics`` decorator."""
        if self._powertools is None:
            from aws_lambda_powertools import Metrics

            self._powertools = Metrics(namespace=self.namespace, service=self.service)
        return self._powertools

    def emit(self, r: RequestRecord) -> None:
        if r.dialect == "none":  # health and info probes are not traffic
            return
        if self.disabled:
            return
        dimensions = {"model": r.model or "none"}
        if self.key_dimension and r.api_key_id:
            dimensions["api_key_id"] = r.api_key_id
        if self.key_dimension and r.principal and r.principal.startswith("user:"):
            dimensions["principal"] = r.principal  # a signed-in user: one series each
        dimensions["service"] = self.service
        values: dict[str, tuple[float, str]] = {}
        self._outcome(values, r)
        self._latencies(values, r)
        self._tokens(values, r)
        for name, value in r.counters.items():
            values[name] = (value, COUNTER_UNITS.get(name, MetricUnit.Count).value)
        # two dimension sets: by model (and key or user), and by service alone (the totals)
        _write(self.namespace, [list(dimensions), ["service"]], dimensions, _metadata(r), values)
        _write(
            self.namespace,
            [["model", "dialect", "service"]],
            {"model": r.model or "none", "dialect": r.dialect, "service": self.service},
            {},
            {"Requests": (1, "Count")},
        )

    def _outcome(self, values: dict[str, tuple[float, str]], r: RequestRecord) -> None:
        values["Requests"] = (1, "Count")
        # 100 or 0 per request: its Average over a period is the error rate in percent.
        refused = r.error_code in REFUSED_BY_BUDGET
        failed = r.error_kind in SERVER_SIDE and not refused
        values["ErrorRate"] = (100 if failed else 0, "Percent")
        if self._cold:
            self._cold = False
            values["ColdStart"] = (1, "Count")
        if refused:
            values["RateLimited"] = (1, "Count")
        elif r.error_kind:
            values[ERROR_METRICS.get(r.error_kind, "UpstreamErrors")] = (1, "Count")
        if r.disconnected:
            values["StreamDisconnects"] = (1, "Count")

    @staticmethod
    def _latencies(values: dict[str, tuple[float, str]], r: RequestRecord) -> None:
        if r.duration is not None:
            values["Latency"] = (r.duration * 1000, "Milliseconds")
            if r.upstream_seconds is not None:
                values["UpstreamLatency"] = (r.upstream_seconds * 1000, "Milliseconds")
                overhead = max(r.duration - r.upstream_seconds, 0.0) * 1000
                values["GatewayOverhead"] = (overhead, "Milliseconds")
        if r.stream and r.ttft_seconds is not None:
            values["TimeToFirstToken"] = (r.ttft_seconds * 1000, "Milliseconds")

    @staticmethod
    def _tokens(values: dict[str, tuple[float, str]], r: RequestRecord) -> None:
        if r.input_tokens is not None:
            values["InputTokens"] = (r.input_tokens, "Count")
        if r.generated_tokens is not None:
            values["GeneratedTokens"] = (r.generated_tokens, "Count")
            if r.upstream_seconds:
                rate = r.generated_tokens / r.upstream_seconds
                values["TokensPerSecond"] = (rate, "Count/Second")

    def event(self, name: str, value: float, key_id: str | None = None) -> None:
        """One metric outside any request's record (budget reconciles end after the answer):
        its own EMF document, by service (and key id when that dimension is on)."""
        one = EphemeralMetrics(namespace=self.namespace, service=self.service)
        if self.key_dimension and key_id:
            one.add_dimension(name="api_key_id", value=key_id)
        one.add_metric(name=name, unit=COUNTER_UNITS.get(name, MetricUnit.Count), value=value)
        one.flush_metrics()


def _metadata(r: RequestRecord) -> dict[str, Any]:
    """Searchable properties of the request's document (never a key or a token)."""
    metadata: dict[str, Any] = {"request_id": r.request_id, "dialect": r.dialect}
    if r.api_key_id:
        metadata["api_key_id"] = r.api_key_id
    if r.principal:  # searchable in Logs Insights: who asked, never their token
        metadata["principal_kind"] = r.principal.partition(":")[0]
        metadata["principal"] = r.principal
    if r.tenant:
        metadata["tenant"] = r.tenant
    if r.correlation_id:
        metadata["correlation_id"] = r.correlation_id
    return metadata


def _write(
    namespace: str,
    dimension_sets: list[list[str]],
    dimensions: dict[str, str],
    metadata: dict[str, Any],
    values: dict[str, tuple[float, str]],
) -> None:
    """One EMF document on stdout, as Powertools' ``flush_metrics`` prints it (one line of
    compact JSON; orjson, as the dialects use, is several times faster than the json module)."""
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **dimensions,
        **metadata,
    }
    for name, (value, _) in values.items():
        document[name] = [float(value)]
    print(orjson.dumps(document).decode())
