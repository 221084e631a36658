"""Every :class:`GatewayError` in OpenAI's error shape: ONE table, by neutral code.

``{"error": {"message", "type", "param", "code"}}`` with the status OpenAI's API gives that
kind of error, so the SDKs raise the class they raise against OpenAI (``RateLimitError``,
``BadRequestError``, …) and retry what they retry there. A stream's error event is the same
body. The Responses API answers with the same table (:mod:`.responses.errors`).

>>> from llm_gateway.core.errors import validation_error
>>> status, body = error_body(validation_error("bad", param="max_new_tokens"))
>>> error = orjson.loads(body)["error"]
>>> status, error["type"], error["param"], error["code"]
(400, 'invalid_request_error', 'max_tokens', 'invalid_value')
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.errors import ErrorCode, GatewayError

# TGI parameter names in errors -> the OpenAI parameter the client sent.
_PARAMS = {"max_new_tokens": "max_tokens", "top_n_tokens": "top_logprobs", "inputs": "messages"}

_INVALID, _SERVER, _RATE = "invalid_request_error", "server_error", "rate_limit_error"
# The one table of the OpenAI dialect: neutral code -> (status, type, code). A status of None
# keeps the error's own (OpenAI-normalised: 422 is 400; a failed model is 502, never a bare
# 500); a code of None is the upstream's own type (e.g. a TGI container's "generation").
ERRORS: dict[ErrorCode, tuple[int | None, str, str | None]] = {
    ErrorCode.INVALID_REQUEST: (400, _INVALID, "invalid_value"),
    ErrorCode.INVALID_PARAMETER: (None, _INVALID, "invalid_value"),
    ErrorCode.CONTEXT_LENGTH: (400, _INVALID, "context_length_exceeded"),
    ErrorCode.TEMPLATE: (400, _INVALID, "template_error"),
    ErrorCode.BATCH_TOO_LARGE: (400, _INVALID, "batch_size_exceeded"),
    ErrorCode.MODEL_NOT_FOUND: (404, _INVALID, "model_not_found"),
    ErrorCode.NOT_FOUND: (404, _INVALID, "not_found"),
    ErrorCode.METHOD_NOT_ALLOWED: (405, _INVALID, "method_not_allowed"),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, _INVALID, "unsupported_media_type"),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, _INVALID, "payload_too_large"),
    ErrorCode.UNAUTHENTICATED: (401, _INVALID, "invalid_api_key"),
    ErrorCode.INVALID_TOKEN: (401, _INVALID, "invalid_token"),
    ErrorCode.FORBIDDEN: (403, _INVALID, "permission_denied"),
    # The gateway's own capacity and a model scaling up: server conditions that clear.
    ErrorCode.OVERLOADED: (503, _SERVER, "overloaded"),
    ErrorCode.WARMING: (503, _SERVER, "model_warming"),
    ErrorCode.THROTTLED: (429, _RATE, "rate_limit_exceeded"),
    # Budgets, as OpenAI's API answers rate limits and exhausted quotas.
    ErrorCode.TOKENS_RATE_LIMITED: (429, "tokens", "rate_limit_exceeded"),
    ErrorCode.REQUESTS_RATE_LIMITED: (429, "requests", "rate_limit_exceeded"),
    ErrorCode.QUOTA_EXHAUSTED: (429, "insufficient_quota", "insufficient_quota"),
    ErrorCode.UNAVAILABLE: (503, _SERVER, "unavailable"),
    ErrorCode.BUDGET_STORE_UNAVAILABLE: (503, _SERVER, "budget_store_unavailable"),
    ErrorCode.ISSUER_UNAVAILABLE: (503, _SERVER, "unavailable"),
    ErrorCode.TIMEOUT: (504, _SERVER, "timeout"),
    ErrorCode.UPSTREAM: (None, _SERVER, None),
    ErrorCode.INTERNAL: (None, _SERVER, "internal"),
}


def _status(status: int) -> int:
    if status == 422:
        return 400  # OpenAI reports every invalid request as 400
    if status == 424 or (status >= 500 and status not in (502, 503, 504)):
        return 502  # the model failed: a bad gateway, never a bare 500
    return status


def classify(error: GatewayError) -> tuple[int, str, str]:
    """The status, ``type`` and ``code`` OpenAI's API gives ``error`` (from :data:`ERRORS`).

    >>> from llm_gateway.core.errors import overloaded_error
    >>> classify(overloaded_error("SageMaker is throttling requests"))
    (429, 'rate_limit_error', 'rate_limit_exceeded')
    """
    fixed, kind, code = ERRORS[error.code]
    status = fixed if fixed is not None else _status(error.status)
    if kind == _SERVER and status < 500:
        kind = _INVALID  # a container's 4xx (e.g. 413) is the request's fault
    return status, kind, code or error.error_type


def client_param(param: str | None) -> str | None:
    """The parameter the chat completions client sent, for a TGI parameter name."""
    return _PARAMS.get(param or "", param)


def error_object(error: GatewayError, param: str | None) -> tuple[int, dict[str, Any]]:
    """The status and ``{"error": {…}}`` of ``error``, naming ``param`` as the offender."""
    status, kind, code = classify(error)
    body = {"message": error.message, "type": kind, "param": param, "code": code}
    return status, {"error": body}


def error_body(error: GatewayError) -> tuple[int, bytes]:
    """The status and body of ``error`` on the chat completions, completions and models
    routes (also a stream's error event)."""
    status, body = error_object(error, client_param(error.param))
    return status, orjson.dumps(body)
