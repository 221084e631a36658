"""Decoding TGI's generate stream (Server-Sent Events) into the core's token events.

Reads both TGI 0.8.2 (``data:{…}``, no ``index``) and 3.x (``data: {…}``) shapes, and LMI's
tolerated variants (``log_prob``, a missing ``special``, JSON Lines framing). Protocol state
only: no I/O happens here.

>>> decoder = TGIStreamDecoder()
>>> decoder.feed(b'data:{"token":{"id":1,"text":" Hi","logprob":-0.5,"special":false},')
[]
>>> [e.token["text"] for e in decoder.feed(b'"generated_text":null,"details":null}\\n\\n')]
[' Hi']
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.backends.framing import BOM, LineBuffer, malformed, sse_payload
from llm_gateway.backends.tgi.errors import error_event, incomplete_stream
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import StreamItem, TokenEvent


def normalise_token(token: dict[str, Any]) -> dict[str, Any]:
    """A token in TGI's field order; tolerates ``log_prob`` (LMI) and missing ``special``."""
    logprob = token.get("logprob", token.get("log_prob"))
    return {
        "id": token.get("id"),
        "text": token.get("text") or "",
        "logprob": logprob,
        "special": bool(token.get("special", False)),
    }


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
            out.append(self._cut_short())
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

    def _cut_short(self) -> GatewayError:
        return incomplete_stream()

    def _fail(self, error: GatewayError) -> GatewayError:
        self.finished = True
        return error


class TGIStreamDecoder(LineDecoder):
    """TGI's ``StreamResponse`` events; ``data: [DONE]`` (never sent by generate streams) is
    tolerated and ignored."""

    __slots__ = ("_index", "_texts")

    def __init__(self) -> None:
        super().__init__()
        self._index = 0
        self._texts: list[str] = []

    def _payload(self, obj: dict[str, Any]) -> StreamItem:
        if obj.get("error") is not None:
            return self._fail(error_event(obj))
        token = obj.get("token")
        if not isinstance(token, dict):
            return self._fail(malformed("no token"))
        index = obj.get("index")
        self._index = index if isinstance(index, int) else self._index + 1
        top = obj.get("top_tokens")
        token = normalise_token(token)
        generated_text = obj.get("generated_text")
        details = obj.get("details")
        if not token["special"]:
            self._texts.append(token["text"])
        if generated_text is None and isinstance(details, dict) and details.get("finish_reason"):
            # TGI always names the full text on its last event; a server that only sends the
            # finish details still ends the stream, with the text its tokens spelled.
            generated_text = "".join(self._texts)
        event = TokenEvent(
            index=self._index,
            token=token,
            top_tokens=[normalise_token(t) for t in top] if top else None,
            generated_text=generated_text,
            details=details,
        )
        if generated_text is not None:
            self.finished = True
        return event
