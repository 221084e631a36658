"""A simulated TGI model: TGI's validation, answers and SSE bytes, with readable made-up text.

It is a *simulator* for local runs and tests, never a production code path. It follows TGI's
contract where a client can observe it: validation order and messages (the gateway's own
validator plus the token-count rules, with a whitespace/punctuation tokenizer), ``details``
(finish reason, token counts, seeds, prefill, top tokens, best-of sequences), stop sequences
kept in the text as TGI keeps them, EOS streamed as a special token but left out of
``generated_text``, ``return_full_text`` defaulting to true as on SageMaker, and the 0.8.2 or
3.x stream shape. Output is deterministic: greedy requests depend on the prompt, sampled ones
on the seed.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from llm_gateway.core.parameters import GenerateParameters, GenerateRequest
from llm_gateway.core.validation import check_token_budget, validate
from llm_gateway.emulator.spec import EndpointSpec

_PIECE = re.compile(r"\s*[A-Za-z0-9']+|\s*[^\sA-Za-z0-9']|\s+")
EOS_TOKEN = {"id": 0, "text": "</s>", "special": True}
_ALTERNATIVES = (" the", " a", " model", " token", " and", ",", ".", " stream", " of", " to")

CORPUS = (
    "The gateway relays each token as soon as the model produces it.",
    "SageMaker keeps the model warm on its GPU while Lambda scales the gateway out.",
    "Every request is validated exactly as Text Generation Inference would validate it.",
    "Streaming answers arrive as server-sent events, one token at a time.",
    "This text comes from a simulator, so no GPU was harmed in writing it.",
    "Stop sequences end the answer early, and the finish reason says so.",
    "A prompt template turns chat messages into the exact string each model was trained on.",
    "Time to first token matters more to a reader than total latency.",
    "API keys belong to partners, and usage plans keep each partner within its quota.",
    "Errors keep the shape that each client already knows how to read.",
    "The emulator speaks the same binary event stream that boto3 decodes from AWS.",
    "Long answers keep flowing because heartbeats hold the connection open.",
    "Seeds make sampled answers repeatable, which makes tests honest.",
    "Cold starts are measured, published and kept small on purpose.",
    "A good gateway adds almost nothing to the time the model itself needs.",
    "Metrics count tokens per model and per partner without ever logging a key.",
)


def tokenize(text: str) -> list[str]:
    """Word pieces with their leading space, and single punctuation marks."""
    return _PIECE.findall(text)


def token_id(piece: str) -> int:
    return zlib.crc32(piece.encode()) % 32000 + 100


def effective_sampling(p: GenerateParameters) -> bool:
    """TGI's server samples when asked to or when a warper changes the distribution."""
    return bool(p.do_sample) or (
        (p.temperature is not None and p.temperature != 1.0)
        or (p.top_k is not None and p.top_k != 0)
        or (p.top_p is not None and p.top_p < 1.0)
        or (p.typical_p is not None and p.typical_p < 1.0)
    )


@dataclass
class Sequence:
    """One generated sequence."""

    tokens: list[dict[str, Any]]
    top_tokens: list[list[dict[str, Any]]]
    text: str
    finish_reason: str
    seed: int | None

    @property
    def mean_logprob(self) -> float:
        total: float = sum(t["logprob"] for t in self.tokens)
        return total / max(len(self.tokens), 1)


@dataclass
class Generation:
    """A validated request and what the simulated model generated for it."""

    inputs: str
    parameters: GenerateParameters
    input_length: int
    full_text: bool
    best: Sequence
    others: list[Sequence] = field(default_factory=list)

    @property
    def generated_text(self) -> str:
        return (self.inputs + self.best.text) if self.full_text else self.best.text


