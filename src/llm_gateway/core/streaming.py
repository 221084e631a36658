"""A blocking upstream byte stream as an async sequence of token events.

boto3 reads SageMaker's event stream with blocking sockets, so one worker thread per stream
reads ``PayloadPart`` bytes, decodes them (:class:`~llm_gateway.core.sse.StreamDecoder`) and
hands whole batches of events to the event loop. The loop side waits with a timeout, which is
how callers send heartbeats during silences, and can :meth:`TokenStream.close` the upstream at
any time (client gone): the socket is shut down so the worker wakes up at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Protocol

from llm_gateway.core.errors import GatewayError, upstream_error
from llm_gateway.core.sse import StreamDecoder, TokenEvent

log = logging.getLogger(__name__)


class UpstreamBody(Protocol):
    """What an upstream stream call returns: byte chunks, closable from another thread."""

    def __iter__(self) -> Iterable[bytes]: ...

    def close(self) -> None: ...


class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = _End()
TIMEOUT = None  # returned by TokenStream.next() when nothing arrived within the timeout

Item = TokenEvent | GatewayError | _End


class TokenStream:
    """Events of one upstream generation stream.

    ``next(timeout)`` returns a :class:`TokenEvent`, ``None`` on timeout, or raises the
    stream's :class:`GatewayError`; after the last token it raises ``StopAsyncIteration``.
    Timestamps (``time.perf_counter``): ``opened_at`` when the upstream answered,
    ``first_token_at`` when the first token arrived. ``TokenStream.active`` counts the worker
    threads still reading an upstream stream (tests check that none is left behind).
    """

    active = 0
    _active_lock = threading.Lock()

    def __init__(
        self,
        open_upstream: Callable[[], UpstreamBody],
        executor: Executor,
        decoder: Callable[[], StreamDecoder] = StreamDecoder,
    ) -> None:
        self._open_upstream = open_upstream
        self._decoder = decoder
        self._executor = executor
        self._queue: asyncio.Queue[list[Item]] = asyncio.Queue()
        self._pending: deque[Item] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._body: UpstreamBody | None = None
        self._closed = False
        self.started_at = time.perf_counter()
        self.opened_at: float | None = None
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.last_event: TokenEvent | None = None

    def start(self) -> TokenStream:
        self._loop = asyncio.get_running_loop()
        self.started_at = time.perf_counter()
        with TokenStream._active_lock:
            TokenStream.active += 1
        self._executor.submit(self._pump)
        return self

    # -- worker thread -------------------------------------------------------------------------

    def _post(self, items: list[Item]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, items)
        except RuntimeError:  # the loop shut down under us
            pass

    def _pump(self) -> None:
        decoder = self._decoder()
        body: UpstreamBody | None = None
        try:
            body = self._open_upstream()
            self.opened_at = time.perf_counter()
            self._body = body
            if self._closed:
                return
            for chunk in body:
                if self._closed:
                    return
                events = decoder.feed(chunk)
                if events:
                    self._post(events)
                if decoder.finished:
                    break
            if not decoder.finished:
                self._post(decoder.close())
        except GatewayError as exc:
            self._post([exc])
        except Exception as exc:  # a reader must never die silently
            if not self._closed:
                log.warning("upstream stream failed: %s", type(exc).__name__)
                self._post(
                    [upstream_error(f"The model endpoint stream failed ({type(exc).__name__})")]
                )
        finally:
            self._post([END])
            if body is not None:
                self._drain_and_close(body, decoder.finished)
            with TokenStream._active_lock:
                TokenStream.active -= 1

    def _drain_and_close(self, body: UpstreamBody, finished: bool) -> None:
        # After the last token TGI ends the body at once; reading it to the end lets the
        # connection go back to the pool. Anything else (error, client gone) aborts it.
        if finished and not self._closed:
            try:
                for _ in body:
                    if self._closed:
                        break
            except Exception:
                pass
        body.close()

    # -- event loop side -----------------------------------------------------------------------

    async def next(self, timeout: float | None) -> TokenEvent | None:
        if not self._pending:
            try:
                batch = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    batch = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    return TIMEOUT
            self._pending.extend(batch)
        item = self._pending[0]
        if item is END:
            self.finished_at = self.finished_at or time.perf_counter()
            raise StopAsyncIteration
        self._pending.popleft()
        if isinstance(item, GatewayError):
            self.finished_at = time.perf_counter()
            self._pending.appendleft(END)
            raise item
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.last_event = item
        return item

    def close(self) -> None:
        """Stop reading and abort the upstream connection (idempotent, any thread)."""
        if self._closed:
            return
        self._closed = True
        body = self._body
        if body is not None:
            try:
                body.close()
            except Exception:
                pass
