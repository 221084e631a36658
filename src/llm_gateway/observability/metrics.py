"""Per-request CloudWatch metrics as EMF, written by Powertools Metrics.

One EMF document per request with two dimension sets: ``service, model`` (plus
``api_key_id``, or ``principal`` for a signed-in user, when ``GATEWAY_METRICS_KEY_DIMENSION``
is on) and ``service`` alone, the totals that alarms watch; and a second, one-metric document counting ``Requests`` by ``dialect``. Names and units are the README's metrics table. The API key *id*
and the principal (``user:<id>``/``key:<id>``, its kind, the ``tenant:<id>``) are searchable
properties; keys and tokens never appear.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from llm_gateway.observability.record import RequestRecord

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
        """``flush=False`` when a Lambda handler decorated with ``log_metrics`` flushes (and
        counts the cold start) at the end of each invocation: Mangum's buffered mode."""
        self.namespace = namespace
        self.service = service
        self.key_dimension = key_dimension
        self.flush = flush
        self.metrics = Metrics(namespace=namespace, service=service)
        # A separate, unshared metric set (Powertools' single_metric ignores
        # POWERTOOLS_METRICS_DISABLED; EphemeralMetrics honours it).
        self.by_dialect = EphemeralMetrics(namespace=namespace, service=service)
        self._cold = flush

    def emit(self, r: RequestRecord) -> None:
        if r.dialect == "none":  # health and info probes are not traffic
            return
        m = self.metrics
        m.add_dimension("model", r.model or "none")
        if self.key_dimension and r.api_key_id:
            m.add_dimension("api_key_id", r.api_key_id)
        if self.key_dimension and r.principal and r.principal.startswith("user:"):
            m.add_dimension("principal", r.principal)  # a signed-in user: one series each
        m.add_dimensions(service=self.service)  # the totals, one series for alarms
        self._outcome(m, r)
        self._latencies(m, r)
        self._tokens(m, r)
        for name, value in r.counters.items():
            m.add_metric(name=name, unit=COUNTER_UNITS.get(name, MetricUnit.Count), value=value)
        self._metadata(m, r)
        if self.flush:
            m.flush_metrics()
        self._by_dialect(r)

    def _outcome(self, m: Metrics, r: RequestRecord) -> None:
        m.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        # 100 or 0 per request: its Average over a period is the error rate in percent.
        refused = r.error_code in REFUSED_BY_BUDGET
        failed = r.error_kind in SERVER_SIDE and not refused
        m.add_metric(name="ErrorRate", unit=MetricUnit.Percent, value=100 if failed else 0)
        if self._cold:
            self._cold = False
            m.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
        if refused:
            m.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
        elif r.error_kind:
            m.add_metric(
                name=ERROR_METRICS.get(r.error_kind, "UpstreamErrors"),
                unit=MetricUnit.Count,
                value=1,
            )
        if r.disconnected:
            m.add_metric(name="StreamDisconnects", unit=MetricUnit.Count, value=1)

    @staticmethod
    def _latencies(m: Metrics, r: RequestRecord) -> None:
        if r.duration is not None:
            m.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=r.duration * 1000)
            if r.upstream_seconds is not None:
                m.add_metric(
                    name="UpstreamLatency",
                    unit=MetricUnit.Milliseconds,
                    value=r.upstream_seconds * 1000,
                )
                m.add_metric(
                    name="GatewayOverhead",
                    unit=MetricUnit.Milliseconds,
                    value=max(r.duration - r.upstream_seconds, 0.0) * 1000,
                )
        if r.stream and r.ttft_seconds is not None:
            m.add_metric(
                name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=r.ttft_seconds * 1000
            )

    @staticmethod
    def _tokens(m: Metrics, r: RequestRecord) -> None:
        if r.input_tokens is not None:
            m.add_metric(name="InputTokens", unit=MetricUnit.Count, value=r.input_tokens)
        if r.generated_tokens is not None:
            m.add_metric(name="GeneratedTokens", unit=MetricUnit.Count, value=r.generated_tokens)
            if r.upstream_seconds:
                m.add_metric(
                    name="TokensPerSecond",
                    unit=MetricUnit.CountPerSecond,
                    value=r.generated_tokens / r.upstream_seconds,
                )

    @staticmethod
    def _metadata(m: Metrics, r: RequestRecord) -> None:
        m.add_metadata(key="request_id", value=r.request_id)
        m.add_metadata(key="dialect", value=r.dialect)
        if r.api_key_id:
            m.add_metadata(key="api_key_id", value=r.api_key_id)
        if r.principal:  # searchable in Logs Insights: who asked, never their token
            m.add_metadata(key="principal_kind", value=r.principal.partition(":")[0])
            m.add_metadata(key="principal", value=r.principal)
        if r.tenant:
            m.add_metadata(key="tenant", value=r.tenant)
        if r.correlation_id:
            m.add_metadata(key="correlation_id", value=r.correlation_id)

    def _by_dialect(self, r: RequestRecord) -> None:
        by_dialect = self.by_dialect
        by_dialect.add_dimension(name="model", value=r.model or "none")
        by_dialect.add_dimension(name="dialect", value=r.dialect)
        by_dialect.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        by_dialect.flush_metrics()

    def event(self, name: str, value: float, key_id: str | None = None) -> None:
        """One metric outside any request's record (budget reconciles end after the answer):
        its own EMF document, by service (and key id when that dimension is on)."""
        one = EphemeralMetrics(namespace=self.namespace, service=self.service)
        if self.key_dimension and key_id:
            one.add_dimension(name="api_key_id", value=key_id)
        one.add_metric(name=name, unit=COUNTER_UNITS.get(name, MetricUnit.Count), value=value)
        one.flush_metrics()