class SimulatedTGI:
    """The TGI container behind one emulated endpoint."""

    def __init__(self, spec: EndpointSpec) -> None:
        self.spec = spec

    @property
    def legacy(self) -> bool:
        return self.spec.tgi_version == "0.8.2"

    def prepare(self, request: GenerateRequest, *, stream: bool) -> Generation:
        """Validate as TGI does (raising ``GatewayError``) and generate."""
        p = request.effective_parameters()
        if self.legacy and p.max_new_tokens is None:
            p = p.model_copy(update={"max_new_tokens": 20})  # TGI 0.8.2's serde default
        limits = self.spec.limits
        validate(p, request.inputs, limits, stream=stream)
        input_length = check_token_budget(
            len(tokenize(request.inputs)), p, limits, chunked=not self.legacy
        )
        max_new = p.max_new_tokens or max(limits.max_total_tokens - input_length, 1)
        full_text = (
            p.return_full_text
            if p.return_full_text is not None
            else self.spec.pipeline_tag == "text-generation"
        )
        best_of = p.best_of or 1
        if best_of > 1 and not stream:
            candidates = [self._sequence(request.inputs, p, max_new, None) for _ in range(best_of)]
            best_index = max(range(best_of), key=lambda i: candidates[i].mean_logprob)
            best = candidates.pop(best_index)
            return Generation(request.inputs, p, input_length, full_text, best, candidates)
        best = self._sequence(request.inputs, p, max_new, p.seed)
        return Generation(request.inputs, p, input_length, full_text, best)

    def _sequence(
        self, inputs: str, p: GenerateParameters, max_new: int, seed: int | None
    ) -> Sequence:
        sampling = effective_sampling(p)
        if sampling:
            seed = seed if seed is not None else random.getrandbits(64)
            rng = random.Random(seed)
        else:
            seed = None
            rng = random.Random(zlib.crc32(inputs.encode()))
        pieces: list[str] = []
        if self.spec.output_text is not None:
            pieces = tokenize(self.spec.output_text)
        elif self.spec.output_tokens:
            while len(pieces) < self.spec.output_tokens:
                pieces += tokenize(" " + rng.choice(CORPUS))
            pieces = pieces[: self.spec.output_tokens]
        else:
            for _ in range(rng.randint(2, 4)):
                pieces += tokenize(" " + rng.choice(CORPUS))
        top_n = p.top_n_tokens or 0
        stops = p.stop or []
        tokens: list[dict[str, Any]] = []
        top_tokens: list[list[dict[str, Any]]] = []
        text = ""
        finish = "eos_token"
        for piece in pieces:
            if len(tokens) == max_new:
                finish = "length"
                break
            token = {
                "id": token_id(piece),
                "text": piece,
                "logprob": _logprob(rng),
                "special": False,
            }
            tokens.append(token)
            top_tokens.append(_top(token, top_n, rng))
            text += piece
            if any(text.endswith(stop) for stop in stops if stop):
                finish = "stop_sequence"
                break
        else:
            if len(tokens) < max_new:
                eos = {**EOS_TOKEN, "logprob": _logprob(rng)}
                eos = {k: eos[k] for k in ("id", "text", "logprob", "special")}
                tokens.append(eos)
                top_tokens.append(_top(eos, top_n, rng))
            else:
                finish = "length"
        return Sequence(tokens, top_tokens if top_n else [], text, finish, seed)

    # -- answers ---------------------------------------------------------------------------

    def _details(self, gen: Generation, seq: Sequence, *, prefill: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "finish_reason": seq.finish_reason,
            "generated_tokens": len(seq.tokens),
            "seed": seq.seed,
            "prefill": self._prefill(gen) if prefill else [],
            "tokens": seq.tokens,
        }
        return out

    def _prefill(self, gen: Generation) -> list[dict[str, Any]]:
        rng = random.Random(zlib.crc32(gen.inputs.encode()) ^ 0x5EED)
        pieces = tokenize(gen.inputs)[-gen.input_length :] if gen.input_length else []
        return [
            {"id": token_id(piece), "text": piece, "logprob": None if i == 0 else _logprob(rng)}
            for i, piece in enumerate(pieces)
        ]

    def response(self, gen: Generation) -> bytes:
        """The non-stream ``/invocations`` body: TGI's compat route answers a JSON array."""
        p = gen.parameters
        out: dict[str, Any] = {"generated_text": gen.generated_text}
        if p.details or p.decoder_input_details:
            details = self._details(gen, gen.best, prefill=bool(p.decoder_input_details))
            if p.best_of and p.best_of > 1:
                details["best_of_sequences"] = [
                    {
                        "generated_text": (gen.inputs + seq.text) if gen.full_text else seq.text,
                        **self._details(gen, seq, prefill=bool(p.decoder_input_details)),
                        **(
                            {"top_tokens": seq.top_tokens}
                            if seq.top_tokens and not self.legacy
                            else {}
                        ),
                    }
                    for seq in gen.others
                ]
            if gen.best.top_tokens and not self.legacy:
                details["top_tokens"] = gen.best.top_tokens
            out["details"] = details
        return orjson.dumps([out])

    def sse_prefix(self) -> bytes:
        return b"data:" if self.legacy else b"data: "

    def stream_events(self, gen: Generation) -> list[bytes]:
        """The SSE events of a stream, one ``data: {…}\\n\\n`` per token."""
        seq, p = gen.best, gen.parameters
        prefix = self.sse_prefix()
        events = []
        last = len(seq.tokens) - 1
        for i, token in enumerate(seq.tokens):
            final = i == last
            details = None
            if final and p.details:
                details = {
                    "finish_reason": seq.finish_reason,
                    "generated_tokens": len(seq.tokens),
                    "seed": seq.seed,
                }
                if not self.legacy:
                    details["input_length"] = gen.input_length
            if self.legacy:
                event: dict[str, Any] = {"token": token}
            else:
                event = {"index": i + 1, "token": token}
                if seq.top_tokens and seq.top_tokens[i]:
                    event["top_tokens"] = seq.top_tokens[i]
            event["generated_text"] = gen.generated_text if final else None
            event["details"] = details
            events.append(prefix + orjson.dumps(event) + b"\n\n")
        return events

    def error_event(self, message: str, error_type: str) -> bytes:
        return (
            self.sse_prefix() + orjson.dumps({"error": message, "error_type": error_type}) + b"\n\n"
        )


def _logprob(rng: random.Random) -> float:
    return round(-rng.expovariate(4.0), 4)


def _top(token: dict[str, Any], n: int, rng: random.Random) -> list[dict[str, Any]]:
    if n <= 0:
        return []
    out = [dict(token)]
    for k in range(1, n):
        alt = _ALTERNATIVES[(token["id"] + k) % len(_ALTERNATIVES)]
        out.append(
            {
                "id": token_id(alt),
                "text": alt,
                "logprob": round(token["logprob"] - rng.random() * 2 - 0.01, 4),
                "special": False,
            }
        )
    return out
