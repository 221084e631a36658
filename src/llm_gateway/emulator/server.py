"""A SageMaker Runtime *simulator*: the real wire protocol in front of simulated containers
(TGI by default; vLLM, SGLang or LMI per ``EndpointSpec.server``).

Unmodified boto3 talks to it when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points here:

- ``POST /endpoints/{name}/invocations`` answers the container's body as is;
- ``POST /endpoints/{name}/invocations-response-stream`` answers
  ``application/vnd.amazon.eventstream`` frames: ``PayloadPart`` events carrying slices of the
  container's bytes, and ``ModelStreamError`` / ``InternalStreamFailure`` exceptions;
- failures are rest-json errors with ``x-amzn-ErrorType`` (ValidationError 400, ModelError 424
  with ``OriginalStatusCode``/``OriginalMessage``, ModelNotReadyException 429, …);
- a container error (TGI answering 4xx/5xx) becomes a 424 ModelError, as on SageMaker;
- an endpoint with ``inference_component`` requires that name in
  ``X-Amzn-SageMaker-Inference-Component``; with ``scale_to_zero`` it answers SageMaker's
  no-capacity ValidationError until it has woken up (:mod:`llm_gateway.emulator.wake`).

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
from collections.abc import AsyncIterator, Callable
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
from llm_gateway.emulator.chat import (
    chat_error_events,
    chat_request,
    chat_response,
    chat_stream_events,
)
from llm_gateway.emulator.containers import CONTAINERS, failure_body
from llm_gateway.emulator.eventstream import payload_part
from llm_gateway.emulator.model import SimulatedTGI
from llm_gateway.emulator.spec import SAGEMAKER_ERRORS, STREAM_FAULTS, EndpointSpec, Fault
from llm_gateway.emulator.wake import NO_CAPACITY, WakeState
from llm_gateway.emulator.wire import (
    ACCOUNT,
    EVENTSTREAM,
    SAGEMAKER_ERROR_KINDS,
    UNTAGGED_ENUM,
    EmulatedReset,
    fault_frames,
    model_error,
    sagemaker_error,
    slices,
)


class _QuietReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, EmulatedReset) and "EmulatedReset" not in record.getMessage()


# One shared instance: Logger.addFilter ignores a filter already attached, so building many
# Emulators (one per test) does not stack filters on uvicorn's logger.
_QUIET_RESET = _QuietReset()


def _tgi_error(exc: GatewayError) -> str:
    """TGI's ``ErrorResponse`` body for a failure before generation."""
    return orjson.dumps({"error": exc.message, "error_type": exc.error_type}).decode()


@dataclass
class EndpointStats:
    requests: int = 0
    streams_started: int = 0
    streams_completed: int = 0
    streams_aborted: int = 0  # the caller closed the connection before the stream ended
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))
    # The callers' connections (address and port) the requests came over: a caller that
    # keeps its connections (a pool) adds one per connection, not one per request.
    connections: set[tuple[str, int]] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "streams_started": self.streams_started,
            "streams_completed": self.streams_completed,
            "streams_aborted": self.streams_aborted,
            "connections": len(self.connections),
            "recent": list(self.recent),
        }


