"""What the simulated model behind an OpenAI-style server (vLLM, SGLang, LMI) generates.

Same words and tokenizer as the simulated TGI, but with vLLM's stop semantics: a stop string
anywhere in the new text ends the answer and is cut out of it (unless the request sets
``include_stop_str_in_output``, SGLang's ``no_stop_trim``: then the text ends with the stop),
``stop_reason`` names it (or the stop token id; ``None`` for EOS and the length limit), and EOS
is counted in ``completion_tokens`` but shows no text.

>>> choice = generate("hi", Sampling(max_tokens=9, stops=["."]), fixed_text=" One. Two.")
>>> choice.text, choice.finish_reason, choice.stop_reason, len(choice.tokens)
(' One', 'stop', '.', 2)
>>> generate("hi", Sampling(max_tokens=9, stops=["."], keep_stop=True), fixed_text=" One. Two.").text
' One.'
"""

from __future__ import annotations

import json
import random
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.emulator.model import CORPUS, EOS_TOKEN, token_id, tokenize
from llm_gateway.emulator.spec import EndpointSpec

EOS_ID = 0  # the simulated model's EOS token (``model.EOS_TOKEN``)
_ALTERNATIVES = (" the", " a", " model", " token", " and", ",", ".", " stream", " of", " to")


@dataclass
class Token:
    id: int
    text: str
    logprob: float
    # the most likely tokens at this step (id, text, logprob), best first
    top: list[tuple[int, str, float]] = field(default_factory=list)
    special: bool = False


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Choice:
    index: int
    tokens: list[Token]  # every generated token, EOS included
    deltas: list[str]  # the visible text each token added (stop text cut, EOS empty)
    finish_reason: str  # stop | length | tool_calls
    stop_reason: str | int | None
    tool_call: ToolCall | None = None

    @property
    def text(self) -> str:
        return "".join(self.deltas)


@dataclass
class Sampling:
    """The generation knobs every OpenAI-style request comes down to."""

    max_tokens: int
    temperature: float | None = None
    seed: int | None = None
    stops: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    top_n: int = 0  # alternatives to report per token (logprobs)
    # vLLM's include_stop_str_in_output (SGLang's no_stop_trim): the matched stop text (or
    # the stop token's text) stays in the output instead of being cut.
    keep_stop: bool = False


def rng_for(prompt: str, sampling: Sampling, index: int) -> random.Random:
    """Greedy (temperature 0) answers depend on the prompt, seeded ones on seed and choice."""
    if sampling.temperature == 0:
        return random.Random(zlib.crc32(prompt.encode()))
    if sampling.seed is not None:
        return random.Random(f"{sampling.seed}:{index}")
    return random.Random()


def _pieces(spec: EndpointSpec | None, rng: random.Random, fixed_text: str | None) -> list[str]:
    if fixed_text is not None:
        return tokenize(fixed_text)
    if spec is not None and spec.output_text is not None:
        return tokenize(spec.output_text)
    pieces: list[str] = []
    if spec is not None and spec.output_tokens:
        while len(pieces) < spec.output_tokens:
            pieces += tokenize(" " + rng.choice(CORPUS))
        return pieces[: spec.output_tokens]
    for _ in range(rng.randint(2, 4)):
        pieces += tokenize(" " + rng.choice(CORPUS))
    return pieces


def _logprob(rng: random.Random) -> float:
    return round(-rng.expovariate(4.0), 4)


def _token(tid: int, text: str, rng: random.Random, top_n: int, special: bool = False) -> Token:
    logprob = _logprob(rng)
    top = [(tid, text, logprob)] if top_n else []
    for k in range(1, top_n):
        alt = _ALTERNATIVES[(tid + k) % len(_ALTERNATIVES)]
        top.append((token_id(alt), alt, round(logprob - rng.random() * 2 - 0.01, 4)))
    return Token(tid, text, logprob, top, special)


def generate(
    prompt: str,
    sampling: Sampling,
    *,
    spec: EndpointSpec | None = None,
    index: int = 0,
    fixed_text: str | None = None,
) -> Choice:
    """One choice for ``prompt``; ``fixed_text`` (e.g. JSON for ``response_format``) wins over
    the endpoint's configured or corpus text."""
    rng = rng_for(prompt, sampling, index)
    stops = [s for s in sampling.stops if s]
    longest = max((len(s) for s in stops), default=0)
    tokens: list[Token] = []
    text = ""
    visible: int | None = None
    finish = "length"
    stop_reason: str | int | None = None
    stopped = False
    for piece in _pieces(spec, rng, fixed_text):
        if len(tokens) == sampling.max_tokens:
            stopped = True
            break
        token = _token(token_id(piece), piece, rng, sampling.top_n)
        tokens.append(token)
        if token.id in sampling.stop_token_ids:
            visible, finish, stop_reason, stopped = len(text), "stop", token.id, True
            text += piece
            if sampling.keep_stop:
                visible = len(text)
            break
        start = max(len(text) - longest + 1, 0)
        text += piece
        hits = [(text.find(s, start), s) for s in stops if text.find(s, start) >= 0]
        if hits:
            position, stop = min(hits)
            visible, finish, stop_reason, stopped = position, "stop", stop, True
            if sampling.keep_stop:  # vLLM still cuts what follows the stop in its token
                visible += len(stop)
            break
    if not stopped and len(tokens) < sampling.max_tokens:
        eos = _token(EOS_ID, str(EOS_TOKEN["text"]), rng, sampling.top_n, True)
        tokens.append(eos)
        finish = "stop"
    limit = len(text) if visible is None else visible
    deltas, offset = [], 0
    for token in tokens:
        size = 0 if token.special else len(token.text)
        deltas.append(text[min(offset, limit) : min(offset + size, limit)])
        offset += size
    return Choice(index, tokens, deltas, finish, stop_reason)


_SCALARS: dict[str, Any] = {
    "string": "simulated",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "null": None,
}


def example_value(schema: Any) -> Any:
    """A small value that satisfies a (simple) JSON schema: the simulated structured output."""
    if not isinstance(schema, dict):
        return "simulated"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_value(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        names = schema.get("required") or list(props)
        return {name: example_value(props.get(name, {})) for name in names}
    if kind == "array":
        return [example_value(schema.get("items", {}))]
    return _SCALARS.get(str(kind), "simulated")


def dumps_py(value: Any) -> str:
    """JSON as Python's ``json.dumps`` writes it (what vLLM's tool parsers and LMI emit)."""
    return json.dumps(value, ensure_ascii=False)


def tool_call_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"
