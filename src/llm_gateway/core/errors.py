"""The one error type of the gateway and its neutral vocabulary.

Every failure a client can see is a :class:`GatewayError`: a ``message``, a neutral
:class:`ErrorCode` saying *what* went wrong (the dialects map codes to their own wire shapes,
each in one table), the ``status`` used when the failure is known before a response starts, a
:class:`ErrorKind` saying who is to blame (metrics), and TGI's ``error_type`` (the TGI dialect's
wire vocabulary, which a TGI container's own errors keep when they pass through). All factories
are in this module; no dialect matches message text.

>>> err = validation_error("`top_k` must be strictly positive")
>>> err.status, err.error_type, err.code, err.message
(422, 'validation', <ErrorCode.INVALID_PARAMETER: 'invalid_parameter'>, 'Input validation error: `top_k` must be strictly positive')
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


class ErrorCode(StrEnum):
    """What went wrong, in no dialect's words. Each dialect has one table from these codes to
    its wire shape (status, type, code)."""

    INVALID_REQUEST = "invalid_request"  # the body cannot be read: bad JSON, wrong types
    INVALID_PARAMETER = "invalid_parameter"  # a value the model or the gateway refuses
    CONTEXT_LENGTH = "context_length"  # the prompt (plus max tokens) exceeds the model's limits
    TEMPLATE = "template_error"  # the conversation does not fit the model's prompt template
    BATCH_TOO_LARGE = "batch_too_large"  # more prompts than max_client_batch_size
    MODEL_NOT_FOUND = "model_not_found"
    NOT_FOUND = "not_found"  # no such route
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHENTICATED = "unauthenticated"  # no credentials, or an unknown API key
    INVALID_TOKEN = "invalid_token"  # a signed-in user's token failed verification
    FORBIDDEN = "forbidden"  # authenticated, but not allowed (e.g. a model outside the claim)
    OVERLOADED = "overloaded"  # the gateway's own cap on generations in flight
    THROTTLED = "throttled"  # SageMaker throttling, or the container's own "overloaded"
    TOKENS_RATE_LIMITED = "tokens_rate_limited"  # a per-minute token budget
    REQUESTS_RATE_LIMITED = "requests_rate_limited"  # a per-minute request or stream budget
    QUOTA_EXHAUSTED = "quota_exhausted"  # a per-day budget: retrying today cannot help
    WARMING = "model_warming"  # the model is scaling up from zero
    UNAVAILABLE = "unavailable"  # the model is not ready, or SageMaker is unavailable
    BUDGET_STORE_UNAVAILABLE = "budget_store_unavailable"  # budgets cannot be checked (deny)
    ISSUER_UNAVAILABLE = "issuer_unavailable"  # no signing keys cached, the issuer unreachable
    TIMEOUT = "timeout"
    UPSTREAM = "upstream"  # the model or SageMaker failed
    INTERNAL = "internal"  # the gateway itself failed


# The code an error built without one gets, from TGI's type (the vocabulary every factory and
# every TGI container error already carries).
_BY_TGI_TYPE = {
    "validation": ErrorCode.INVALID_PARAMETER,
    "template_error": ErrorCode.TEMPLATE,
    "batch_size_exceeded": ErrorCode.BATCH_TOO_LARGE,
    "model_not_found": ErrorCode.MODEL_NOT_FOUND,
    "not_found": ErrorCode.NOT_FOUND,
    "method_not_allowed": ErrorCode.METHOD_NOT_ALLOWED,
    "unsupported_media_type": ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    "payload_too_large": ErrorCode.PAYLOAD_TOO_LARGE,
    "authentication": ErrorCode.UNAUTHENTICATED,
    "permission": ErrorCode.FORBIDDEN,
    "overloaded": ErrorCode.THROTTLED,
    "unavailable": ErrorCode.UNAVAILABLE,
    "timeout": ErrorCode.TIMEOUT,
    "internal": ErrorCode.INTERNAL,
}


def _infer_code(error_type: str, status: int, kind: ErrorKind) -> ErrorCode:
    code = _BY_TGI_TYPE.get(error_type)
    if code is not None:
        return code
    if kind is ErrorKind.CLIENT:
        return ErrorCode.INVALID_PARAMETER if status in (400, 422) else ErrorCode.INVALID_REQUEST
    if kind is ErrorKind.AUTH:
        return ErrorCode.UNAUTHENTICATED
    if kind is ErrorKind.TIMEOUT:
        return ErrorCode.TIMEOUT
    if kind is ErrorKind.THROTTLED:
        return ErrorCode.THROTTLED if status == 429 else ErrorCode.UNAVAILABLE
    return ErrorCode.UPSTREAM


class GatewayError(Exception):
    """A failure with the status, TGI ``error_type`` and message clients see.

    ``param`` names the offending request field when known (the OpenAI dialect reports it);
    ``retry_after`` (seconds) becomes a ``Retry-After`` header on overload answers; ``headers``
    are further response headers the failure implies (e.g. ``x-should-retry``); ``code`` is the
    neutral :class:`ErrorCode` (given by the factory; else inferred from ``error_type``).
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
        code: ErrorCode | str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.kind = kind
        self.param = param
        self.retry_after = retry_after
        self.headers = headers or {}
        self.code = ErrorCode(code) if code is not None else _infer_code(error_type, status, kind)

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
        code=ErrorCode.INVALID_PARAMETER,
    )


