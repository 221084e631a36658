"""The core's typed stream events: what a backend decodes an upstream's bytes into.

A generation stream is a run of :class:`TokenEvent` (the last one carries ``generated_text``
and the finish ``details``); a chat stream is a run of :class:`ChatChunk` (one
``chat.completion.chunk`` as the upstream sent it). Either may end with a
:class:`~llm_gateway.core.errors.GatewayError` instead. Dialects encode these; no wire format
lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from llm_gateway.core.errors import GatewayError


@dataclass(slots=True)
class TokenEvent:
    """One generated token; the last one carries ``generated_text`` and ``details``.

    ``token`` is ``{"id", "text", "logprob", "special"}``; ``details`` holds ``finish_reason``
    (``eos_token`` | ``stop_sequence`` | ``length``), ``generated_tokens``, ``seed`` and, when
    the upstream counted it, ``input_length``.
    """

    index: int
    token: dict[str, Any]
    top_tokens: list[dict[str, Any]] | None = None
    generated_text: str | None = None
    details: dict[str, Any] | None = None  # last event only

    @property
    def is_last(self) -> bool:
        return self.generated_text is not None

    @property
    def text(self) -> str:
        """What a reader sees of this token (special tokens such as EOS show nothing)."""
        return "" if self.token["special"] else str(self.token["text"])


@dataclass(slots=True)
class ChatChunk:
    """One ``chat.completion.chunk`` of an upstream chat stream, as the upstream sent it."""

    data: dict[str, Any]
    is_last = False

    @property
    def text(self) -> str:
        return "".join(
            (c.get("delta") or {}).get("content") or ""
            for c in self.data["choices"]
            if isinstance(c, dict)
        )


StreamEvent = TokenEvent | ChatChunk
StreamItem = TokenEvent | ChatChunk | GatewayError


class EventDecoder(Protocol):
    """Upstream bytes (split anywhere) in, typed events out; after the last event or an error
    it is ``finished`` and ignores further bytes."""

    finished: bool

    def feed(self, chunk: bytes) -> list[StreamItem]: ...

    def close(self) -> list[StreamItem]:
        """End of the upstream body: what is left, and an error if the stream was cut short."""
        ...
