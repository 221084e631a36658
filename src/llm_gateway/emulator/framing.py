"""The bytes an OpenAI-style container puts on the wire: SSE or JSON Lines framing, and its
error bodies (vLLM nested or flat, SGLang flat, LMI's Gson-written ``{"error", "code"}``).

>>> sse([{"a": 1}], keep_alive=True)
[b': keep-alive\\n\\ndata: {"a":1}\\n\\n', b': keep-alive\\n\\ndata: [DONE]\\n\\n']
>>> gson({"error": "Input parsing failed: it's <bad>", "code": 424})
b'{"error":"Input parsing failed: it\\\\u0027s \\\\u003cbad\\\\u003e","code":424}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

Shape = Literal["nested", "flat"]
KEEP_ALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


@dataclass
class ContainerAnswer:
    """What the container behind an endpoint answered: SageMaker relays a 200 body as is (in
    PayloadParts when streaming) and turns any other status into a ``ModelError``."""

    status: int
    events: list[bytes]  # the body, in the pieces the container writes (one per token)
    content_type: str = "application/json"
    streamed: bool = False  # the container streams (mid-stream faults apply)
    # this container's own mid-stream error event, from a message and a status
    error_event: Callable[[str | None, int], bytes] | None = None

    @property
    def body(self) -> str:
        return b"".join(self.events).decode("utf-8", "replace")


def sse(chunks: list[dict[str, Any]], *, keep_alive: bool = False) -> list[bytes]:
    """``data: {compact json}\\n\\n`` per chunk, then ``data: [DONE]``."""
    prefix = KEEP_ALIVE if keep_alive else b""
    events = [prefix + b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    return [*events, prefix + DONE]


def error_info(message: str, type: str, code: int, *, flat: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"object": "error"} if flat else {}
    return {**info, "message": message, "type": type, "param": None, "code": code}


def error_body(message: str, type: str, code: int, shape: Shape) -> bytes:
    """vLLM >= 0.10.1 (nested) or older vLLM and SGLang (flat) ``ErrorResponse``."""
    if shape == "nested":
        return orjson.dumps({"error": error_info(message, type, code, flat=False)})
    return orjson.dumps(error_info(message, type, code, flat=True))


def stream_error(message: str, type: str, code: int, shape: Shape) -> bytes:
    """The in-stream error event (Python ``json.dumps``, so with spaces); the inner object is
    the ``ErrorResponse``'s dump, which carries ``object`` in the flat shape."""
    info = error_info(message, type, code, flat=shape == "flat")
    return b"data: " + json.dumps({"error": info}).encode() + b"\n\n"


def error_type(code: int) -> str:
    return {400: "BadRequestError", 404: "NotFoundError"}.get(code, "InternalServerError")


_GSON_ESCAPES = {b"<": b"\\u003c", b">": b"\\u003e", b"&": b"\\u0026", b"=": b"\\u003d"}


def gson(value: dict[str, Any]) -> bytes:
    """JSON as DJL Serving's default Gson writes it: compact, HTML characters escaped."""
    out = orjson.dumps(value).replace(b"'", b"\\u0027")
    for raw, escaped in _GSON_ESCAPES.items():
        out = out.replace(raw, escaped)
    return out
