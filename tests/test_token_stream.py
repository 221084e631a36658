"""The core's TokenStream: the worker thread reads the upstream, the event loop hands events out.

The worker wakes the loop once per batch, not once per token (tokens read while a wake-up is in
flight ride along with it). These tests hold that the hand-over loses, reorders and duplicates
nothing while the two sides race, whatever the consumer's pace, and that a stream holding its
last word still releases it only after the end-of-stream work.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest

from llm_gateway.backends.tgi.stream import TGIStreamDecoder
from llm_gateway.core import streaming
from llm_gateway.core.events import TokenEvent
from llm_gateway.core.streaming import Tally, TokenStream
from llm_gateway.emulator import Emulator


def tgi_stream(n: int) -> list[bytes]:
    """TGI's SSE bytes for ``n`` tokens, the last with its details, one event per chunk."""
    chunks = []
    for i in range(1, n + 1):
        event: dict[str, object] = {
            "index": i,
            "token": {"id": i, "text": f" t{i}", "logprob": -0.5, "special": False},
            "generated_text": None,
            "details": None,
        }
        if i == n:
            event["generated_text"] = "".join(f" t{k}" for k in range(1, n + 1))
            event["details"] = {"finish_reason": "length", "generated_tokens": n, "seed": None}
        chunks.append(b"data: " + orjson.dumps(event) + b"\n\n")
    return chunks


class Body:
    """An upstream body: byte chunks, optionally split mid-event, closable from any thread."""

    def __init__(self, chunks: list[bytes], split: int | None = None) -> None:
        data = b"".join(chunks)
        self.chunks = [data[i : i + split] for i in range(0, len(data), split)] if split else chunks
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.closed.is_set():
                return
            yield chunk

    def close(self) -> None:
        self.closed.set()


async def read_all(stream: TokenStream, pace: float) -> list[TokenEvent]:
    out: list[TokenEvent] = []
    while True:
        try:
            event = await stream.next(5.0)
        except StopAsyncIteration:
            return out
        assert isinstance(event, TokenEvent), event
        out.append(event)
        more = stream.ready()
        out.extend(e for e in more if isinstance(e, TokenEvent))
        if pace:
            await asyncio.sleep(pace)  # a slow client: the worker runs ahead


@pytest.mark.parametrize("pace", [0.0, 0.002])
@pytest.mark.parametrize("split", [None, 7])
def test_every_token_arrives_once_and_in_order_while_the_worker_races_the_loop(
    pace: float, split: int | None
) -> None:
    n = 3000 if not pace else 400

    async def run() -> list[TokenEvent]:
        with ThreadPoolExecutor(2) as pool:
            streams = [
                TokenStream(lambda _s: (Body(tgi_stream(n), split), TGIStreamDecoder()), pool)
                for _ in range(2)
            ]
            # two streams at once on one loop, each with its own worker thread
            results = await asyncio.gather(*(read_all(s.start(), pace) for s in streams))
        assert results[0] == results[1]
        return results[0]

    events = asyncio.run(run())
    assert [e.index for e in events] == list(range(1, n + 1))
    assert events[-1].is_last and not any(e.is_last for e in events[:-1])


def test_a_held_last_word_waits_for_the_end_work_however_the_batches_fall() -> None:
    """``hold_last``: the last token is handed out only once ``on_end`` has returned, even when
    it arrived in the same batch as the tokens before it."""
    n = 500
    ended: list[float] = []

    def on_end(tally: Tally) -> None:
        time.sleep(0.05)  # e.g. settling a budget
        ended.append(time.perf_counter())

    async def run() -> tuple[list[TokenEvent], float, int]:
        with ThreadPoolExecutor(1) as pool:
            stream = TokenStream(
                lambda _s: (Body(tgi_stream(n)), TGIStreamDecoder()),
                pool,
                on_end=on_end,
                hold_last=True,
            ).start()
            out: list[TokenEvent] = []
            last_at = 0.0
            while True:
                try:
                    event = await stream.next(5.0)
                except StopAsyncIteration:
                    return out, last_at, stream.tally.tokens
                assert isinstance(event, TokenEvent)
                if event.is_last:
                    last_at = time.perf_counter()
                out.append(event)
                out.extend(e for e in stream.ready() if isinstance(e, TokenEvent))

    events, last_at, tallied = asyncio.run(run())
    assert [e.index for e in events] == list(range(1, n + 1))
    assert ended and last_at >= ended[0]
    assert tallied == n  # what settles the budget: every token the worker read


def test_a_finished_stream_gives_its_connection_back_to_the_pool(
    client: httpx.Client, emulator: Emulator
) -> None:
    """The relay closes a stream as soon as its last event is out, while the worker may still
    be reading the end of the upstream body. That close must not abort the connection: the
    worker reads the end and the connection goes back to the pool, so the calls that follow
    reuse it (on AWS a new connection is a TLS handshake). Counted at the emulator by the
    gateway's source ports; before, about one stream in three cost a new connection."""
    body = {"inputs": "Hi", "parameters": {"max_new_tokens": 5}}
    stats = emulator.stats_for("tgi3-endpoint")
    assert client.post("/models/tgi3/generate", json=body).status_code == 200
    before = set(stats.connections)
    for _ in range(30):
        with client.stream("POST", "/models/tgi3/generate_stream", json=body) as r:
            assert r.status_code == 200
            assert b'"generated_text":"' in r.read()
        assert client.post("/models/tgi3/generate", json=body).status_code == 200
    # a second connection, when a call starts before the worker has read the body's end
    assert len(stats.connections - before) <= 2, len(stats.connections - before)


class EndlessBody(Body):
    """An upstream that sends its last event and then never ends its body: only ``close``
    (aborting the connection) ends the read. One iterator, as a real body is: reading on
    after a ``break`` continues where it stopped."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__(chunks)
        self._reader = self._read()

    def _read(self) -> Iterator[bytes]:
        yield from self.chunks
        self.closed.wait(30)

    def __iter__(self) -> Iterator[bytes]:
        return self._reader


def test_a_body_that_never_ends_after_the_answer_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the answer is complete, closing the stream leaves the connection to the worker,
    which reads the body's end; an upstream that never ends it is cut off DRAIN_SECONDS after
    the close, so the worker (its in-flight slot, its budget settlement) is not held."""
    monkeypatch.setattr(streaming, "DRAIN_SECONDS", 0.2)
    body = EndlessBody(tgi_stream(5))
    ended = threading.Event()

    async def run() -> float:
        with ThreadPoolExecutor(1) as pool:
            stream = TokenStream(
                lambda _s: (body, TGIStreamDecoder()), pool, on_end=lambda _t: ended.set()
            ).start()
            events = await read_all(stream, 0.0)
            assert events[-1].is_last
            closed_at = time.perf_counter()
            stream.close()  # as the relay does once the last event is out
            assert not body.closed.is_set()  # not aborted at once: the worker drains
            while not ended.is_set():
                await asyncio.sleep(0.01)
            return time.perf_counter() - closed_at

    waited = asyncio.run(run())
    assert body.closed.is_set()  # cut off
    assert 0.15 <= waited < 5, waited
