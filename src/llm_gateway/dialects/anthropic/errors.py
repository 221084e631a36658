"""Every :class:`GatewayError` in Anthropic's error shape: ONE table, by neutral code.

``{"type": "error", "error": {"type": <error type>, "message": …}}``; the status is the one
Anthropic gives that error type, so the SDKs raise the class they raise against Anthropic
(``RateLimitError``, ``OverloadedError``, …) and retry what they retry there. A stream's
``event: error`` carries the same body.

>>> from llm_gateway.core.errors import validation_error
>>> classify(validation_error("`top_k` must be strictly positive"))
(400, 'invalid_request_error')
>>> from llm_gateway.core.errors import overloaded_error
>>> classify(overloaded_error("SageMaker is throttling requests"))
(529, 'overloaded_error')
"""

from __future__ import annotations

import time

import orjson

from llm_gateway.core.errors import ErrorCode, GatewayError

OVERLOADED = 529  # Anthropic's status for "overloaded": every SDK retries it
_INVALID, _API = "invalid_request_error", "api_error"

# The one table of the Anthropic dialect: neutral code -> (status, Anthropic error type). A
# status of None keeps the error's own where Anthropic has one (a container's 4xx), else 500.
TABLE: dict[ErrorCode, tuple[int | None, str]] = {
    ErrorCode.INVALID_REQUEST: (400, _INVALID),
    ErrorCode.INVALID_PARAMETER: (400, _INVALID),
    ErrorCode.CONTEXT_LENGTH: (400, _INVALID),
    ErrorCode.TEMPLATE: (400, _INVALID),
    ErrorCode.BATCH_TOO_LARGE: (400, _INVALID),
    ErrorCode.MODEL_NOT_FOUND: (404, "not_found_error"),
    ErrorCode.NOT_FOUND: (404, "not_found_error"),
    ErrorCode.METHOD_NOT_ALLOWED: (405, _INVALID),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, _INVALID),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, "request_too_large"),
    ErrorCode.UNAUTHENTICATED: (401, "authentication_error"),
    ErrorCode.INVALID_TOKEN: (401, "authentication_error"),
    ErrorCode.FORBIDDEN: (403, "permission_error"),
    # The gateway's capacity, SageMaker throttling, a model not ready or scaling up from zero.
    ErrorCode.OVERLOADED: (OVERLOADED, "overloaded_error"),
    ErrorCode.THROTTLED: (OVERLOADED, "overloaded_error"),
    ErrorCode.WARMING: (OVERLOADED, "overloaded_error"),
    ErrorCode.UNAVAILABLE: (OVERLOADED, "overloaded_error"),
    # Budgets: a key's, a user's or a tenant's limit.
    ErrorCode.TOKENS_RATE_LIMITED: (429, "rate_limit_error"),
    ErrorCode.REQUESTS_RATE_LIMITED: (429, "rate_limit_error"),
    ErrorCode.QUOTA_EXHAUSTED: (429, "rate_limit_error"),
    ErrorCode.BUDGET_STORE_UNAVAILABLE: (500, _API),
    ErrorCode.ISSUER_UNAVAILABLE: (500, _API),
    ErrorCode.TIMEOUT: (504, _API),
    ErrorCode.UPSTREAM: (None, _API),
    ErrorCode.INTERNAL: (500, _API),
}


def classify(error: GatewayError) -> tuple[int, str]:
    """The status and Anthropic ``error.type`` for ``error``."""
    status, kind = TABLE[error.code]
    if status is not None:
        return status, kind
    if error.status == 424 or error.status == 502:
        return 502, _API  # the model failed: a bad gateway
    if 400 <= error.status < 500:
        return error.status, _INVALID  # a container's own 4xx is the request's fault
    return 500, _API


def error_body(error: GatewayError) -> tuple[int, bytes]:
    """The status and body of ``error`` (also a stream's ``error`` event)."""
    status, kind = classify(error)
    body = {"type": "error", "error": {"type": kind, "message": error.message}}
    return status, orjson.dumps(body)


def parse_duration_ms(text: str) -> int | None:
    """Go's ``Duration.String()`` (the budgets' ``x-ratelimit-reset-*``) in milliseconds.

    >>> [parse_duration_ms(t) for t in ("0s", "41ms", "1.5s", "6m0s", "1h2m3.004s", "x")]
    [0, 41, 1500, 360000, 3723004, None]
    """
    if text.endswith("ms") and text[:-2].isdigit():
        return int(text[:-2])
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
            continue
        scale = {"h": 3_600_000, "m": 60_000, "s": 1000}.get(char)
        if scale is None or not number:
            return None
        total += float(number) * scale
        number = ""
    return None if number else round(total)


def rate_limit_headers(error: GatewayError, now: float | None = None) -> dict[str, str]:
    """``anthropic-ratelimit-tokens-{limit,remaining,reset}`` from a budget refusal's OpenAI
    ``x-ratelimit-*-tokens`` headers; ``reset`` is RFC 3339, as Anthropic sends it."""
    source = error.headers
    limit = source.get("x-ratelimit-limit-tokens")
    if limit is None:
        return {}
    headers = {"anthropic-ratelimit-tokens-limit": limit}
    remaining = source.get("x-ratelimit-remaining-tokens")
    if remaining is not None:
        headers["anthropic-ratelimit-tokens-remaining"] = remaining
    wait = parse_duration_ms(source.get("x-ratelimit-reset-tokens", ""))
    if wait is not None:
        at = (time.time() if now is None else now) + wait / 1000
        headers["anthropic-ratelimit-tokens-reset"] = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(-(-at // 1))
        )
    return headers
