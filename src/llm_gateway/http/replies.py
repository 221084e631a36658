"""What route handlers return, and the one place that turns it into a response.

Handlers return a :class:`JSONReply`, a :class:`StreamReply` or an :class:`EmptyReply`;
:func:`respond` renders it, and accounts for what the request did (upstream time, tokens,
output for prompt logging) in the request's record and ``Server-Timing``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llm_gateway.core.events import StreamEvent, TokenUsage
from llm_gateway.core.pipeline import collect, stream_seconds
from llm_gateway.core.streaming import TokenStream
from llm_gateway.http.dialect import StreamEncoder
from llm_gateway.http.frames import Frames
from llm_gateway.http.sse import count_tokens, stream_response
from llm_gateway.http.state import request_state


class JSONBytesResponse(Response):
    """JSON encoded with orjson (compact, UTF-8, like serde_json)."""

    media_type = "application/json"


@dataclass(frozen=True, slots=True)
class Accounting:
    """What a buffered answer cost upstream: for metrics, logs and ``Server-Timing``."""

    upstream_seconds: float
    usage: TokenUsage | None = None  # None: nothing to count (the upstream sent no counts)
    texts: Sequence[str] = ()  # the answer's text(s), logged only when prompts may be


@dataclass(frozen=True, slots=True)
class JSONReply:
    content: Any
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    accounting: Accounting | None = None


@dataclass(frozen=True, slots=True)
class StreamReply:
    stream: TokenStream
    encoder: StreamEncoder
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmptyReply:
    status: int = 200


Reply = JSONReply | StreamReply | EmptyReply


@dataclass(frozen=True, slots=True)
class StreamSettings:
    commit_after: float
    heartbeat: float


class BufferingEncoder(Protocol):
    """A stream encoder that can also build a buffered answer (its frames are dropped then;
    an encoder built for it makes none)."""

    def event(self, event: StreamEvent) -> Frames: ...

    def answer_as(self, model: str) -> None: ...

    def end(self) -> Frames: ...


async def drain(stream: TokenStream, encoder: BufferingEncoder, deadline: float | None) -> float:
    """A buffered answer from a stream: every event, collected within ``deadline``, through
    ``encoder`` (which names a fallback that answered); the seconds the upstream took."""
    events = await collect(stream, deadline)
    if stream.served_by is not None:  # a fallback answered
        encoder.answer_as(stream.served_by)
    for event in events:
        encoder.event(event)
    encoder.end()
    return stream_seconds(stream)


def account(request: Request, accounting: Accounting) -> None:
    state = request_state(request.scope)
    record = state.record
    state.timing.upstream = record.upstream_seconds = accounting.upstream_seconds
    count_tokens(record, accounting.usage)
    if record.output is not None:
        record.output.extend(accounting.texts)


async def respond(reply: Reply, request: Request, settings: StreamSettings) -> Response:
    if isinstance(reply, JSONReply):
        if reply.accounting is not None:
            account(request, reply.accounting)
        return JSONBytesResponse(
            orjson.dumps(reply.content), status_code=reply.status, headers=dict(reply.headers)
        )
    if isinstance(reply, StreamReply):
        state = request_state(request.scope)
        response = await stream_response(
            reply.stream,
            reply.encoder,
            timing=state.timing,
            record=state.record,
            deadline=state.deadline,
            commit_after=settings.commit_after,
            heartbeat=settings.heartbeat,
        )
        response.headers.update(reply.headers)
        return response
    return Response(status_code=reply.status)
