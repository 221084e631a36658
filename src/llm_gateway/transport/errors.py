"""SageMaker Runtime failures (as botocore raises them) to the gateway's :class:`GatewayError`.

The mapping is the contract of SPEC §5.1: a container error that SageMaker wraps in a 424
ModelError is read by the model's backend (TGI's keeps its status, type and message);
throttling is 429 ``overloaded``; not-ready and unavailable are 503 ``unavailable``; timeouts
are 504 ``timeout``; anything else is 502 ``upstream``. Every message names the model and the
kind of failure; what AWS or the container said (which may hold account ids, ARNs or a
traceback) goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

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
    timeout_error,
    unavailable_error,
    upstream_error,
)
from llm_gateway.core.errors import model_warming as core_model_warming

log = logging.getLogger(__name__)

# A backend's reading of its container's error body (status, text), or None if not its format.
ContainerErrors = Callable[[int | None, str], GatewayError | None]


def _no_container_errors(status: int | None, body: str) -> GatewayError | None:
    return None


NO_CONTAINER_ERRORS: ContainerErrors = _no_container_errors

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Failures where the model never started generating, so a retry cannot bill twice.
RETRYABLE_CODES = THROTTLING_CODES | {
    "ServiceUnavailable",
    "ModelNotReadyException",
    "InternalDependencyException",
}


# SageMaker's answer while an inference component has no copies (it is scaling up from zero).
NO_CAPACITY = "has no capacity to process this request"
WARMING_RETRY_AFTER = 30  # seconds: waking takes minutes (about 5 for an 8B model)


def model_warming(model: str) -> GatewayError:
    """Not a failure: the model is scaling up from zero and will answer in a few minutes."""
    return core_model_warming(model, retry_after=WARMING_RETRY_AFTER)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` happened before the model could have generated anything."""
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return True  # nothing reached the model
    if isinstance(exc, ClientError) and not isinstance(exc, EventStreamError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in RETRYABLE_CODES:
            return True
        # TGI answers "overloaded" before it validates or queues the request.
        return bool(code == "ModelError" and exc.response.get("OriginalStatusCode") == 429)
    return False


def _from_model_error(
    response: dict[str, Any], model: str, container_errors: ContainerErrors
) -> GatewayError:
    status = response.get("OriginalStatusCode")
    original = response.get("OriginalMessage")
    message = response.get("Error", {}).get("Message", "")
    if isinstance(original, str):
        error = container_errors(status if isinstance(status, int) else None, original)
        if error is not None:
            return error
    log.warning("model %s failed (HTTP %s): %.500s", model, status, original or message)
    if "timed out" in message or "timed out" in str(original):
        return timeout_error(f"Model '{model}' did not answer in time")
    answered = f" (the container answered HTTP {status})" if isinstance(status, int) else ""
    return upstream_error(f"Model '{model}' failed{answered}")


def from_boto_error(
    exc: BaseException,
    *,
    model: str,
    endpoint: str,
    container_errors: ContainerErrors = NO_CONTAINER_ERRORS,
) -> GatewayError:
    """The client-facing error for a botocore exception raised while calling ``endpoint``."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, EventStreamError):
        return from_stream_error(exc, model=model)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "ModelError":
            return _from_model_error(exc.response, model, container_errors)
        if code == "ValidationError" and NO_CAPACITY in message:
            return model_warming(model)
        log.warning("SageMaker answered %s for model %s: %.500s", code, model, message)
        if code in THROTTLING_CODES:
            return overloaded_error(f"SageMaker is throttling requests to model '{model}'")
        if code == "ModelNotReadyException":
            return unavailable_error(f"Model '{model}' is not ready yet")
        if code == "ServiceUnavailable":
            return unavailable_error(f"SageMaker is unavailable for model '{model}'")
        if code == "ValidationError" and "not found" in message.lower():
            return upstream_error(
                f"Model '{model}' is configured with SageMaker endpoint '{endpoint}', "
                "which does not exist"
            )
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            return upstream_error(f"The gateway is not allowed to call model '{model}' ({code})")
        return upstream_error(f"SageMaker rejected the call for model '{model}' ({code})")
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
    # SageMaker's own stream-failure texts name the variant and the cause, nothing private.
    return upstream_error(
        f"Model '{model}' stream failed ({code}): {message}", kind=ErrorKind.STREAM
    )