class Emulator:
    """Emulated endpoints by name, their faults and what they saw."""

    def __init__(self, endpoints: dict[str, EndpointSpec] | None = None) -> None:
        self.endpoints: dict[str, EndpointSpec] = dict(endpoints or {})
        self.stats: dict[str, EndpointStats] = {}
        self.wake: dict[str, WakeState] = {}
        logging.getLogger("uvicorn.error").addFilter(_QUIET_RESET)

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

    def wake_for(self, name: str) -> WakeState | None:
        """The scale-to-zero state of an endpoint (new whenever its spec's config changes)."""
        spec = self.endpoints.get(name)
        config = spec.scale_to_zero if spec is not None else None
        if config is None:
            self.wake.pop(name, None)
            return None
        state = self.wake.get(name)
        if state is None or state.config is not config:
            state = self.wake[name] = WakeState(config)
        return state

    def _component_error(self, name: str, spec: EndpointSpec, request: Request) -> Response | None:
        """SageMaker's checks of an inference component endpoint, before any container runs."""
        if spec.inference_component is not None:
            component = request.headers.get("x-amzn-sagemaker-inference-component")
            if not component:
                return sagemaker_error(
                    "ValidationError",
                    400,
                    "Inference Component Name header is required for endpoints to which you "
                    "plan to deploy inference components. Please include Inference Component "
                    "Name header or consider using SageMaker models.",
                )
            if component != spec.inference_component:
                return sagemaker_error(
                    "ValidationError",
                    400,
                    f"Inference Component {component} not found for endpoint {name}.",
                )
        wake = self.wake_for(name)
        if wake is not None and not wake.admit():
            return sagemaker_error("ValidationError", 400, NO_CAPACITY)
        return None

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
        self._count(name, request, body, streaming)
        refused = self._component_error(name, spec, request)
        if refused is not None:
            return refused
        injected = await self._injected(name, spec, streaming)
        if injected is not None:
            return injected
        container = CONTAINERS.get(spec.server)
        if container is not None:
            answer = container(spec, body)
            if answer.status != 200:
                return model_error(name, answer.status, answer.body)
            return self._answer(
                name,
                spec,
                streaming,
                answer.events,
                fault_allowed=answer.streamed,
                content_type=answer.content_type,
                error_event=answer.error_event,
            )
        return self._tgi(name, spec, streaming, body)

    def _count(self, name: str, request: Request, body: bytes, streaming: bool) -> None:
        """Stats for the admin API: the request and what identified it."""
        stats = self.stats_for(name)
        stats.requests += 1
        if request.client is not None:
            stats.connections.add((request.client.host, request.client.port))
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

    async def _injected(self, name: str, spec: EndpointSpec, streaming: bool) -> Response | None:
        """A configured fault that answers before the container does (SageMaker's errors)."""
        slow = self._take_fault(spec, streaming=streaming, kinds=("slow_first_byte",))
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        fault = self._take_fault(spec, streaming=streaming, kinds=SAGEMAKER_ERRORS)
        if fault is None:
            return None
        if fault.kind == "model_error":
            original = (
                fault.message
                or (failure_body(spec, fault.status) if spec.server != "tgi" else None)
                or orjson.dumps(
                    {
                        "error": "Request failed during generation: simulated failure",
                        "error_type": "generation",
                    }
                ).decode()
            )
            return model_error(name, fault.status, original)
        code, status, message = SAGEMAKER_ERROR_KINDS[fault.kind]
        return sagemaker_error(code, status, fault.message or message)

    def _tgi(self, name: str, spec: EndpointSpec, streaming: bool, body: bytes) -> Response:
        """The simulated TGI: its generate API, or its Messages API for a chat payload."""
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
            return model_error(name, exc.status, _tgi_error(exc))
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
            return model_error(name, exc.status, _tgi_error(exc))
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
        error_event: Callable[[str | None, int], bytes] | None = None,
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
            self._frames(name, spec, events, fault, error_event),
            media_type=EVENTSTREAM,
            headers={
                "X-Amzn-SageMaker-Content-Type": content_type,
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    async def _frames(
        self,
        name: str,
        spec: EndpointSpec,
        events: list[bytes],
        fault: Fault | None,
        error_event: Callable[[str | None, int], bytes] | None = None,
    ) -> AsyncIterator[bytes]:
        stats = self.stats_for(name)
        stats.streams_started += 1
        completed = False
        cut = slices(spec.split, random.Random(len(events)))
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
                    async for frame in fault_frames(fault, legacy, error_event):
                        yield frame
                    completed = True
                    return
                delay = pacing.first_token_ms if index == 0 else pacing.token_ms
                if delay:
                    if pending:  # what went unpaced so far goes out first, in order
                        yield b"".join(pending)
                        pending.clear()
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
                async for frame in fault_frames(fault, legacy, error_event):
                    yield frame
            completed = True
        finally:
            if completed:
                stats.streams_completed += 1
            else:
                stats.streams_aborted += 1

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
        stats = self.stats_for(name).as_dict()
        wake = self.wake_for(name)
        if wake is not None:
            stats["scale_to_zero"] = wake.as_dict()
        return Response(orjson.dumps(stats), media_type="application/json")

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
