"""One structured JSON log line per request (Powertools Logger).

Prompts and outputs are included only when ``GATEWAY_LOG_PROMPTS=true``; API keys never are
(only the key's id from API Gateway's request context).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from aws_lambda_powertools import Logger

from llm_gateway.observability.record import RequestRecord


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is now (Lambda's log capture, or a test's)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


_LOGGERS: dict[str, Logger] = {}


def service_logger(service: str, level: str) -> Logger:
    """One Powertools Logger per service: a second one would share the underlying logger but
    not its configured handler."""
    logger = _LOGGERS.get(service)
    if logger is None:
        logger = _LOGGERS[service] = Logger(
            service=service, level=level, logger_handler=StdoutHandler(), utc=True
        )
    else:
        logger.setLevel(level)
    return logger


class RequestLogger:
    def __init__(self, *, service: str, log_prompts: bool, level: str = "INFO") -> None:
        self.log_prompts = log_prompts
        self.logger = service_logger(service, level)

    def log(self, r: RequestRecord) -> None:
        fields: dict[str, Any] = {
            "correlation_id": r.correlation_id or r.request_id,
            "request_id": r.request_id,
            "method": r.method,
            "path": r.path,
            "dialect": r.dialect,
            "model": r.model,
            "stream": r.stream,
            "status": r.status,
            "latency_ms": _ms(r.duration),
            "upstream_ms": _ms(r.upstream_seconds),
            "ttft_ms": _ms(r.ttft_seconds),
            "input_tokens": r.input_tokens,
            "generated_tokens": r.generated_tokens,
            "api_key_id": r.api_key_id,
            "principal": r.principal,  # user:<id> or key:<id>, never a token or key
            "tenant": r.tenant,
            "end_user": r.end_user,  # as the client named it (Anthropic's metadata.user_id)
            "served_by": r.served_by,  # the fallback model that answered, if one did
        }
        if r.counters:
            fields["warming_wait_s"] = r.counters.get("WarmingWaitSeconds")
            fields["warming"] = bool(r.counters.get("WarmingWaits")) or None
        if r.error_type:
            fields["error_type"] = r.error_type
            fields["error_code"] = r.error_code
            fields["error_kind"] = r.error_kind
            fields["error_in_stream"] = r.error_in_stream
        if r.disconnected:
            fields["client_disconnected"] = True
        if self.log_prompts:
            fields["prompt"] = r.prompt
            fields["output"] = "".join(r.output) if r.output is not None else None
        fields = {k: v for k, v in fields.items() if v is not None}
        if r.status is not None and r.status >= 500:
            self.logger.error("request", extra=fields)
        elif r.error_type:
            self.logger.warning("request", extra=fields)
        else:
            self.logger.info("request", extra=fields)