def context_length_error(message: str, *, param: str | None = "inputs") -> GatewayError:
    """TGI's two prompt-length refusals (``MaxTotalTokens``, ``InputLength``): a validation
    error whose code tells the dialects it is the context window (OpenAI's
    ``context_length_exceeded``)."""
    error = validation_error(message, param=param)
    error.code = ErrorCode.CONTEXT_LENGTH
    return error


def request_error(message: str, *, status: int = 422, param: str | None = None) -> GatewayError:
    """A request the gateway cannot read (bad JSON, wrong types): never reaches validation."""
    return GatewayError(
        message,
        status=status,
        error_type="validation",
        kind=ErrorKind.CLIENT,
        param=param,
        code=ErrorCode.INVALID_REQUEST,
    )


def invalid_parameter(message: str, *, param: str | None, status: int = 400) -> GatewayError:
    """A value a dialect's own rules refuse (ranges, unsupported features), naming the field."""
    return GatewayError(
        message,
        status=status,
        error_type="validation",
        kind=ErrorKind.CLIENT,
        param=param,
        code=ErrorCode.INVALID_PARAMETER,
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
    """The upstream asked us to slow down (SageMaker throttling, TGI's own "overloaded")."""
    return GatewayError(
        message,
        status=429,
        error_type="overloaded",
        kind=ErrorKind.THROTTLED,
        retry_after=retry_after,
        code=ErrorCode.THROTTLED,
    )


def gateway_overloaded() -> GatewayError:
    """The gateway's own cap on generations in flight (TGI's answer and words; the OpenAI
    dialect answers it as 503 ``overloaded``)."""
    return GatewayError(
        "Model is overloaded",
        status=429,
        error_type="overloaded",
        kind=ErrorKind.THROTTLED,
        retry_after=1,
        code=ErrorCode.OVERLOADED,
    )


def model_warming(model: str, *, retry_after: int = 30) -> GatewayError:
    """Not a failure: the model is scaling up from zero and will answer in a few minutes."""
    return GatewayError(
        f"Model '{model}' is scaling up from zero; this usually takes 5 to 10 minutes. "
        "Retry shortly.",
        status=503,
        error_type="unavailable",
        kind=ErrorKind.THROTTLED,
        retry_after=retry_after,
        headers={"x-should-retry": "true"},
        code=ErrorCode.WARMING,
    )


def unavailable_error(message: str, *, retry_after: int | None = 5) -> GatewayError:
    return GatewayError(
        message,
        status=503,
        error_type="unavailable",
        kind=ErrorKind.THROTTLED,
        retry_after=retry_after,
    )


def unauthenticated(message: str) -> GatewayError:
    return GatewayError(
        message,
        status=401,
        error_type="authentication",
        kind=ErrorKind.AUTH,
        code=ErrorCode.UNAUTHENTICATED,
    )


def payload_too_large(limit: int) -> GatewayError:
    return GatewayError(
        f"Request body is larger than the limit of {limit} bytes",
        status=413,
        error_type="payload_too_large",
        kind=ErrorKind.CLIENT,
        code=ErrorCode.PAYLOAD_TOO_LARGE,
    )


def unsupported_media_type(content_type: str | None) -> GatewayError:
    declared = f"`{content_type}`" if content_type else "none"
    return GatewayError(
        "Expected request with `Content-Type: application/json` (the body was declared as "
        f"{declared})",
        status=415,
        error_type="unsupported_media_type",
        kind=ErrorKind.CLIENT,
        code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    )


def route_error(status: int, message: str) -> GatewayError:
    """Starlette's own refusals (no such route, method not allowed)."""
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        status, ErrorCode.INVALID_REQUEST
    )
    names = {404: "not_found", 405: "method_not_allowed"}
    return GatewayError(
        message,
        status=status,
        error_type=names.get(status, "http"),
        kind=ErrorKind.CLIENT,
        code=code,
    )


def internal_error() -> GatewayError:
    return GatewayError(
        "Internal gateway error",
        status=500,
        error_type="internal",
        kind=ErrorKind.UPSTREAM,
        code=ErrorCode.INTERNAL,
    )


def invalid_token(description: str) -> GatewayError:
    # RFC 6750 §3: quoted-string; descriptions are fixed texts without quotes or backslashes.
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return GatewayError(
        f"Invalid token: {description}",
        status=401,
        error_type="authentication",
        kind=ErrorKind.AUTH,
        headers={"www-authenticate": challenge},
        code=ErrorCode.INVALID_TOKEN,
    )


def issuer_unavailable() -> GatewayError:
    return GatewayError(
        "The token issuer's signing keys cannot be fetched right now; try again shortly",
        status=503,
        error_type="unavailable",
        kind=ErrorKind.UPSTREAM,
        retry_after=5,
        headers={"x-should-retry": "true"},
        code=ErrorCode.ISSUER_UNAVAILABLE,
    )


def model_not_allowed(name: str) -> GatewayError:
    return GatewayError(
        f"You are not allowed to use the model '{name}'",
        status=403,
        error_type="permission",
        kind=ErrorKind.CLIENT,
        param="model",
        code=ErrorCode.FORBIDDEN,
    )


def stream_closed() -> GatewayError:
    """The client left before the upstream call was made (nobody reads this error)."""
    return GatewayError(
        "The client left before the model was called",
        status=499,
        error_type="cancelled",
        kind=ErrorKind.CLIENT,
    )
