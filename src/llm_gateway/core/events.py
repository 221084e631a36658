"""The core's typed stream events: what a backend decodes an upstream's bytes into.

A generation stream is a run of :class:`TokenEvent` (the last one carries ``generated_text``
and the finish ``details``); a chat stream is a run of :class:`ChatChunk` (one
``chat.completion.chunk`` as the upstream sent it). Either may end with a
:class:`~llm_gateway.core.errors.GatewayError` instead. Dialects encode these; no wire format
lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from llm_gateway.core.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Finish:
    """How a generation ended, typed: what the dialects read of the last event's ``details``
    (``TokenEvent.details`` stays TGI's shape, which the TGI dialect relays as it is).

    >>> Finish.of({"finish_reason": "length", "generated_tokens": 4, "input_length": None})
    Finish(reason='length', generated_tokens=4, input_length=None)
    """

    reason: str | None  # eos_token | stop_sequence | length (or an upstream's own)
    generated_tokens: int | None  # as the upstream counted them
    input_length: int | None  # the prompt's tokens, when the upstream counted them

    @classmethod
    def of(cls, details: Mapping[str, Any] | None) -> Finish:
        details = details or {}
        reason, generated, prompt = (
            details.get("finish_reason"),
            details.get("generated_tokens"),
            details.get("input_length"),
        )
        return cls(
            reason if isinstance(reason, str) else None,
            generated if isinstance(generated, int) else None,
            prompt if isinstance(prompt, int) else None,
        )


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
    def finish(self) -> Finish:
        """How the generation ended (all ``None`` before the last event)."""
        return Finish.of(self.details)

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


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What one answer used, in tokens: what the encoders put on the wire (each in its own
    shape) and what the request's record, metrics and logs count.

    ``prompt_estimated``: nothing counted the prompt (no upstream count, no tokenizer), so
    ``prompt_tokens`` is an estimate, shown to clients as such and never logged as a count.
    ``reported_total``: the upstream's own ``total_tokens``, when it sent one.

    >>> TokenUsage.of_details({"generated_tokens": 3, "input_length": 7}, counted=None, estimate=lambda: 5)
    TokenUsage(prompt_tokens=7, completion_tokens=3, prompt_estimated=False, reported_total=None)
    >>> u = TokenUsage.of_chat(None, estimate=5, generated=2) + TokenUsage(7, 1)
    >>> u.prompt_tokens, u.total_tokens, u.prompt_estimated
    (12, 15, True)
    """

    prompt_tokens: int
    completion_tokens: int
    prompt_estimated: bool = False
    reported_total: int | None = None

    @property
    def total_tokens(self) -> int:
        if self.reported_total is not None:
            return self.reported_total
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        """The usage of an answer with several choices (or prompts)."""
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.prompt_estimated or other.prompt_estimated,
        )

    @classmethod
    def of_details(
        cls,
        details: Mapping[str, Any] | None,
        *,
        counted: int | None,
        estimate: Callable[[], int],
    ) -> TokenUsage | None:
        """A generation's usage from its finish ``details`` (None without a token count):
        the prompt as the upstream counted it (``input_length``), else as the model's tokenizer
        did (``counted``), else the prefill's length, else ``estimate()`` (called only then:
        estimating reads the whole prompt)."""
        generated = (details or {}).get("generated_tokens")
        if details is None or not isinstance(generated, int):
            return None
        prompt = details.get("input_length")
        if isinstance(prompt, int):
            return cls(prompt, generated)
        if counted is not None:
            return cls(counted, generated)
        prefill = details.get("prefill")
        if isinstance(prefill, list) and prefill:
            return cls(len(prefill), generated)
        return cls(estimate(), generated, prompt_estimated=True)

    @classmethod
    def of_chat(
        cls, usage: Mapping[str, Any] | None, *, estimate: int, generated: int
    ) -> TokenUsage:
        """A chat upstream's ``usage`` as it counted it; ``estimate`` and the ``generated``
        deltas seen when it sent none."""
        if usage and isinstance(usage.get("prompt_tokens"), int):
            total = usage.get("total_tokens")
            return cls(
                usage["prompt_tokens"],
                int(usage.get("completion_tokens") or 0),
                reported_total=total if isinstance(total, int) else None,
            )
        return cls(estimate, generated, prompt_estimated=True)


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
