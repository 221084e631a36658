"""SageMaker Runtime failures (as botocore raises them) to the gateway's :class:`GatewayError`.

The mapping is the contract of SPEC §5.1: a TGI error that SageMaker wraps in a 424 ModelError
keeps TGI's status, type and message; throttling is 429 ``overloaded``; not-ready and
unavailable are 503 ``unavailable``; timeouts are 504 ``timeout``; anything else is 502
``upstream``, and every message names the model.
"""

from __future__ import annotations

from typing import Any

import orjson
from botocore import eventstream
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    NoCredentialsError,
    ReadTimeoutError,
)

from llm_gateway.core.errors import (
    ErrorKind,
    GatewayError,
    overloaded_error,
    tgi_error,
    timeout_error,
    unavailable_error,
    upstream_error,
)

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Failures where the model never started generating, so a retry cannot bill twice.
RETRYABLE_CODES = THROTTLING_CODES | {
    "ServiceUnavailable",
    "ModelNotReadyException",
    "InternalDependencyException",
}
# What a TGI status means when its body is not TGI's JSON (axum's plain-text rejections).
_PLAIN_STATUS_TYPES = {
    400: "validation",
    413: "validation",
    415: "validation",
    422: "validation",
    424: "generation",
    429: "overloaded",
}


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` happened before the model could have generated anything."""
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return True  # nothing reached the model
    if isinstance(exc, ClientError) and not isinstance(exc, EventStreamError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in RETRYABLE_CODES:
            return True
        # TGI answers "overloaded" before it validates or queues the request.
        return code == "ModelError" and exc.response.get("OriginalStatusCode") == 429
    return False


def _from_model_error(response: dict[str, Any], model: str) -> GatewayError:
    status = response.get("OriginalStatusCode")
    original = response.get("OriginalMessage")
    message = response.get("Error", {}).get("Message", "")
    if isinstance(original, str) and original.startswith("{"):
        try:
            body = orjson.loads(original)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            error_type = str(body.get("error_type") or "generation")
            return tgi_error(
                body["error"],
                error_type,
                status=status if isinstance(status, int) and status >= 400 else None,
            )
    if isinstance(status, int) and status in _PLAIN_STATUS_TYPES and original:
        return tgi_error(str(original), _PLAIN_STATUS_TYPES[status], status=status)
    text = original or message
    if "timed out" in message or "timed out" in str(original):
        return timeout_error(f"Model '{model}' did not answer in time: {text}")
    return upstream_error(f"Model '{model}' failed: {text}")


def from_boto_error(exc: BaseException, *, model: str, endpoint: str) -> GatewayError:
    """The client-facing error for a botocore exception raised while calling ``endpoint``."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, EventStreamError):
        return from_stream_error(exc, model=model)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "ModelError":
            return _from_model_error(exc.response, model)
        if code in THROTTLING_CODES:
            return overloaded_error(
                f"SageMaker is throttling requests to model '{model}': {message}"
            )
        if code == "ModelNotReadyException":
            return unavailable_error(f"Model '{model}' is not ready yet: {message}")
        if code == "ServiceUnavailable":
            return unavailable_error(f"SageMaker is unavailable for model '{model}': {message}")
        if code == "ValidationError" and "not found" in message.lower():
            return upstream_error(
                f"Model '{model}' is configured with SageMaker endpoint '{endpoint}', "
                f"which does not exist: {message}"
            )
        return upstream_error(
            f"SageMaker rejected the call for model '{model}' ({code}): {message}"
        )
    if isinstance(exc, ReadTimeoutError):
        return timeout_error(f"Model '{model}' did not answer within the read timeout")
    if isinstance(exc, ConnectTimeoutError):
        return timeout_error(f"Could not connect to SageMaker for model '{model}' in time")
    if isinstance(exc, EndpointConnectionError):
        return upstream_error(f"Could not connect to SageMaker Runtime for model '{model}'")
    if isinstance(exc, NoCredentialsError):
        return upstream_error(f"No AWS credentials to call SageMaker for model '{model}'")
    if isinstance(exc, eventstream.ParserError):
        return upstream_error(
            f"Model '{model}' sent a corrupt event-stream frame ({type(exc).__name__})",
            kind=ErrorKind.STREAM,
        )
    return upstream_error(f"Calling model '{model}' failed ({type(exc).__name__})")


def from_stream_error(exc: EventStreamError, *, model: str) -> GatewayError:
    """``ModelStreamError`` / ``InternalStreamFailure`` raised by botocore mid-stream."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "StreamError"), error.get("Message", "")
    lowered = message.lower()
    if "allotted time" in lowered or "timed out" in lowered or "timeout" in lowered:
        return GatewayError(
            f"Model '{model}' stream timed out ({code}): {message}",
            status=504,
            error_type="timeout",
            kind=ErrorKind.TIMEOUT,
        )
    return upstream_error(
        f"Model '{model}' stream failed ({code}): {message}", kind=ErrorKind.STREAM
    )
