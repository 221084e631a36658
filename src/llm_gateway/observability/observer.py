"""Starts a :class:`RequestRecord` per request and writes it out once the response has ended."""

from __future__ import annotations

import logging
import time
from typing import Any

from llm_gateway.config.settings import Settings
from llm_gateway.observability.logs import RequestLogger
from llm_gateway.observability.metrics import RequestMetrics
from llm_gateway.observability.record import RequestRecord, api_gateway_context

log = logging.getLogger(__name__)


class Observer:
    def __init__(self, settings: Settings, *, flush_per_request: bool = True) -> None:
        self.log_prompts = settings.log_prompts
        self.metrics = RequestMetrics(
            namespace=settings.metrics_namespace,
            service=settings.service_name,
            key_dimension=settings.metrics_key_dimension,
            flush=flush_per_request,
        )
        self.logger = RequestLogger(
            service=settings.service_name,
            log_prompts=settings.log_prompts,
            level=settings.log_level,
        )

    def start(self, scope: dict[str, Any], request_id: str) -> RequestRecord:
        context = api_gateway_context(scope)
        identity = context.get("identity") if isinstance(context.get("identity"), dict) else {}
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
