"""What a dialect's stream encoder returns: frames, not bytes.

A :class:`Frame` is one Server-Sent Event (its JSON ``data`` and, when named, its ``event``);
a :class:`Comment` is an SSE comment (heartbeats, "waiting for the model"). One encoder call
returns :data:`Frames`, as many events as the call owes (Anthropic's ``content_block_start``
and first ``content_block_delta``; OpenAI's finish chunk, usage chunk and ``[DONE]``), and
``()`` when it owes none. :mod:`llm_gateway.http.sse` alone turns them into bytes
(:func:`llm_gateway.http.sse.wire`), so no dialect spells the SSE format.

Both are slots dataclasses, not frozen: an encoder makes one frame per token, and a frozen
dataclass's ``__init__`` costs about 2.5 times a plain one's. Nobody changes a frame once made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Frame:
    """One SSE event: ``data`` (one line: compact JSON, or ``[DONE]``) and its ``event`` name."""

    data: bytes
    event: str | None = None


@dataclass(slots=True)
class Comment:
    """An SSE comment: clients ignore it; it keeps a silent stream alive (``text`` on one line)."""

    text: str = ""


Frames = Sequence[Frame | Comment]
