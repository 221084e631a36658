"""The one error type of the gateway.

Every failure a client can see is a :class:`GatewayError`: a ``message``, an ``error_type``
(the vocabulary is TGI's, which the gateway adopted), the ``status`` used when the failure is
known before a response starts, and a :class:`ErrorKind` saying who is to blame. Dialects
only render it in their wire shapes; they never invent their own failure vocabulary.

>>> err = validation_error("`top_k` must be strictly positive")
>>> err.status, err.error_type, err.message
(422, 'validation', 'Input validation error: `top_k` must be strictly positive')
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Who is to blame, for metrics and for the OpenAI dialect's error ``type``."""

    CLIENT = "client"  # the request is wrong: validation, unknown model, bad JSON
    AUTH = "auth"  # missing or wrong API key
    UPSTREAM = "upstream"  # SageMaker or the model failed
    THROTTLED = "throttled"  # SageMaker or TGI asked us to slow down
    TIMEOUT = "timeout"  # the upstream did not answer in time
    STREAM = "stream"  # the upstream failed after the stream started


class GatewayError(Exception):
    """A failure with the status, TGI ``error_type`` and message clients see.

    ``param`` names the offending request field when known (the OpenAI dialect reports it);
    ``retry_after`` (seconds) becomes a ``Retry-After`` header on overload answers; ``headers``
    are further response headers the failure implies (e.g. ``x-should-retry``); ``code`` is a
    machine-readable reason finer than ``error_type`` (OpenAI's ``code``, e.g.
    ``model_warming``).
    """

    __slots__ = (
        "code",
        "error_type",
        "headers",
        "kind",
        "message",
        "param",
        "retry_after",
        "status",
    )

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str,
        kind: ErrorKind,
        param: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.kind = kind
        self.param = param
        self.retry_after = retry_after
        self.headers = headers or {}
        self.code = code

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.error_type!r}, {self.message!r})"


VALIDATION_PREFIX = "Input validation error: "


def validation_error(message: str, *, param: str | None = None) -> GatewayError:
    """TGI's ``InferError::ValidationError``: 422, ``validation``, message prefixed as TGI does."""
    return GatewayError(
        VALIDATION_PREFIX + message,
        status=422,
        error_type="validation",
        kind=ErrorKind.CLIENT,
        param=param,
    )


def request_error(message: str, *, status: int = 422, param: str | None = None) -> GatewayError:
    """A request the gateway cannot read (bad JSON, wrong types): never reaches validation."""
    return GatewayError(
        message, status=status, error_type="validation", kind=ErrorKind.CLIENT, param=param
    )


def model_not_found(name: str) -> GatewayError:
    return GatewayError(
        f"Model '{name}' is not served by this gateway",
        status=404,
        error_type="model_not_found",
        kind=ErrorKind.CLIENT,
        param="model",
    )


def template_error(message: str) -> GatewayError:
    """TGI's ``InferError::TemplateError``."""
    return GatewayError(
        f"Template error: {message}", status=422, error_type="template_error", kind=ErrorKind.CLIENT
    )


def incomplete_stream() -> GatewayError:
    """TGI's message when a generation stream ends without its last token."""
    return GatewayError(
        "Incomplete generation stream",
        status=500,
        error_type="incomplete_generation_stream",
        kind=ErrorKind.STREAM,
    )


def upstream_error(
    message: str, *, status: int = 502, kind: ErrorKind = ErrorKind.UPSTREAM
) -> GatewayError:
    return GatewayError(message, status=status, error_type="upstream", kind=kind)


def timeout_error(message: str) -> GatewayError:
    return GatewayError(message, status=504, error_type="timeout", kind=ErrorKind.TIMEOUT)


def deadline_error() -> GatewayError:
    """The request reached its time limit (API Gateway's for the mode, or Lambda's)."""
    return timeout_error("The request did not finish within the gateway's time limit")


def overloaded_error(message: str, *, retry_after: int | None = 1) -> GatewayError:
    return GatewayError(
        message,
        status=429,
        error_type="overloaded",
        kind=ErrorKind.THROTTLED,
        retry_after=retry_after,
    )


def unavailable_error(message: str, *, retry_after: int | None = 5) -> GatewayError:
    return GatewayError(
        message,
        status=503,
        error_type="unavailable",
        kind=ErrorKind.THROTTLED,
        retry_after=retry_after,
    )
