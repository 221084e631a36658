"""Relaying a token stream to the client as Server-Sent Events.

:func:`stream_response` waits briefly for the first token: if the stream fails inside that
window the client gets a plain HTTP error with the right status (TGI itself would answer 200
and an error event); otherwise the response head goes out with the first token, or with an SSE
comment when the model is still silent, so clients with short read timeouts see bytes at once.
While the upstream is silent a comment heartbeat goes out every ``heartbeat`` seconds, because
API Gateway drops streams idle for 30 s. After the head, failures are one error event in the
dialect's shape and the stream ends. A client that hangs up closes the upstream at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from llm_gateway.core.errors import GatewayError, deadline_error, incomplete_stream
from llm_gateway.core.events import TokenEvent
from llm_gateway.core.streaming import TokenStream
from llm_gateway.http.dialect import StreamEncoder
from llm_gateway.http.state import request_state
from llm_gateway.http.timing import Timing
from llm_gateway.observability.record import RequestRecord

HEARTBEAT = b":\n\n"
WAITING = b": waiting for the model\n\n"
WAITING_TO_WAKE = b": waiting for the model to scale up\n\n"
SERVED_BY = "x-llm-gateway-served-by"  # names the model that answered when a fallback did
SSE_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class SSEResponse(StreamingResponse):
    """A streaming response that always watches for the client hanging up and always runs
    ``on_close`` (which closes the upstream), whichever side ends first."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(content, headers=SSE_HEADERS)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = request_state(scope).record
        relayed = False
        try:
            async with anyio.create_task_group() as group:

                async def relay() -> None:
                    nonlocal relayed
                    try:
                        await self.stream_response(send)
                        relayed = True
                    except OSError:  # client gone (ASGI servers speaking spec 2.4)
                        pass
                    group.cancel_scope.cancel()

                async def watch() -> None:
                    await self.listen_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(relay)
                group.start_soon(watch)
        finally:
            if not relayed:
                record.disconnected = True
            self._on_close()
            iterator = self.body_iterator
            if hasattr(iterator, "aclose"):
                with anyio.CancelScope(shield=True):
                    await iterator.aclose()


def _account(
    record: RequestRecord, stream: TokenStream, encoder: StreamEncoder, timing: Timing
) -> None:
    """What the stream did, for metrics and the log line."""
    if stream.first_token_at is not None:
        record.ttft_seconds = stream.first_token_at - timing.start
    record.upstream_seconds = (stream.finished_at or time.perf_counter()) - stream.started_at
    last = stream.last_event
    if isinstance(last, TokenEvent) and last.is_last:
        record.tokens_from_details(last.details)
    record.tokens_from_usage(getattr(encoder, "usage", None))
    record.failover(stream.served_by, stream.warming, stream.warming_waited)


def _answer_as(encoder: StreamEncoder, stream: TokenStream, record: RequestRecord) -> bool:
    """Once the first event is in: a fallback that answered is named in the dialect's answers
    (OpenAI's ``model``), through the encoder's optional ``answer_as``."""
    served = stream.served_by
    if served is not None and served != record.model:
        answer_as = getattr(encoder, "answer_as", None)
        if callable(answer_as):
            answer_as(served)
    return True


async def _relay(
    stream: TokenStream,
    first: Any,
    encoder: StreamEncoder,
    heartbeat: float,
    record: RequestRecord,
    timing: Timing,
    deadline: float | None,
) -> AsyncIterator[bytes]:
    output = record.output
    renamed = False
    try:
        if first is None:
            # A dialect may owe its client events before any token (optional ``opening``).
            opening = getattr(encoder, "opening", None)
            yield (WAITING_TO_WAKE if stream.warming else WAITING) + (
                opening() if callable(opening) else b""
            )
        else:
            renamed = _answer_as(encoder, stream, record)
            if output is not None:
                output.append(first.text)
            yield encoder.event(first)
        while True:
            wait = heartbeat
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:  # end cleanly before API Gateway or Lambda cut us off
                    error = deadline_error()
                    record.fail(error, in_stream=True)
                    yield encoder.error(error)
                    return
            try:
                event = await stream.next(wait)
            except StopAsyncIteration:
                break
            except GatewayError as error:
                record.fail(error, in_stream=True)
                yield encoder.error(error)
                return
            if event is None:
                if deadline is None or time.monotonic() < deadline:
                    yield HEARTBEAT
                continue
            if not renamed:
                renamed = _answer_as(encoder, stream, record)
            # Whatever else has already arrived goes out in the same write.
            more = stream.ready()
            if output is not None:
                output.append(event.text)
                output.extend(e.text for e in more)
            if more:
                yield b"".join([encoder.event(event), *(encoder.event(e) for e in more)])
            else:
                yield encoder.event(event)
        yield encoder.end()
    finally:
        stream.close()
        _account(record, stream, encoder, timing)


async def stream_response(
    stream: TokenStream,
    encoder: StreamEncoder,
    *,
    timing: Timing,
    record: RequestRecord,
    commit_after: float,
    heartbeat: float,
    deadline: float | None = None,
) -> SSEResponse:
    """Commit the response when the first token arrives or ``commit_after`` passes.

    Raises the stream's :class:`GatewayError` if it fails before that, so the caller's error
    handling answers with a status code.
    """
    record.stream = True
    if deadline is not None:
        commit_after = max(min(commit_after, deadline - time.monotonic()), 0.0)
    try:
        first = await stream.next(commit_after)
    except GatewayError:
        stream.close()
        _account(record, stream, encoder, timing)
        raise
    except StopAsyncIteration:
        stream.close()
        raise incomplete_stream() from None
    if first is not None and stream.first_token_at is not None:
        timing.ttft = stream.first_token_at - timing.start
        timing.upstream = stream.first_token_at - stream.started_at
    else:
        timing.upstream = time.perf_counter() - stream.started_at
    relay = _relay(stream, first, encoder, heartbeat, record, timing, deadline)
    return SSEResponse(relay, on_close=stream.close)
