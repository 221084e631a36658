"""A blocking upstream byte stream as an async sequence of token events.

Transports read with blocking sockets (boto3), so one worker thread per stream reads the
upstream's bytes, decodes them with the backend's
:class:`~llm_gateway.core.events.EventDecoder` and hands whole batches of events to the event
loop. The loop side waits with a timeout, which is
how callers send heartbeats during silences, and can :meth:`TokenStream.close` the upstream at
any time (client gone): the socket is shut down so the worker wakes up at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from llm_gateway.core.errors import ErrorKind, GatewayError, upstream_error
from llm_gateway.core.events import (
    ChatChunk,
    Details,
    EventDecoder,
    StreamEvent,
    StreamItem,
    TokenEvent,
    TokenUsage,
)
from llm_gateway.core.ports import UpstreamBody

log = logging.getLogger(__name__)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = _End()
TIMEOUT = None  # returned by TokenStream.next() when nothing arrived within the timeout
DRAIN_CHUNKS = 4  # read after an answer's last event, waiting for the end of its body
DRAIN_SECONDS = 1.0  # after the consumer closed: an upstream that does not end its body is cut off

Item = StreamEvent | GatewayError | _End
# What opening an upstream stream gives: its bytes and the decoder for its protocol.
Opened = tuple[UpstreamBody, EventDecoder]


@dataclass(slots=True)
class Tally:
    """What the upstream sent, counted on the worker thread (whether or not the client read
    it): for settling budgets after the stream."""

    tokens: int = 0  # token events (generate) or content deltas (chat)
    details: Details | None = None  # the last token event's details
    usage: TokenUsage | None = None  # a chat stream's usage, as the upstream counted it
    opened: bool = False  # an upstream call was started
    finished: bool = False  # the upstream's answer ended (its last event, or end of body)
    failed: bool = False  # the upstream failed (no answer, or an error mid-stream)

    def add(self, items: list[StreamItem]) -> None:
        for item in items:
            if isinstance(item, TokenEvent):
                self.tokens += 1
                if item.details is not None:
                    self.details = item.details
            elif isinstance(item, ChatChunk):
                if item.usage is not None:
                    self.usage = item.usage
                self.tokens += bool(item.text)


class TokenStream:
    """Events of one upstream generation stream.

    ``next(timeout)`` returns a :class:`~llm_gateway.core.events.TokenEvent` (or, for chat
    streams, a :class:`~llm_gateway.core.events.ChatChunk`), ``None`` on timeout, or raises the
    stream's :class:`GatewayError`; after the last token it raises ``StopAsyncIteration``.
    Timestamps (``time.perf_counter``): ``started_at`` when the call began,
    ``first_token_at`` when the first token arrived, ``finished_at`` when it ended. ``TokenStream.active`` counts the worker
    threads still reading an upstream stream (tests check that none is left behind).
    """

    active = 0
    _active_lock = threading.Lock()

    def __init__(
        self,
        open_upstream: Callable[[TokenStream], Opened],
        executor: Executor,
        *,
        on_end: Callable[[Tally], None] | None = None,
        hold_last: bool = False,
        admitted: bool = True,
    ) -> None:
        """``on_end`` runs on the worker thread once the upstream is done, with what it sent.
        ``open_upstream`` runs on the worker thread (it may reserve a budget first, wait for a
        model scaling up from zero, or pick another model: it records that in ``warming`` and
        ``served_by``; it sets ``tally.opened`` when it calls the upstream). ``hold_last``:
        the stream's final item (the last token event, or its end) is handed out only after
        ``on_end`` has returned, so work done there (settling a budget) is finished before
        the client can read the last byte. ``admitted=False``: ``open_upstream`` first decides
        whether the request may run at all (a budget reservation) and calls :meth:`admit` once
        it may; until then :meth:`admission` waits, so a refusal is still known before a
        response commits, however slow the store."""
        self._open_upstream = open_upstream
        self._admitted = admitted
        self._on_end = on_end
        self._hold_last = hold_last
        self._ended = False  # on the loop: END has been delivered
        self.tally = Tally()
        self._executor = executor
        self.closed_event = threading.Event()  # set when the consumer closes the stream
        self.warming = False  # the model was found scaling up from zero
        self.warming_waited: float | None = None  # seconds waited for it to wake
        self.served_by: str | None = None  # the model that answered
        # Items delivered by the worker (on the loop thread) and the consumer's wake-up future:
        # cheaper per token than an asyncio.Queue with wait_for, which makes a task per wait.
        self._pending: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        # What the worker has read and the loop not yet taken. One wake-up of the loop is in
        # flight at a time: tokens read while it is pending ride along with it, instead of
        # each writing to the loop's self-pipe (the largest cost of an unpaced relay).
        self._inbox: list[Item] = []
        self._inbox_lock = threading.Lock()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._body: UpstreamBody | None = None
        self._closed = False
        # The upstream's last event has been read: only the end of its body is left, which the
        # worker reads so the connection goes back to the pool (closing must not abort it)...
        self._answered = False
        self._drained = False  # ... and has read (or the body is closed)
        self.started_at = time.perf_counter()
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.last_event: StreamEvent | None = None

    def start(self) -> TokenStream:
        self._loop = asyncio.get_running_loop()
        self.started_at = time.perf_counter()
        with TokenStream._active_lock:
            TokenStream.active += 1
        self._executor.submit(self._pump)
        return self

    # -- worker thread -------------------------------------------------------------------------

    def admit(self) -> None:
        """The request may run (its reservation succeeded): wake :meth:`admission`."""
        self._admitted = True
        self._post([])

    def _post(self, items: list[Item]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._inbox_lock:
            self._inbox.extend(items)
            if self._wake_pending:
                return  # the wake-up in flight delivers these too
            self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop shut down under us
            pass

    def _deliver(self) -> None:
        """On the loop thread: queue what the worker read and wake the consumer."""
        with self._inbox_lock:
            items, self._inbox = self._inbox, []
            self._wake_pending = False
        self._pending.extend(items)
        if items and isinstance(items[-1], _End):
            self._ended = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pump(self) -> None:
        decoder: EventDecoder | None = None
        body: UpstreamBody | None = None
        tally = self.tally
        try:
            if self._closed:  # the client left while this stream waited for a thread
                return
            body, decoder = self._open_upstream(self)
            self._body = body
            if self._closed:
                return
            for chunk in body:
                if self._closed:
                    return
                events = decoder.feed(chunk)
                if decoder.finished:  # set before the loop can see the last event and close
                    self._answered = True
                if events:
                    tally.add(events)
                    self._post(list(events))
                if decoder.finished:
                    break
            if not decoder.finished:
                if self._closed:
                    return
                self._post(list(decoder.close()))
            tally.finished = True
        except GatewayError as exc:
            # A timeout says nothing of what the model generated: not a failure to refund.
            tally.failed = not self._closed and exc.kind != ErrorKind.TIMEOUT
            self._post([exc])
        except Exception as exc:  # a reader must never die silently
            if not self._closed:
                tally.failed = True
                log.warning("upstream stream failed: %s", type(exc).__name__)
                self._post(
                    [upstream_error(f"The model endpoint stream failed ({type(exc).__name__})")]
                )
        finally:
            if not self._hold_last:
                self._post([END])
            if body is not None:
                self._drain_and_close(body)
            if self._on_end is not None:
                try:
                    self._on_end(tally)
                except Exception:  # accounting must never break a stream
                    log.exception("stream end accounting failed")
            if self._hold_last:
                self._post([END])
            with TokenStream._active_lock:
                TokenStream.active -= 1

    def _drain_and_close(self, body: UpstreamBody) -> None:
        # After its last event an upstream ends the body at once: reading that end returns the
        # connection to the pool, so the next call needs no new connection (on AWS, a TLS
        # handshake). A few chunks at most: a body that goes on is cut off. Anything else
        # (an error, a client gone before the answer) aborts the connection.
        if self._answered:
            try:
                for _ in itertools.islice(body, DRAIN_CHUNKS):
                    pass
            except Exception:
                pass
        self._drained = True
        body.close()

    # -- event loop side -----------------------------------------------------------------------

    def _held(self, item: Item) -> bool:
        """The stream's last word (its last token event, or an error) waits for the end and
        the work done before it."""
        if not self._hold_last or self._ended:
            return False
        return isinstance(item, GatewayError) or (isinstance(item, TokenEvent) and item.is_last)

    async def _wait(self, timeout: float | None) -> None:
        """Until the worker delivers something (or the stream ends), or ``timeout`` passes."""
        loop = self._loop or asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def next(self, timeout: float | None) -> StreamEvent | None:
        if not self._pending:
            await self._wait(timeout)
            if not self._pending:
                return TIMEOUT
        item = self._pending[0]
        if isinstance(item, _End):
            self.finished_at = self.finished_at or time.perf_counter()
            raise StopAsyncIteration
        if self._held(item):
            return await self._wait_for_end(timeout)
        self._pending.popleft()
        if isinstance(item, GatewayError):
            self.finished_at = time.perf_counter()
            self._pending.appendleft(END)
            raise item
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.last_event = item
        return item

    async def _wait_for_end(self, timeout: float | None) -> StreamEvent | None:
        """Hold the stream's last word until its end has been delivered."""
        loop = self._loop or asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._ended:
            await self._wait(None if deadline is None else max(deadline - loop.time(), 0.0))
            if not self._ended and deadline is not None and loop.time() >= deadline:
                return TIMEOUT
        return await self.next(timeout)

    async def admission(self, timeout: float | None) -> None:
        """Until the request is admitted, or refused (its error is then pending for
        :meth:`next`), or ``timeout`` passes."""
        loop = self._loop or asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._admitted and not self._pending:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            await self._wait(left)

    def ready(self) -> list[StreamEvent]:
        """The token events that have already arrived (no waiting): a relay sends them in one
        write. Stops before an error or the end, which :meth:`next` then reports."""
        out: list[StreamEvent] = []
        pending = self._pending
        while pending:
            item = pending[0]
            if isinstance(item, GatewayError | _End) or self._held(item):
                break
            out.append(item)
            pending.popleft()
        if out:
            self.last_event = out[-1]
        return out

    async def finish(self, timeout: float = 1.0) -> None:
        """Close the upstream and, when the stream holds its last word (``hold_last``), wait
        (at most ``timeout``) until the worker's end work is done: a stream ended early (a
        deadline) then settles before its final frame, as a complete one does."""
        self.close()
        if not self._hold_last or self._loop is None:
            return
        deadline = self._loop.time() + timeout
        while not self._ended and (left := deadline - self._loop.time()) > 0:
            await self._wait(left)

    def close(self) -> None:
        """Stop reading and abort the upstream connection (idempotent, any thread); once the
        answer is complete the worker reads the body's end instead, keeping the connection."""
        if self._closed:
            return
        self._closed = True
        self.closed_event.set()
        body = self._body
        if body is None:
            return
        if not self._answered:
            _abort(body)
            return
        # The worker reads the body's end; an upstream that never ends it is cut off later.
        loop = self._loop
        if self._drained or loop is None or loop.is_closed():
            return
        try:
            if _running_loop() is loop:
                loop.call_later(DRAIN_SECONDS, self._cut_off, body)
            else:
                loop.call_soon_threadsafe(loop.call_later, DRAIN_SECONDS, self._cut_off, body)
        except RuntimeError:  # the loop shut down under us
            _abort(body)

    def _cut_off(self, body: UpstreamBody) -> None:
        if not self._drained:
            _abort(body)


def _abort(body: UpstreamBody) -> None:
    try:
        body.close()
    except Exception:
        pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
