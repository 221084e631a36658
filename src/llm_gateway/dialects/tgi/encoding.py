"""TGI 3.x response shapes, whatever TGI version the endpoint runs.

Field order and omission rules are serde's (``router/src/lib.rs``): ``details`` is left out
unless asked for, ``top_tokens`` is left out when empty, ``best_of_sequences`` when absent.
JSON is compact and not ASCII-escaped, like ``serde_json``.

>>> from llm_gateway.core.events import TokenEvent
>>> tok = {"id": 2, "text": "</s>", "logprob": -0.01, "special": True}
>>> last = TokenEvent(2, tok, None, " The", {"finish_reason": "eos_token", "generated_tokens": 2,
...                                          "seed": None, "input_length": 7})
>>> TGIStreamEncoder(details=True).event(last)
b'data: {"index":2,"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},"generated_text":" The","details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null,"input_length":7}}\\n\\n'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import StreamEvent, TokenEvent, TokenUsage
from llm_gateway.core.generation import GenerationResult
from llm_gateway.http.dialect import EncoderBase
from llm_gateway.http.sse import sse_event

_dumps = orjson.dumps


def error_body(error: GatewayError) -> bytes:
    """TGI's ``ErrorResponse``: ``{"error": message, "error_type": type}`` (also its SSE event)."""
    return _dumps({"error": error.message, "error_type": error.error_type})


def _sequence(seq: dict[str, Any]) -> dict[str, Any]:
    """The fields ``Details`` and ``BestOfSequence`` share, in TGI's order; ``prefill`` and
    ``tokens`` are always lists."""
    return {
        "finish_reason": seq.get("finish_reason"),
        "generated_tokens": seq.get("generated_tokens"),
        "seed": seq.get("seed"),
        "prefill": seq.get("prefill") or [],
        "tokens": seq.get("tokens") or [],
    }


def details_body(details: dict[str, Any]) -> dict[str, Any]:
    """``Details`` in TGI 3.x field order."""
    out = _sequence(details)
    best_of = details.get("best_of_sequences")
    if best_of is not None:
        out["best_of_sequences"] = [
            {
                "generated_text": seq.get("generated_text"),
                **_sequence(seq),
                **({"top_tokens": seq["top_tokens"]} if seq.get("top_tokens") else {}),
            }
            for seq in best_of
        ]
    if details.get("top_tokens"):
        out["top_tokens"] = details["top_tokens"]
    return out


def generate_body(result: GenerationResult, *, details: bool) -> dict[str, Any]:
    """``GenerateResponse``: ``generated_text`` and, when the client asked, ``details``."""
    out: dict[str, Any] = {"generated_text": result.generated_text}
    if details and result.details is not None:
        out["details"] = details_body(result.details)
    return out


def stream_details(details: dict[str, Any]) -> dict[str, Any]:
    """``StreamDetails``; ``input_length`` only when the endpoint reported it (TGI ≥ 2.3)."""
    out = {
        "finish_reason": details.get("finish_reason"),
        "generated_tokens": details.get("generated_tokens"),
        "seed": details.get("seed"),
    }
    if details.get("input_length") is not None:
        out["input_length"] = details["input_length"]
    return out


class TGIStreamEncoder(EncoderBase):
    """``data: {StreamResponse}\\n\\n`` per token; errors are one ``{"error","error_type"}``
    event; the stream ends without ``[DONE]`` (TGI's own client cannot parse it)."""

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

    def event(self, event: StreamEvent) -> bytes:
        assert isinstance(event, TokenEvent), "TGI streams carry generate events"
        out: dict[str, Any] = {"index": event.index, "token": event.token}
        if event.top_tokens:
            out["top_tokens"] = event.top_tokens
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
        return sse_event(_dumps(out))

    def error(self, error: GatewayError) -> bytes:
        return sse_event(error_body(error))

    def end(self) -> bytes:
        return b""
