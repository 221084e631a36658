"""A SageMaker Runtime *simulator*: the real wire protocol in front of simulated TGI models.

Unmodified boto3 talks to it when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points here:

- ``POST /endpoints/{name}/invocations`` answers the container's body as is;
- ``POST /endpoints/{name}/invocations-response-stream`` answers
  ``application/vnd.amazon.eventstream`` frames: ``PayloadPart`` events carrying slices of the
  container's bytes, and ``ModelStreamError`` / ``InternalStreamFailure`` exceptions;
- failures are rest-json errors with ``x-amzn-ErrorType`` (ValidationError 400, ModelError 424
  with ``OriginalStatusCode``/``OriginalMessage``, ModelNotReadyException 429, …);
- a container error (TGI answering 4xx/5xx) becomes a 424 ModelError, as on SageMaker.

Behaviour per endpoint is an :class:`~llm_gateway.emulator.spec.EndpointSpec`, changeable at
run time through ``/_emulator/…`` (see :meth:`Emulator.app`) or the Python API.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from llm_gateway.core.decoding import decode, loads
from llm_gateway.core.errors import GatewayError, request_error
from llm_gateway.core.parameters import GenerateRequest
from llm_gateway.emulator.eventstream import payload_part, stream_exception
from llm_gateway.emulator.model import (
    SimulatedTGI,
    chat_error_events,
    chat_request,
    chat_response,
    chat_stream_events,
)
from llm_gateway.emulator.spec import SAGEMAKER_ERRORS, STREAM_FAULTS, EndpointSpec, Fault

ACCOUNT = "123456789012"
REGION = "us-east-1"
EVENTSTREAM = "application/vnd.amazon.eventstream"
UNTAGGED_ENUM = (
    "Failed to deserialize the JSON body into the target type: "
    "data did not match any variant of untagged enum SagemakerRequest"
)
STREAM_ERROR_MESSAGES = {
    "ModelInvocationTimeExceeded": (
        "Your model primary did not complete sending the inference response in the allotted time."
    ),
    "StreamBroken": "The TCP connection between the client and the model was reset or closed.",
}
_SAGEMAKER_ERRORS: dict[str, tuple[str, int, str]] = {
    "validation_error": ("ValidationError", 400, "Inspect your request and try again."),
    "model_not_ready": ("ModelNotReadyException", 429, "Model is not ready to serve requests yet."),
    "throttling": ("ThrottlingException", 400, "Rate exceeded"),
    "internal_failure": ("InternalFailure", 500, "An internal failure occurred."),
    "service_unavailable": (
        "ServiceUnavailable",
        503,
        "Service is unavailable. Try your call again.",
    ),
    "internal_dependency": ("InternalDependencyException", 530, "An internal dependency failed."),
}


class EmulatedReset(Exception):
    """Raised inside a response body to break the connection (the ``reset`` fault)."""


class _QuietReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, EmulatedReset) and "EmulatedReset" not in record.getMessage()


@dataclass
class EndpointStats:
    requests: int = 0
    streams_started: int = 0
    streams_completed: int = 0
    streams_aborted: int = 0  # the caller closed the connection before the stream ended
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "streams_started": self.streams_started,
            "streams_completed": self.streams_completed,
            "streams_aborted": self.streams_aborted,
            "recent": list(self.recent),
        }


def sagemaker_error(code: str, status: int, message: str, **members: Any) -> Response:
    body = (
        {"message": message, **members} if code != "ModelError" else {"Message": message, **members}
    )
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.sagemaker/",
            "x-amzn-RequestId": str(uuid.uuid4()),
        },
    )


def model_error(endpoint: str, status: int, original: str) -> Response:
    """A container answer other than 200, as SageMaker reports it."""
    side = "client" if status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return sagemaker_error(
        "ModelError",
        424,
        f'Received {side} error ({status}) from primary with message "{original}". See '
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
        f"group={log_group} in account {ACCOUNT} for more information.",
        OriginalStatusCode=status,
        OriginalMessage=original,
        LogStreamArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}",
    )


def _slices(split: str, rng: random.Random):
    """A function cutting bytes into PayloadPart slices, carrying the rest to the next call."""
    if split == "event":
        return lambda data, final=False: [data] if data else []
    size = int(split.split(":")[1]) if split.startswith("bytes:") else 0
    carry = bytearray()

    def cut(data: bytes, final: bool = False) -> list[bytes]:
        carry.extend(data)
        out = []
        while carry:
            n = size or rng.randint(1, 48)
            if len(carry) < n and not final:
                break
            out.append(bytes(carry[:n]))
            del carry[:n]
        return out

    return cut


class Emulator:
    """Emulated endpoints by name, their faults and what they saw."""

    def __init__(self, endpoints: dict[str, EndpointSpec] | None = None) -> None:
        self.endpoints: dict[str, EndpointSpec] = dict(endpoints or {})
        self.stats: dict[str, EndpointStats] = {}
        logging.getLogger("uvicorn.error").addFilter(_QuietReset())

    # -- faults -------------------------------------------------------------------------------

    def _take_fault(
        self, spec: EndpointSpec, *, streaming: bool, kinds: tuple[str, ...]
    ) -> Fault | None:
        for fault in spec.faults:
            if fault.kind not in kinds or (fault.streaming_only and not streaming):
                continue
            if fault.take():
                return fault
        return None

    def set_endpoint(self, name: str, spec: EndpointSpec) -> None:
        self.endpoints[name] = spec

    def stats_for(self, name: str) -> EndpointStats:
        return self.stats.setdefault(name, EndpointStats())

    # -- SageMaker Runtime -------------------------------------------------------------------

    async def invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        streaming = request.url.path.endswith("-response-stream")
        spec = self.endpoints.get(name)
        body = await request.body()
        if spec is None:
            return sagemaker_error(
                "ValidationError", 400, f"Endpoint {name} of account {ACCOUNT} not found."
            )
        stats = self.stats_for(name)
        stats.requests += 1
        stats.recent.append(
            {
                "streaming": streaming,
                "body": body.decode("utf-8", "replace"),
                "headers": {
                    k: v
                    for k, v in request.headers.items()
                    if k.lower().startswith("x-amzn") or k.lower() in ("content-type", "accept")
                },
            }
        )
        slow = self._take_fault(spec, streaming=streaming, kinds=("slow_first_byte",))
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        fault = self._take_fault(spec, streaming=streaming, kinds=SAGEMAKER_ERRORS)
        if fault is not None:
            if fault.kind == "model_error":
                original = (
                    fault.message
                    or orjson.dumps(
                        {
                            "error": "Request failed during generation: simulated failure",
                            "error_type": "generation",
                        }
                    ).decode()
                )
                return model_error(name, fault.status, original)
            code, status, message = _SAGEMAKER_ERRORS[fault.kind]
            return sagemaker_error(code, status, fault.message or message)

        tgi = SimulatedTGI(spec)
        try:
            data = loads(body)
        except GatewayError as exc:  # axum: 400 "Failed to parse the request body as JSON"
            return model_error(name, exc.status, exc.message)
        if (
            isinstance(data, dict)
            and isinstance(data.get("messages"), list)
            and "inputs" not in data
            and not tgi.legacy
        ):
            return self._chat(name, spec, streaming, tgi, data)
        try:
            if not isinstance(data, dict) or not isinstance(data.get("inputs"), str):
                raise request_error(UNTAGGED_ENUM)
            req = decode(GenerateRequest, data)
        except GatewayError as exc:
            # TGI >= 2.4 tries each SagemakerRequest variant and loses the field detail.
            return model_error(name, 422, exc.message if tgi.legacy else UNTAGGED_ENUM)

        tgi_streams = bool(req.stream)
        try:
            gen = tgi.prepare(req, stream=tgi_streams)
        except GatewayError as exc:
            if tgi_streams:  # TGI answers 200 and one error event
                events = [tgi.error_event(exc.message, exc.error_type)]
                return self._answer(name, spec, streaming, events, fault_allowed=False)
            return model_error(name, exc.status, orjson.dumps(exc.to_tgi()).decode())
        if tgi_streams:
            return self._answer(name, spec, streaming, tgi.stream_events(gen), fault_allowed=True)
        return self._answer(
            name,
            spec,
            streaming,
            [tgi.response(gen)],
            fault_allowed=False,
            content_type="application/json",
        )

    def _chat(
        self,
        name: str,
        spec: EndpointSpec,
        streaming: bool,
        tgi: SimulatedTGI,
        data: dict[str, Any],
    ) -> Response:
        """TGI's Messages API: a chat payload on ``/invocations`` (TGI >= 2.4)."""
        model = str(data.get("model") or "tgi")
        model = spec.model_id if model == "tgi" else model
        created = int(time.time())
        try:
            req = chat_request(data)
        except Exception:
            return model_error(name, 422, UNTAGGED_ENUM)
        try:
            gen = tgi.prepare(req, stream=bool(req.stream))
        except GatewayError as exc:
            if req.stream:
                return self._answer(
                    name, spec, streaming, chat_error_events(exc.message), fault_allowed=False
                )
            return model_error(name, exc.status, orjson.dumps(exc.to_tgi()).decode())
        if req.stream:
            options = data.get("stream_options") or {}
            events = chat_stream_events(gen, model, created, bool(options.get("include_usage")))
            return self._answer(name, spec, streaming, events, fault_allowed=True)
        return self._answer(
            name,
            spec,
            streaming,
            [chat_response(gen, model, created)],
            fault_allowed=False,
            content_type="application/json",
        )

    def _answer(
        self,
        name: str,
        spec: EndpointSpec,
        streaming: bool,
        events: list[bytes],
        *,
        fault_allowed: bool,
        content_type: str = "text/event-stream",
    ) -> Response:
        if not streaming:  # InvokeEndpoint buffers whatever the container sent
            return Response(
                b"".join(events),
                media_type=content_type,
                headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"},
            )
        fault = (
            self._take_fault(
                spec,
                streaming=True,
                kinds=(*STREAM_FAULTS, "keepalive_silence"),
            )
            if fault_allowed
            else None
        )
        return StreamingResponse(
            self._frames(name, spec, events, fault),
            media_type=EVENTSTREAM,
            headers={
                "X-Amzn-SageMaker-Content-Type": content_type,
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    async def _frames(
        self, name: str, spec: EndpointSpec, events: list[bytes], fault: Fault | None
    ) -> AsyncIterator[bytes]:
        stats = self.stats_for(name)
        stats.streams_started += 1
        completed = False
        cut = _slices(spec.split, random.Random(len(events)))
        pacing = spec.pacing
        legacy = spec.tgi_version == "0.8.2"
        pending: list[bytes] = []
        try:
            if fault is not None and fault.kind == "keepalive_silence":
                waited = 0.0
                while waited < fault.seconds:
                    step = min(1.0, fault.seconds - waited)
                    await asyncio.sleep(step)
                    waited += step
                    yield payload_part(b":\n\n")
                fault = None
            for index, event in enumerate(events):
                if fault is not None and index == fault.at_token:
                    if pending:
                        yield b"".join(pending)
                        pending.clear()
                    for part in cut(b"", final=True):
                        yield payload_part(part)
                    async for frame in self._fault_frames(fault, legacy):
                        yield frame
                    completed = True
                    return
                delay = pacing.first_token_ms if index == 0 else pacing.token_ms
                if delay:
                    await asyncio.sleep(delay / 1000)
                    for part in cut(event):
                        yield payload_part(part)
                else:
                    # An unpaced model outruns the network: several PayloadParts per write, as
                    # a fast endpoint delivers them (and the emulator is not the bottleneck).
                    batch = b"".join(payload_part(part) for part in cut(event))
                    if batch:
                        pending.append(batch)
                        if len(pending) >= 64:
                            yield b"".join(pending)
                            pending.clear()
                    continue
            if pending:
                yield b"".join(pending)
                pending.clear()
            for part in cut(b"", final=True):
                yield payload_part(part)
            if fault is not None:  # at_token beyond the end: apply it after the last event
                async for frame in self._fault_frames(fault, legacy):
                    yield frame
            completed = True
        finally:
            if completed:
                stats.streams_completed += 1
            else:
                stats.streams_aborted += 1

    async def _fault_frames(self, fault: Fault, legacy: bool) -> AsyncIterator[bytes]:
        prefix = b"data:" if legacy else b"data: "
        kind = fault.kind
        if kind == "tgi_error_event":
            message = (
                fault.message or "Request failed during generation: simulated CUDA out of memory"
            )
            yield payload_part(
                prefix + orjson.dumps({"error": message, "error_type": fault.error_type}) + b"\n\n"
            )
        elif kind == "model_stream_error":
            message = fault.message or STREAM_ERROR_MESSAGES.get(
                fault.error_code, "Model stream error."
            )
            yield stream_exception("ModelStreamError", message, fault.error_code)
        elif kind == "internal_stream_failure":
            yield stream_exception(
                "InternalStreamFailure",
                fault.message or "The stream processing failed because of an unknown error.",
            )
        elif kind == "malformed_event":
            yield payload_part(prefix + b'{"token": {"id": 1, "text": \n\n')
        elif kind == "corrupt_frame":
            frame = bytearray(payload_part(prefix + b'{"token":{"id":1,"text":"x"}}\n\n'))
            frame[-1] ^= 0xFF
            yield bytes(frame)
        elif kind == "cut_frame":
            frame = payload_part(prefix + b'{"token":{"id":1,"text":"x"}}\n\n')
            yield frame[: len(frame) // 2]
        elif kind == "reset":
            await asyncio.sleep(0)
            raise EmulatedReset("simulated connection reset")
        # "truncate": nothing more; the body just ends.

    # -- admin API ------------------------------------------------------------------------------

    async def _admin_list(self, request: Request) -> Response:
        return Response(
            orjson.dumps({k: v.model_dump() for k, v in self.endpoints.items()}),
            media_type="application/json",
        )

    async def _admin_put(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            spec = EndpointSpec.model_validate_json(await request.body())
        except Exception as exc:
            return Response(
                orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json"
            )
        self.set_endpoint(name, spec)
        return Response(spec.model_dump_json(), media_type="application/json")

    async def _admin_stats(self, request: Request) -> Response:
        name = request.path_params["name"]
        return Response(orjson.dumps(self.stats_for(name).as_dict()), media_type="application/json")

    async def _ping(self, request: Request) -> Response:
        return Response(status_code=200)

    def app(self) -> Starlette:
        """The ASGI app; admin routes: ``GET /_emulator/endpoints``,
        ``PUT /_emulator/endpoints/{name}`` (an EndpointSpec as JSON),
        ``GET /_emulator/endpoints/{name}/stats``."""
        return Starlette(
            routes=[
                Route("/endpoints/{name}/invocations", self.invoke, methods=["POST"]),
                Route(
                    "/endpoints/{name}/invocations-response-stream", self.invoke, methods=["POST"]
                ),
                Route("/_emulator/endpoints", self._admin_list, methods=["GET"]),
                Route("/_emulator/endpoints/{name}", self._admin_put, methods=["PUT"]),
                Route("/_emulator/endpoints/{name}/stats", self._admin_stats, methods=["GET"]),
                Route("/ping", self._ping, methods=["GET"]),
            ]
        )
