"""Starts a :class:`RequestRecord` per request and writes it out once the response has ended."""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from llm_gateway.config.settings import Settings
from llm_gateway.observability.record import RequestRecord, api_gateway_context

if TYPE_CHECKING:
    from llm_gateway.observability.logs import RequestLogger
    from llm_gateway.observability.metrics import RequestMetrics

log = logging.getLogger(__name__)


class Observer:
    """Powertools is loaded on first use, after the first response has gone out, so it adds
    nothing to a cold start's time to first token (the Lambda handler uses it at once)."""

    def __init__(self, settings: Settings, *, flush_per_request: bool = True) -> None:
        self.settings = settings
        self.log_prompts = settings.log_prompts
        self.flush_per_request = flush_per_request
        self._metrics: RequestMetrics | None = None
        self._logger: RequestLogger | None = None

    @property
    def metrics(self) -> RequestMetrics:
        if self._metrics is None:
            from llm_gateway.observability.metrics import RequestMetrics

            s = self.settings
            self._metrics = RequestMetrics(
                namespace=s.metrics_namespace,
                service=s.service_name,
                key_dimension=s.metrics_key_dimension,
                flush=self.flush_per_request,
            )
        return self._metrics

    @property
    def logger(self) -> RequestLogger:
        if self._logger is None:
            from llm_gateway.observability.logs import RequestLogger

            s = self.settings
            self._logger = RequestLogger(
                service=s.service_name, log_prompts=s.log_prompts, level=s.log_level
            )
        return self._logger

    def start(self, scope: MutableMapping[str, Any], request_id: str) -> RequestRecord:
        context = api_gateway_context(scope)
        raw_identity = context.get("identity")
        identity: dict[str, Any] = raw_identity if isinstance(raw_identity, dict) else {}
        return RequestRecord(
            request_id=request_id,
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            started=time.perf_counter(),
            correlation_id=context.get("requestId"),
            api_key_id=identity.get("apiKeyId") or None,
            output=[] if self.log_prompts else None,
        )

    def finish(self, record: RequestRecord) -> None:
        record.duration = time.perf_counter() - record.started
        try:
            self.metrics.emit(record)
            self.logger.log(record)
        except Exception:  # measuring must never break an answer
            log.exception("could not write metrics/logs for request %s", record.request_id)
