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

from llm_gateway.backends.framing import LineDecoder, malformed
from llm_gateway.backends.tgi.errors import error_event
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
