"""Relaying a token stream to the client as Server-Sent Events.

:func:`stream_response` waits briefly for the first token: if the stream fails inside that
window the client gets a plain HTTP error with the right status (TGI itself would answer 200
and an error event); otherwise the response head goes out with the first token, or with an SSE
comment when the model is still silent, so clients with short read timeouts see bytes at once.
While the upstream is silent a comment heartbeat goes out every ``heartbeat`` seconds, because
API Gateway drops streams idle for 30 s. After the head, failures are one error event in the
dialect's shape and the stream ends. A client that hangs up closes the upstream at once.

Encoders return frames (:mod:`llm_gateway.http.frames`); :func:`wire` here is the one place
their SSE bytes are spelled. All frames of one encoder call, and of the events that arrived
together, go out in one write.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from llm_gateway.core.errors import GatewayError, deadline_error, incomplete_stream
from llm_gateway.core.events import TokenUsage
from llm_gateway.core.streaming import TokenStream
from llm_gateway.http.dialect import StreamEncoder
from llm_gateway.http.frames import Comment, Frame
from llm_gateway.http.state import request_state
from llm_gateway.http.timing import Timing
from llm_gateway.observability.record import RequestRecord

WAITING = Comment("waiting for the model")
WAITING_TO_WAKE = Comment("waiting for the model to scale up")
SERVED_BY = "x-llm-gateway-served-by"  # names the model that answered when a fallback did
SSE_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def wire(frames: Iterable[Frame | Comment]) -> bytes:
    """The bytes of ``frames``, the one place SSE is spelled: an event is ``event: <name>``
    when named, then ``data: <data>`` and the blank line; a comment is ``:`` and its text.

    >>> wire([Frame(b"{}", "ping"), Frame(b"[DONE]")])
    b'event: ping\\ndata: {}\\n\\ndata: [DONE]\\n\\n'
    >>> wire([Comment("waiting for the model"), Comment()]), wire(())
    (b': waiting for the model\\n\\n:\\n\\n', b'')
    """
    out = []
    for frame in frames:
        if isinstance(frame, Frame):
            event = frame.event
            if event is None:
                out.append(b"data: " + frame.data + b"\n\n")
            else:
                out.append(b"event: " + event.encode() + b"\ndata: " + frame.data + b"\n\n")
        elif frame.text:
            out.append(b": " + frame.text.encode() + b"\n\n")
        else:
            out.append(b":\n\n")
    return b"".join(out)


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


def count_tokens(record: RequestRecord, usage: TokenUsage | None) -> None:
    """An answer's usage in the request's record (an estimated prompt is not a count)."""
    if usage is not None:
        record.generated_tokens = usage.completion_tokens
        if not usage.prompt_estimated:
            record.input_tokens = usage.prompt_tokens


def _account(
    record: RequestRecord, stream: TokenStream, encoder: StreamEncoder, timing: Timing
) -> None:
    """What the stream did, for metrics and the log line."""
    if stream.first_token_at is not None:
        record.ttft_seconds = stream.first_token_at - timing.start
    record.upstream_seconds = (stream.finished_at or time.perf_counter()) - stream.started_at
    count_tokens(record, encoder.token_usage)
    record.failover(stream.served_by, stream.warming, stream.warming_waited)


def _answer_as(encoder: StreamEncoder, stream: TokenStream, record: RequestRecord) -> bool:
    """Once the first event is in: a fallback that answered is named in the dialect's answers
    (OpenAI's ``model``), through the encoder's ``answer_as``."""
    served = stream.served_by
    if served is not None and served != record.model:
        encoder.answer_as(served)
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
    # A dialect may keep a silent stream alive with its own event (e.g. Anthropic's ping).
    keepalive = wire(encoder.heartbeat())
    try:
        if first is None:
            # A dialect may owe its client events before any token (e.g. message_start).
            yield wire([WAITING_TO_WAKE if stream.warming else WAITING, *encoder.opening()])
        else:
            renamed = _answer_as(encoder, stream, record)
            if output is not None:
                output.append(first.text)
            yield wire(encoder.event(first))
        while True:
            wait = heartbeat
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:  # end cleanly before API Gateway or Lambda cut us off
                    error = deadline_error()
                    record.fail(error, in_stream=True)
                    await stream.finish()  # on Lambda: settled before the final frame
                    yield wire(encoder.error(error))
                    return
            try:
                event = await stream.next(wait)
            except StopAsyncIteration:
                break
            except GatewayError as error:
                record.fail(error, in_stream=True)
                yield wire(encoder.error(error))
                return
            if event is None:
                if deadline is None or time.monotonic() < deadline:
                    yield keepalive
                continue
            if not renamed:
                renamed = _answer_as(encoder, stream, record)
            # Whatever else has already arrived goes out in the same write.
            more = stream.ready()
            if output is not None:
                output.append(event.text)
                output.extend(e.text for e in more)
            if more:
                frames = [*encoder.event(event)]
                for ready in more:
                    frames += encoder.event(ready)
                yield wire(frames)
            else:
                yield wire(encoder.event(event))
        yield wire(encoder.end())
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

    The window starts once the request is admitted (its budget reserved): a refusal is always
    an answer with its status (429), never an event in a committed stream, even when the
    budget store is slow. Raises the stream's :class:`GatewayError` if it fails before the
    commit, so the caller's error handling answers with a status code.
    """
    record.stream = True
    await stream.admission(None if deadline is None else deadline - time.monotonic())
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
