"""One structured JSON log line per request (Powertools Logger).

Prompts and outputs are included only when ``GATEWAY_LOG_PROMPTS=true``; API keys never are
(only the key's id from API Gateway's request context).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, TextIO

import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.filters import SuppressFilter
from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter

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


def _dumps(line: dict[str, Any]) -> str:
    return orjson.dumps(line, default=str).decode()


# What a JSON text can start with (json.loads also reads NaN and Infinity).
_JSON_START = frozenset('{["-0123456789tfnNI')


def _message(text: str) -> Any:
    """Powertools logs a message that is a JSON text as the value it encodes and any other as
    it is, by trying ``json.loads`` on every message: the same answer, without raising and
    catching an exception for each plain message such as ``"request"``."""
    start = text.lstrip()[:1]
    if not start or start not in _JSON_START:
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)  # NaN, Infinity
        except ValueError:
            return text


def _json() -> dict[str, Any]:
    """orjson for the log lines, as for the metrics: the same compact JSON (non-ASCII text as it
    is, anything else as ``str``) in a fraction of the time. ``POWERTOOLS_DEV`` keeps
    Powertools' own indented output."""
    if os.environ.get("POWERTOOLS_DEV", "").lower() in ("1", "true", "on", "yes", "y", "t"):
        return {}
    return {"json_serializer": _dumps, "json_deserializer": _message}


def service_logger(service: str, level: str) -> Logger:
    """One Powertools Logger per service: a second one would share the underlying logger but
    not its configured handler."""
    logger = _LOGGERS.get(service)
    if logger is None:
        logger = _LOGGERS[service] = Logger(
            service=service, level=level, logger_handler=StdoutHandler(), utc=True, **_json()
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
            level = logging.ERROR
        elif r.error_type:
            level = logging.WARNING
        else:
            level = logging.INFO
        if not _write_line(self.logger, level, fields):
            log = {logging.ERROR: self.logger.error, logging.WARNING: self.logger.warning}
            log.get(level, self.logger.info)("request", extra=fields)


# The templates Powertools fills from a log record, by key (its defaults).
_TEMPLATES = {
    "level": "%(levelname)s",
    "location": "%(funcName)s:%(lineno)d",
    "timestamp": "%(asctime)s",
}


class _Stamp:
    """What Powertools' ``formatTime`` reads of a record."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float) -> None:
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0


def _write_line(logger: Logger, level: int, fields: dict[str, Any]) -> bool:
    """Write the request line as Powertools' formatter would, without a log record: about two
    thirds of what logging it cost, on every request. Only for the logger as
    :func:`service_logger` sets it up (one stdout handler, no filters, nothing buffered or
    sampled, the default templates, no other handler that would take the record); anything
    else returns False and goes through Powertools. ``tests/test_cold_path.py`` compares the
    lines with Powertools' own, in and out of a Lambda context."""
    std: logging.Logger = logger._logger
    if std.disabled or not std.isEnabledFor(level):
        return True  # nothing to write, as logging would decide
    handler = std.handlers[0] if len(std.handlers) == 1 else None
    formatter = handler.formatter if handler is not None else None
    if (
        not isinstance(handler, StdoutHandler)
        or type(formatter) is not LambdaPowertoolsFormatter
        or std.filters
        or handler.filters
        or getattr(logger, "_buffer_config", None)
        or formatter.thread_safe_get_current_keys()
        or _propagates(std, level)
    ):
        return False
    line: dict[str, Any] = {}
    for key, value in formatter.log_format.items():
        if value and key in RESERVED_LOG_ATTRS:
            if _TEMPLATES.get(key) != value:
                return False
            if key == "level":
                line[key] = logging.getLevelName(level)
            elif key == "location":  # where RequestLogger.log asked for the line
                caller = sys._getframe(1)
                line[key] = f"{caller.f_code.co_name}:{caller.f_lineno}"
            else:
                line[key] = formatter.formatTime(_Stamp(time.time()))  # type: ignore[arg-type]
        else:
            line[key] = value
    line["taskName"] = _task_name()
    line.update(fields)
    line["message"] = "request"
    line["xray_trace_id"] = formatter._get_latest_trace_id()
    text = formatter.serialize({k: v for k, v in line.items() if v is not None})
    handler.acquire()
    try:
        handler.stream.write(text + handler.terminator)
        handler.flush()
    finally:
        handler.release()
    return True


def _task_name() -> str | None:
    """The asyncio task's name, which Python 3.12's log records carry and Powertools writes."""
    if sys.version_info < (3, 12) or not getattr(logging, "logAsyncioTasks", False):
        return None
    asyncio = sys.modules.get("asyncio")
    try:
        return str(asyncio.current_task().get_name()) if asyncio else None
    except Exception:
        return None


def _propagates(std: logging.Logger, level: int) -> bool:
    """Whether a record would also reach another logger's handler: one that takes its level
    and lacks the filter Powertools puts on the handlers already there when it sets a logger
    up (Lambda's own, on the root logger), which drops this logger's records."""
    parent = std.parent if std.propagate else None
    while parent is not None:
        for handler in parent.handlers:
            suppressed = any(
                isinstance(f, SuppressFilter) and f.logger in std.name for f in handler.filters
            )
            if level >= handler.level and not suppressed:
                return True
        parent = parent.parent if parent.propagate else None
    return False
