"""TGI's error vocabulary: statuses per ``error_type`` and its error bodies.

An error TGI itself reported keeps its type and message (SPEC §5.1): they are the contract.

>>> container_error(422, '{"error":"Input validation error: bad","error_type":"validation"}')
GatewayError(422, 'validation', 'Input validation error: bad')
>>> container_error(424, "<html>") is None
True
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.errors import ErrorCode, ErrorKind, GatewayError, incomplete_stream

__all__ = ["TGI_STATUS", "container_error", "error_event", "incomplete_stream", "tgi_error"]

# TGI's InferError statuses (router/src/server.rs `impl From<InferError>`), by error_type.
TGI_STATUS: dict[str, int] = {
    "validation": 422,
    "template_error": 422,
    "tool_error": 422,
    "missing_template_variable": 422,
    "generation": 424,
    "overloaded": 429,
    "incomplete_generation": 500,
    "incomplete_generation_stream": 500,
    "stream_serialization_error": 500,
}

# What a TGI status means when its body is not TGI's JSON (axum's plain-text rejections).
# Only these short one-line texts are passed on: anything else (a Python traceback, an HTML
# page) may carry internals, so the transport reports it generically and logs the detail.
_PLAIN_STATUS_TYPES = {
    400: "validation",
    413: "validation",
    415: "validation",
    422: "validation",
    429: "overloaded",
}
_PLAIN_MAX_CHARS = 300

# TGI's error texts start with their InferError's Display; ≥ 2.4.1 chat streams send only the
# text and a hard-coded 422, so the type is read back from the text.
_ERROR_PREFIXES = (
    ("Input validation error", "validation"),
    ("Template error", "template_error"),
    ("Tool error", "tool_error"),
    ("Model is overloaded", "overloaded"),
    ("Incomplete generation stream", "incomplete_generation_stream"),
    ("Incomplete generation", "incomplete_generation"),
)


# TGI's two prompt-length refusals (validation.rs: MaxTotalTokens, InputLength).
_CONTEXT_LENGTH = ("`inputs` tokens + `max_new_tokens` must be", "`inputs` must have less than")


def tgi_error(message: str, error_type: str, *, status: int | None = None) -> GatewayError:
    """An error TGI itself reported: its type and message are kept as they are; its prompt-length
    refusals carry the neutral ``context_length`` code."""
    if status is None:
        status = TGI_STATUS.get(error_type, 502)
    if error_type in ("validation", "template_error", "tool_error"):
        kind = ErrorKind.CLIENT
    elif error_type == "overloaded":
        kind = ErrorKind.THROTTLED
    else:
        kind = ErrorKind.UPSTREAM
    context = error_type == "validation" and any(t in message for t in _CONTEXT_LENGTH)
    return GatewayError(
        message,
        status=status,
        error_type=error_type,
        kind=kind,
        retry_after=1 if error_type == "overloaded" else None,
        code=ErrorCode.CONTEXT_LENGTH if context else None,
    )


def error_event(obj: dict[str, Any]) -> GatewayError:
    """A TGI error event: ``{"error": "…", "error_type": "…"}`` or, from TGI ≥ 2.4.1 chat
    streams, ``{"error": {"message": "…", "http_status_code": 422}}``."""
    error = obj["error"]
    if isinstance(error, dict):
        message = str(error.get("message", error))
        error_type = next((t for p, t in _ERROR_PREFIXES if message.startswith(p)), "generation")
        return tgi_error(message, error_type)
    return tgi_error(str(error), str(obj.get("error_type") or "generation"))


def container_error(status: int | None, body: str) -> GatewayError | None:
    """TGI's JSON error body, or axum's plain-text rejection with its status; ``None`` for
    anything else (HTML from a proxy, a traceback), which the transport reports generically."""
    if body.startswith("{"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            error_type = str(data.get("error_type") or "generation")
            return tgi_error(
                data["error"],
                error_type,
                status=status if isinstance(status, int) and status >= 400 else None,
            )
    plain = 0 < len(body) <= _PLAIN_MAX_CHARS and "\n" not in body.strip()
    if isinstance(status, int) and status in _PLAIN_STATUS_TYPES and plain:
        return tgi_error(body.strip(), _PLAIN_STATUS_TYPES[status], status=status)
    return None
