"""Decoding TGI's generate stream (Server-Sent Events) into the core's token events.

Reads both TGI 0.8.2 (``data:{…}``, no ``index``) and 3.x (``data: {…}``) shapes, and LMI's
tolerated variants (``log_prob``, a missing ``special``, JSON Lines framing). Protocol state
only: no I/O happens here.

>>> decoder = TGIStreamDecoder()
>>> decoder.feed(b'data:{"token":{"id":1,"text":" Hi","logprob":-0.5,"special":false},')
[]
>>> [e.token.text for e in decoder.feed(b'"generated_text":null,"details":null}\\n\\n')]
[' Hi']
"""

from __future__ import annotations

from typing import Any

from llm_gateway.backends.framing import LineDecoder, malformed
from llm_gateway.backends.tgi.errors import error_event
from llm_gateway.backends.tgi.tokens import details as read_details
from llm_gateway.backends.tgi.tokens import token as read_token
from llm_gateway.backends.tgi.tokens import tokens as read_tokens
from llm_gateway.core.events import StreamItem, TokenEvent


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
        sent = obj.get("token")
        if not isinstance(sent, dict):
            return self._fail(malformed("no token"))
        index = obj.get("index")
        self._index = index if isinstance(index, int) else self._index + 1
        top = obj.get("top_tokens")
        token = read_token(sent)
        generated_text = obj.get("generated_text")
        if not isinstance(generated_text, str):
            generated_text = None
        details = obj.get("details")
        details = None if details is None else read_details(details)
        if not token.special:
            self._texts.append(token.text)
        if generated_text is None and details is not None and details.finish_reason:
            # TGI always names the full text on its last event; a server that only sends the
            # finish details still ends the stream, with the text its tokens spelled.
            generated_text = "".join(self._texts)
        event = TokenEvent(
            self._index, token, read_tokens(top) if top else None, generated_text, details
        )
        if generated_text is not None:
            self.finished = True
        return event
