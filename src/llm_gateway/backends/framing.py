"""Byte framing shared by the backends: whole lines out of chunks split anywhere, and the
payload of one Server-Sent Events (or JSON Lines) line.

SageMaker hands the container's byte stream over in arbitrary slices: one part may hold half
an event, several events, or half of a UTF-8 character. Splitting bytes on ``\\n`` is UTF-8
safe, and text is decoded only per whole line.

>>> lines = LineBuffer()
>>> lines.feed(b"data: {}\\r\\nda"), lines.feed(b"ta: [DONE]\\n")
([b'data: {}'], [b'data: [DONE]'])
>>> sse_payload(b"data:{}"), sse_payload(b": keep-alive"), sse_payload(b'{"a":1}')
(b'{}', None, b'{"a":1}')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.backends.chunks import chat_chunk
from llm_gateway.core.errors import GatewayError, incomplete_stream, request_error, upstream_error
from llm_gateway.core.events import StreamItem

BOM = b"\xef\xbb\xbf"


class LineBuffer:
    """Complete lines out of byte chunks split anywhere; a ``\\r`` before ``\\n`` is dropped."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            if chunk:
                self._pending.append(chunk)
            return []
        if self._pending:
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending.clear()
        *lines, rest = chunk.split(b"\n")
        if rest:
            self._pending.append(rest)
        return [line[:-1] if line.endswith(b"\r") else line for line in lines]

    def flush(self) -> bytes:
        """What is left at the end of the stream (a last line without its newline)."""
        rest = b"".join(self._pending)
        self._pending.clear()
        return rest[:-1] if rest.endswith(b"\r") else rest


def sse_payload(line: bytes) -> bytes | None:
    """The data of one line: ``data:`` with or without its space (TGI 0.8.2 had none), or a
    bare JSON object line (JSON Lines containers); ``None`` for blank lines, ``:`` comments
    (keep-alives) and the ``event:``/``id:``/``retry:`` fields."""
    if not line or line[0] == 0x3A:
        return None
    if line.startswith(b"data:"):
        return line[6:] if line[5:6] == b" " else line[5:]
    if line[0] == 0x7B:  # "{"
        return line
    return None


def malformed(detail: str) -> GatewayError:
    return upstream_error(f"The model endpoint sent an unreadable stream event: {detail}")


def dumps_request(payload: object) -> bytes:
    """Serialise an upstream body; JSON nested deeper than the encoder allows is the client's
    doing (parsing allows 1024 levels, encoding 254), so it is a 422, not a crash."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:
        raise request_error(f"The request cannot be forwarded: {exc}") from None


class LineDecoder:
    """The framing every line-based upstream stream shares: lines out of parts, a byte-order
    mark dropped, the payload of each line handed to :meth:`_payload`, and ``finished`` once
    the last event or an error went out."""

    __slots__ = ("_lines", "_started", "finished")

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._started = False
        self.finished = False

    def feed(self, chunk: bytes) -> list[StreamItem]:
        if self.finished:
            return []
        out: list[StreamItem] = []
        for line in self._lines.feed(chunk):
            item = self._line(line)
            if item is not None:
                out.append(item)
                if self.finished:
                    break
        return out

    def close(self) -> list[StreamItem]:
        """End of the upstream body: flush a last unterminated line; a stream without its last
        event ends with :meth:`_cut_short`'s error."""
        if self.finished:
            return []
        out: list[StreamItem] = []
        rest = self._lines.flush()
        if rest:
            item = self._line(rest)
            if item is not None:
                out.append(item)
        if not self.finished:
            self.finished = True
            cut = self._cut_short()
            if cut is not None:
                out.append(cut)
        return out

    def _line(self, line: bytes) -> StreamItem | None:
        if not self._started:
            self._started = True
            if line.startswith(BOM):  # SSE: a byte-order mark opening the stream
                line = line[3:]
        payload = sse_payload(line)
        if payload is None:
            return None
        if payload == b"[DONE]":
            return self._done()
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return self._fail(malformed("invalid JSON"))
        if not isinstance(obj, dict):
            return self._fail(malformed("expected a JSON object"))
        return self._payload(obj)

    def _payload(self, obj: dict[str, Any]) -> StreamItem:
        raise NotImplementedError

    def _done(self) -> StreamItem | None:
        return None

    def _cut_short(self) -> GatewayError | None:
        """The error for a body that ended before the stream's last event (None: it is done)."""
        return incomplete_stream()

    def _fail(self, error: GatewayError) -> GatewayError:
        self.finished = True
        return error


class ChatChunkDecoder(LineDecoder):
    """``chat.completion.chunk`` events, typed (TGI's Messages API and the
    OpenAI servers share the shape; ``read_error`` reads each one's error events). The stream
    ends at ``data: [DONE]``, or at the end of the body after a finish reason (TGI < 2.2 and
    LMI's JSON Lines send no ``[DONE]``)."""

    __slots__ = ("_read_error", "_saw_finish")

    def __init__(self, read_error: Callable[[dict[str, Any]], GatewayError]) -> None:
        super().__init__()
        self._read_error = read_error
        self._saw_finish = False

    def _payload(self, obj: dict[str, Any]) -> StreamItem:
        if obj.get("error") is not None:
            return self._fail(self._read_error(obj))
        chunk = chat_chunk(obj)
        if chunk is None:
            return self._fail(malformed("no choices"))
        if any(c.finish_reason for c in chunk.choices):
            self._saw_finish = True
        return chunk

    def _done(self) -> None:
        self.finished = True
        return None

    def _cut_short(self) -> GatewayError | None:
        return None if self._saw_finish else incomplete_stream()
