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

import orjson

from llm_gateway.core.errors import GatewayError, request_error, upstream_error

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
