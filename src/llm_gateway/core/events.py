"""The core's typed stream events: what a backend decodes an upstream's bytes into.

A generation stream is a run of :class:`TokenEvent` (the last one carries ``generated_text``
and the finish :class:`Details`); a chat stream is a run of :class:`ChatChunk` (one
``chat.completion.chunk``, typed). Either may end with a
:class:`~llm_gateway.core.errors.GatewayError` instead. Dialects encode these; no wire format
lives here. Everything here is a slots dataclass built once by a decoder: the per-token path
makes no dict round trips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from llm_gateway.core.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Token:
    """One generated token (TGI's ``Token``); ``special`` tokens (EOS) show no text.
    ``logprob`` keeps the number as the upstream sent it (an integral one stays an int)."""

    id: int
    text: str
    logprob: float | None
    special: bool


@dataclass(frozen=True, slots=True)
class PrefillToken:
    """One prompt token (TGI's ``PrefillToken``: the first has no ``logprob``)."""

    id: int
    text: str
    logprob: float | None


@dataclass(frozen=True, slots=True)
class BestOfSequence:
    """One of the other ``best_of`` sequences (TGI's ``BestOfSequence``)."""

    generated_text: str | None
    finish_reason: str | None = None
    generated_tokens: int | None = None
    seed: int | None = None
    prefill: tuple[PrefillToken, ...] = ()
    tokens: tuple[Token, ...] = ()
    top_tokens: tuple[tuple[Token, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Details:
    """How a generation ended, as the upstream counted it (TGI's ``Details`` and
    ``StreamDetails`` in one): ``finish_reason`` is ``eos_token`` | ``stop_sequence`` |
    ``length`` (or an upstream's own); ``input_length`` only when the upstream counted the
    prompt; ``best_of_sequences`` ``None`` when there were none."""

    finish_reason: str | None = None
    generated_tokens: int | None = None
    seed: int | None = None
    input_length: int | None = None
    prefill: tuple[PrefillToken, ...] = ()
    tokens: tuple[Token, ...] = ()
    top_tokens: tuple[tuple[Token, ...], ...] = ()
    best_of_sequences: tuple[BestOfSequence, ...] | None = None

    @property
    def best_of_tokens(self) -> int:
        """Tokens of the other ``best_of`` sequences: the model generated them too."""
        return sum(s.generated_tokens or 0 for s in self.best_of_sequences or ())


@dataclass(frozen=True, slots=True)
class Finish:
    """How a generation ended, as the dialects read it (a view of :class:`Details`).

    >>> Finish.of(Details(finish_reason="length", generated_tokens=4))
    Finish(reason='length', generated_tokens=4, input_length=None)
    """

    reason: str | None  # eos_token | stop_sequence | length (or an upstream's own)
    generated_tokens: int | None  # as the upstream counted them
    input_length: int | None  # the prompt's tokens, when the upstream counted them

    @classmethod
    def of(cls, details: Details | None) -> Finish:
        if details is None:
            return cls(None, None, None)
        return cls(details.finish_reason, details.generated_tokens, details.input_length)


@dataclass(slots=True)
class TokenEvent:
    """One generated token; the last one carries ``generated_text`` and ``details``."""

    index: int
    token: Token
    top_tokens: tuple[Token, ...] | None = None
    generated_text: str | None = None
    details: Details | None = None  # last event only

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
        token = self.token
        return "" if token.special else token.text


@dataclass(slots=True)
class ToolCallDelta:
    """One tool-call fragment of a chat delta: the first names the call (``id``, ``type``,
    the function's ``name``), later ones add ``arguments``; ``None`` is a field not sent."""

    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str | None = None


@dataclass(slots=True)
class TopLogprob:
    """One alternative of a chat token's ``top_logprobs``."""

    token: str
    logprob: float | None
    bytes: tuple[int, ...] | None


@dataclass(slots=True)
class ChatLogprob:
    """One entry of a chat choice's ``logprobs.content`` (fields in OpenAI's order)."""

    token: str
    logprob: float | None
    bytes: tuple[int, ...] | None
    top_logprobs: tuple[TopLogprob, ...]


@dataclass(slots=True)
class ChatChoice:
    """One choice of a ``chat.completion.chunk``: its delta's fields, typed (read-only by
    convention; not ``frozen``, whose ``__init__`` costs several times more per chunk).

    ``reasoning_content`` and ``reasoning`` are the two names servers give reasoning text
    (SGLang and older vLLM, newer vLLM); ``logprobs`` is ``logprobs.content`` (``None``: the
    choice had no log-probs); ``stop_reason`` the stop string vLLM says it matched."""

    index: int = 0
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[ChatLogprob, ...] | None = None
    finish_reason: str | None = None
    stop_reason: str | None = None


@dataclass(slots=True)
class ChatChunk:
    """One ``chat.completion.chunk`` of an upstream chat stream, typed: what the gateway
    reads of it (fields it does not know of are not kept). ``usage`` is set when the chunk
    carried the upstream's counts (a prompt count at least)."""

    choices: tuple[ChatChoice, ...]
    usage: TokenUsage | None = None
    id: str | None = None
    created: int | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    is_last = False

    @property
    def text(self) -> str:
        return "".join(c.content or "" for c in self.choices)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What one answer used, in tokens: what the encoders put on the wire (each in its own
    shape) and what the request's record, metrics and logs count.

    ``prompt_estimated``: nothing counted the prompt (no upstream count, no tokenizer), so
    ``prompt_tokens`` is an estimate, shown to clients as such and never logged as a count.
    ``reported_total``: the upstream's own ``total_tokens``, when it sent one.
    ``completion_counted``: false when a chat upstream counted the prompt but not the
    completion (``completion_tokens`` is then 0, and readers may use their own count).

    >>> TokenUsage.of_details(Details(generated_tokens=3, input_length=7), counted=None, estimate=lambda: 5)
    TokenUsage(prompt_tokens=7, completion_tokens=3, prompt_estimated=False, reported_total=None, completion_counted=True)
    >>> u = TokenUsage.of_chat(None, estimate=5, generated=2) + TokenUsage(7, 1)
    >>> u.prompt_tokens, u.total_tokens, u.prompt_estimated
    (12, 15, True)
    """

    prompt_tokens: int
    completion_tokens: int
    prompt_estimated: bool = False
    reported_total: int | None = None
    completion_counted: bool = True

    @property
    def total_tokens(self) -> int:
        if self.reported_total is not None:
            return self.reported_total
        return self.prompt_tokens + self.completion_tokens

    def completion_or(self, seen: int) -> int:
        """The completion's tokens as the upstream counted them, else ``seen`` (what the
        reader counted itself) when the upstream counted only the prompt."""
        return self.completion_tokens if self.completion_counted else seen

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
        details: Details | None,
        *,
        counted: int | None,
        estimate: Callable[[], int],
    ) -> TokenUsage | None:
        """A generation's usage from its finish ``details`` (None without a token count):
        the prompt as the upstream counted it (``input_length``), else as the model's tokenizer
        did (``counted``), else the prefill's length, else ``estimate()`` (called only then:
        estimating reads the whole prompt)."""
        if details is None or details.generated_tokens is None:
            return None
        generated = details.generated_tokens
        if details.input_length is not None:
            return cls(details.input_length, generated)
        if counted is not None:
            return cls(counted, generated)
        if details.prefill:
            return cls(len(details.prefill), generated)
        return cls(estimate(), generated, prompt_estimated=True)

    @classmethod
    def of_chat(cls, usage: TokenUsage | None, *, estimate: int, generated: int) -> TokenUsage:
        """A chat upstream's ``usage`` as it counted it; ``estimate`` and the ``generated``
        deltas seen when it sent none."""
        if usage is not None:
            return usage
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
