"""Decoding TGI's Server-Sent Events from SageMaker ``PayloadPart`` bytes.

SageMaker hands the container's byte stream over in arbitrary slices: one part may hold half
an event, several events, or half of a UTF-8 character. :class:`LineBuffer` reassembles
lines (splitting bytes on ``\\n`` is UTF-8 safe, and text is decoded only per whole line);
:class:`StreamDecoder` turns lines into :class:`TokenEvent` objects, reading both TGI 0.8.2
(``data:{…}``, no ``index``) and 3.x (``data: {…}``) shapes. This is protocol state only:
no I/O happens here.

>>> decoder = StreamDecoder()
>>> decoder.feed(b'data:{"token":{"id":1,"text":" Hi","logprob":-0.5,"special":false},')
[]
>>> [e.token["text"] for e in decoder.feed(b'"generated_text":null,"details":null}\\n\\n')]
[' Hi']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError, incomplete_stream, tgi_error, upstream_error


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


@dataclass(slots=True)
class TokenEvent:
    """One generated token, in TGI 3.x terms; the last one carries ``generated_text``."""

    index: int
    token: dict[str, Any]
    top_tokens: list[dict[str, Any]] | None = None
    generated_text: str | None = None
    details: dict[str, Any] | None = None  # upstream StreamDetails (last event only)

    @property
    def is_last(self) -> bool:
        return self.generated_text is not None

    @property
    def text(self) -> str:
        """What a reader sees of this token (special tokens such as EOS show nothing)."""
        return "" if self.token["special"] else self.token["text"]


def normalise_token(token: dict[str, Any]) -> dict[str, Any]:
    """A token in TGI's field order; tolerates ``log_prob`` (LMI) and missing ``special``."""
    logprob = token.get("logprob", token.get("log_prob"))
    return {
        "id": token.get("id"),
        "text": token.get("text") or "",
        "logprob": logprob,
        "special": bool(token.get("special", False)),
    }


# TGI's error texts start with their InferError's Display; ≥ 2.4.1 chat streams send only the
# text and a hard-coded 422, so the type is read back from the text.
_ERROR_PREFIXES = (
    ("Input validation error", "validation"),
    ("Template error", "template_error"),
    ("Tool error", "tool_error"),
    ("Model is overloaded", "overloaded"),
    ("Incomplete generation stream", "incomplete_generation_stream"),
    ("Incomplete generation", "incomplete_generation"),
)


def error_event(obj: dict[str, Any]) -> GatewayError:
    """A TGI error event: ``{"error": "…", "error_type": "…"}`` or, from TGI ≥ 2.4.1 chat
    streams, ``{"error": {"message": "…", "http_status_code": 422}}``."""
    error = obj["error"]
    if isinstance(error, dict):
        message = str(error.get("message", error))
        error_type = next((t for p, t in _ERROR_PREFIXES if message.startswith(p)), "generation")
        return tgi_error(message, error_type)
    return tgi_error(str(error), str(obj.get("error_type") or "generation"))


def malformed(detail: str) -> GatewayError:
    return upstream_error(f"The model endpoint sent an unreadable stream event: {detail}")


class StreamDecoder:
    """PayloadPart bytes in, :class:`TokenEvent` or a final :class:`GatewayError` out.

    After the last token or an error the decoder is ``finished`` and ignores further bytes.
    """

    __slots__ = ("_index", "_lines", "_started", "_texts", "finished")

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._index = 0
        self._started = False
        self._texts: list[str] = []
        self.finished = False

    def feed(self, chunk: bytes) -> list[TokenEvent | GatewayError]:
        if self.finished:
            return []
        out: list[TokenEvent | GatewayError] = []
        for line in self._lines.feed(chunk):
            event = self._line(line)
            if event is not None:
                out.append(event)
                if self.finished:
                    break
        return out

    def close(self) -> list[TokenEvent | GatewayError]:
        """End of the upstream body: flush a last unterminated line; a stream without its last
        token ends with TGI's ``Incomplete generation stream`` error."""
        if self.finished:
            return []
        out: list[TokenEvent | GatewayError] = []
        rest = self._lines.flush()
        if rest:
            event = self._line(rest)
            if event is not None:
                out.append(event)
        if not self.finished:
            self.finished = True
            out.append(incomplete_stream())
        return out

    def _line(self, line: bytes) -> TokenEvent | GatewayError | None:
        if not self._started:
            self._started = True
            if line.startswith(b"\xef\xbb\xbf"):  # SSE: a byte-order mark opening the stream
                line = line[3:]
        if not line or line[0] == 0x3A:  # blank separator or ":" comment / keep-alive
            return None
        if line.startswith(b"data:"):
            payload = line[6:] if line[5:6] == b" " else line[5:]
        elif line[0] == 0x7B:  # "{": a bare JSON line (NDJSON-framed containers)
            payload = line
        else:
            return None  # event:, id:, retry: fields carry nothing for TGI streams
        if payload == b"[DONE]":
            return self._done()
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return self._fail(malformed("invalid JSON"))
        if not isinstance(obj, dict):
            return self._fail(malformed("expected a JSON object"))
        return self._event(obj)

    def _event(self, obj: dict[str, Any]) -> TokenEvent | GatewayError:
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

    def _done(self) -> None:
        """``data: [DONE]``: generate streams never send it; tolerated and ignored."""
        return None

    def _fail(self, error: GatewayError) -> GatewayError:
        self.finished = True
        return error


@dataclass(slots=True)
class ChatChunk:
    """One ``chat.completion.chunk`` of TGI's Messages API, as the endpoint sent it."""

    data: dict[str, Any]
    is_last = False

    @property
    def text(self) -> str:
        return "".join(
            (c.get("delta") or {}).get("content") or ""
            for c in self.data["choices"]
            if isinstance(c, dict)
        )


class ChatChunkDecoder(StreamDecoder):
    """The same framing for TGI's Messages API streams: chunks until ``data: [DONE]``."""

    __slots__ = ("_saw_finish",)

    def __init__(self) -> None:
        super().__init__()
        self._saw_finish = False

    def _event(self, obj: dict[str, Any]) -> ChatChunk | GatewayError:  # type: ignore[override]
        if obj.get("error") is not None:
            return self._fail(error_event(obj))
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return self._fail(malformed("no choices"))
        if any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
            self._saw_finish = True
        return ChatChunk(obj)

    def _done(self) -> None:
        self.finished = True
        return None

    def close(self) -> list[TokenEvent | GatewayError]:
        if not self.finished and self._saw_finish:
            self.finished = True  # TGI < 2.2 ends chat streams without [DONE]
        return super().close()
