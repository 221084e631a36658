"""TGI 3.x response shapes, whatever TGI version the endpoint runs.

Field order and omission rules are serde's (``router/src/lib.rs``): ``details`` is left out
unless asked for, ``top_tokens`` is left out when empty, ``best_of_sequences`` when absent.
JSON is compact and not ASCII-escaped, like ``serde_json``.

>>> from llm_gateway.core.events import Details, Token, TokenEvent
>>> tok = Token(2, "</s>", -0.01, True)
>>> last = TokenEvent(2, tok, None, " The", Details("eos_token", 2, None, input_length=7))
>>> TGIStreamEncoder(details=True).event(last)
(Frame(data=b'{"index":2,"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},"generated_text":" The","details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null,"input_length":7}}', event=None),)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import (
    BestOfSequence,
    Details,
    StreamEvent,
    Token,
    TokenEvent,
    TokenUsage,
)
from llm_gateway.core.generation import GenerationResult
from llm_gateway.dialects.tgi.errors import error_body
from llm_gateway.http.dialect import EncoderBase
from llm_gateway.http.frames import Frame

_dumps = orjson.dumps


def _tokens(tokens: tuple[Token, ...]) -> list[dict[str, Any]]:
    """TGI's ``Token`` objects, built by hand (here and per event): orjson writes a slots
    dataclass about three times slower than a dict, and this is the per-token path."""
    return [
        {"id": t.id, "text": t.text, "logprob": t.logprob, "special": t.special} for t in tokens
    ]


def _top_tokens(rows: tuple[tuple[Token, ...], ...]) -> list[list[dict[str, Any]]]:
    return [_tokens(row) for row in rows]


def _sequence(seq: Details | BestOfSequence) -> dict[str, Any]:
    """The fields ``Details`` and ``BestOfSequence`` share, in TGI's order."""
    return {
        "finish_reason": seq.finish_reason,
        "generated_tokens": seq.generated_tokens,
        "seed": seq.seed,
        "prefill": [{"id": t.id, "text": t.text, "logprob": t.logprob} for t in seq.prefill],
        "tokens": _tokens(seq.tokens),
    }


def details_body(details: Details) -> dict[str, Any]:
    """``Details`` in TGI 3.x field order."""
    out = _sequence(details)
    if details.best_of_sequences is not None:
        out["best_of_sequences"] = [
            {
                "generated_text": seq.generated_text,
                **_sequence(seq),
                **({"top_tokens": _top_tokens(seq.top_tokens)} if seq.top_tokens else {}),
            }
            for seq in details.best_of_sequences
        ]
    if details.top_tokens:
        out["top_tokens"] = _top_tokens(details.top_tokens)
    return out


def generate_body(result: GenerationResult, *, details: bool) -> dict[str, Any]:
    """``GenerateResponse``: ``generated_text`` and, when the client asked, ``details``."""
    out: dict[str, Any] = {"generated_text": result.generated_text}
    if details and result.details is not None:
        out["details"] = details_body(result.details)
    return out


def stream_details(details: Details) -> dict[str, Any]:
    """``StreamDetails``; ``input_length`` only when the endpoint reported it (TGI ≥ 2.3)."""
    out: dict[str, Any] = {
        "finish_reason": details.finish_reason,
        "generated_tokens": details.generated_tokens,
        "seed": details.seed,
    }
    if details.input_length is not None:
        out["input_length"] = details.input_length
    return out


class TGIStreamEncoder(EncoderBase):
    """One unnamed event ``{StreamResponse}`` per token; errors are one event of
    :func:`~llm_gateway.dialects.tgi.errors.error_body`; the stream ends without ``[DONE]``
    (TGI's own client cannot parse it)."""

    __slots__ = ("counted", "details", "estimate", "prefix", "token_usage")

    def __init__(
        self,
        *,
        details: bool,
        prefix: str = "",
        counted: int | None = None,
        estimate: Callable[[], int] = lambda: 0,
    ) -> None:
        self.details = details
        self.prefix = prefix  # put before the last event's generated_text (return_full_text)
        self.counted = counted  # the prompt's tokens by the model's tokenizer, if configured
        self.estimate = estimate  # ... else estimated (not logged as a count)
        self.token_usage: TokenUsage | None = None  # for the request's record

    def event(self, event: StreamEvent) -> tuple[Frame]:
        assert isinstance(event, TokenEvent), "TGI streams carry generate events"
        t = event.token
        out: dict[str, Any] = {
            "index": event.index,
            "token": {"id": t.id, "text": t.text, "logprob": t.logprob, "special": t.special},
        }
        if event.top_tokens:
            out["top_tokens"] = _tokens(event.top_tokens)
        text = event.generated_text
        if text is not None:
            self.token_usage = TokenUsage.of_details(
                event.details, counted=self.counted, estimate=self.estimate
            )
        out["generated_text"] = None if text is None else self.prefix + text
        out["details"] = (
            stream_details(event.details)
            if self.details and event.details is not None and event.generated_text is not None
            else None
        )
        return (Frame(_dumps(out)),)

    def error(self, error: GatewayError) -> tuple[Frame]:
        return (Frame(error_body(error)[1]),)

    def end(self) -> tuple[()]:
        return ()
