"""The SageMaker Runtime client: unmodified boto3 (its botocore client), one per process.

``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (honoured by boto3 itself) points it at the emulator.
botocore's own retries are off: :class:`SageMakerRuntime` retries only failures that happen
before the model generates anything (throttling, not ready, unavailable, no connection), with
jittered exponential backoff, and never once a stream has started.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Iterator
from typing import Any, Protocol

import botocore.session
from botocore.config import Config
from botocore.exceptions import EventStreamError

from llm_gateway.config.settings import Settings, aws_region
from llm_gateway.core.errors import GatewayError
from llm_gateway.observability.tracing import upstream_span
from llm_gateway.transport.errors import (
    NO_CONTAINER_ERRORS,
    ContainerErrors,
    from_boto_error,
    from_stream_error,
    is_retryable,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"


class EndpointTarget(Protocol):
    """Where a model lives in SageMaker (a model's configuration satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def inference_component(self) -> str | None: ...


def client_config(settings: Settings) -> Config:
    """The gateway's timeouts and pool size, and no botocore retries."""
    return Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=settings.max_connections,
        tcp_keepalive=True,
        user_agent_extra="llm-gateway",
    )


def make_client(settings: Settings) -> Any:
    """A ``sagemaker-runtime`` client with :func:`client_config`."""
    # botocore's session, not boto3's: importing boto3 and building its Session (resource
    # factories and loaders the gateway never uses) costs cold start 30-40 ms. The client is the
    # one boto3 would build: same endpoint resolution (AWS_ENDPOINT_URL_* included), credentials
    # and region, and the User-Agent boto3 would send (tests/test_transport_client.py).
    session = botocore.session.get_session()
    session.user_agent_extra = f"Botocore/{session.user_agent_version}"
    session.user_agent_name, session.user_agent_version = "Boto3", _boto3_version()
    region = aws_region()
    if region is not None:
        session.set_config_variable("region", region)
    return session.create_client("sagemaker-runtime", config=client_config(settings))


def _boto3_version() -> str:
    """boto3's version, for the User-Agent, from its metadata without importing it (the
    import is what the session above saves); by importing it where no metadata is installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("boto3")
    except PackageNotFoundError:
        import boto3

        return str(boto3.__version__)


def _shutdown_socket(raw: Any) -> None:
    """Wake a thread blocked reading ``raw`` (a urllib3 response): closing a socket does not
    interrupt ``recv`` on Linux, shutting it down does."""
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EventStreamBody:
    """``PayloadPart`` bytes of one ``InvokeEndpointWithResponseStream`` answer."""

    def __init__(self, response: dict[str, Any], target: EndpointTarget) -> None:
        self._stream = response["Body"]
        self._target = target
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for event in self._stream:
                part = event.get("PayloadPart")
                if part is not None:
                    yield part["Bytes"]
        except EventStreamError as exc:
            raise from_stream_error(exc, model=self._target.name) from None
        except GatewayError:
            raise
        except Exception as exc:
            if self._closed:
                return
            raise from_boto_error(
                exc, model=self._target.name, endpoint=self._target.endpoint
            ) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        raw = getattr(self._stream, "_raw_stream", None)
        if raw is not None:
            _shutdown_socket(raw)
        try:
            self._stream.close()
        except Exception:
            pass


class SageMakerRuntime:
    """The transport every backend shares: InvokeEndpoint and its streaming variant over one
    boto3 client. :meth:`channel` binds it to one model (a core
    :class:`~llm_gateway.core.ports.Channel`)."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.client = client if client is not None else make_client(settings)

    def channel(
        self, target: EndpointTarget, container_errors: ContainerErrors
    ) -> SageMakerChannel:
        return SageMakerChannel(self, target, container_errors)

    def _kwargs(self, target: EndpointTarget, body: bytes) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "EndpointName": target.endpoint,
            "Body": body,
            "ContentType": CONTENT_TYPE,
        }
        if target.inference_component:
            kwargs["InferenceComponentName"] = target.inference_component
        return kwargs

    def _call(
        self,
        operation: Any,
        target: EndpointTarget,
        kwargs: dict[str, Any],
        deadline: float | None,
        container_errors: ContainerErrors,
    ) -> Any:
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return operation(**kwargs)
            except Exception as exc:
                delay = random.uniform(0, min(2.0, 0.1 * 2**attempt))  # full jitter
                out_of_time = deadline is not None and time.monotonic() + delay >= deadline
                if attempt >= attempts or out_of_time or not is_retryable(exc):
                    raise from_boto_error(
                        exc,
                        model=target.name,
                        endpoint=target.endpoint,
                        container_errors=container_errors,
                    ) from None
                log.info(
                    "retrying %s after %s (attempt %d)", target.name, type(exc).__name__, attempt
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def invoke(
        self,
        target: EndpointTarget,
        body: bytes,
        deadline: float | None = None,
        container_errors: ContainerErrors = NO_CONTAINER_ERRORS,
    ) -> bytes:
        kwargs = self._kwargs(target, body)
        kwargs["Accept"] = CONTENT_TYPE
        with upstream_span("sagemaker.invoke_endpoint", target.name):
            response = self._call(
                self.client.invoke_endpoint, target, kwargs, deadline, container_errors
            )
            try:
                return bytes(response["Body"].read())
            except Exception as exc:
                raise from_boto_error(exc, model=target.name, endpoint=target.endpoint) from None

    def invoke_stream(
        self,
        target: EndpointTarget,
        body: bytes,
        deadline: float | None = None,
        container_errors: ContainerErrors = NO_CONTAINER_ERRORS,
    ) -> EventStreamBody:
        kwargs = self._kwargs(target, body)
        kwargs["Accept"] = "text/event-stream"
        # The span covers opening the stream; the tokens are read after it closes.
        with upstream_span("sagemaker.invoke_endpoint_with_response_stream", target.name):
            response = self._call(
                self.client.invoke_endpoint_with_response_stream,
                target,
                kwargs,
                deadline,
                container_errors,
            )
        return EventStreamBody(response, target)


class SageMakerChannel:
    """One model's :class:`~llm_gateway.core.ports.Channel` over :class:`SageMakerRuntime`."""

    __slots__ = ("_container_errors", "_runtime", "_target")

    def __init__(
        self, runtime: SageMakerRuntime, target: EndpointTarget, container_errors: ContainerErrors
    ) -> None:
        self._runtime = runtime
        self._target = target
        self._container_errors = container_errors

    def invoke(self, body: bytes, deadline: float | None = None) -> bytes:
        return self._runtime.invoke(self._target, body, deadline, self._container_errors)

    def invoke_stream(self, body: bytes, deadline: float | None = None) -> EventStreamBody:
        return self._runtime.invoke_stream(self._target, body, deadline, self._container_errors)
