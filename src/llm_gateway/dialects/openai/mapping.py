"""OpenAI parameters to TGI's ``GenerateParameters``: the mapping tabled in the README.

| OpenAI                                  | TGI                                                   |
|-----------------------------------------|-------------------------------------------------------|
| ``max_completion_tokens``/``max_tokens``| ``max_new_tokens``                                    |
| ``temperature: 0``                      | greedy (``do_sample: false``, no temperature)         |
| ``temperature: t > 0``                  | ``temperature: t``, ``do_sample: true``               |
| ``top_p: 1``                            | omitted (TGI rejects 1.0); ``top_p: 0`` is greedy     |
| ``stop`` (string or list)               | ``stop``, plus the template's default stops           |
| ``seed``                                | ``seed``                                              |
| ``frequency_penalty``                   | ``frequency_penalty`` (same range and meaning)        |
| ``presence_penalty: p``                 | ``repetition_penalty: 2 ** (p / 2)`` (0 → omitted)    |
| ``logprobs``/``top_logprobs``           | token ``details`` / ``top_n_tokens``                  |
| ``n > 1``                               | 400: not supported                                    |
| ``response_format`` ``json_schema``     | ``grammar: {"type": "json", "value": <schema>}``      |
| ``response_format`` TGI's ``json_object``/``json``/``regex`` with ``value`` | ``grammar`` of that type |

Out-of-range values are a 400 naming the OpenAI parameter, checked here before TGI's own rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_gateway.core.errors import ErrorKind, GatewayError, request_error
from llm_gateway.core.parameters import (
    I32_MAX,
    U32_MAX,
    U64_MAX,
    GenerateParameters,
    Grammar,
    Limits,
)
from llm_gateway.core.validation import check_grammar
from llm_gateway.dialects.openai.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    ResponseFormat,
    SamplingFields,
)


def invalid(message: str, param: str) -> GatewayError:
    return request_error(message, status=400, param=param)


def _in_range(value: float | None, low: float, high: float, name: str) -> None:
    if value is not None and not low <= value <= high:
        raise invalid(f"Invalid '{name}': {value} is not between {low:g} and {high:g}.", name)


def _integer(value: int | None, low: int, high: int, name: str) -> None:
    """An integer parameter within ``[low, high]`` (its TGI type's range), else 400 naming it."""
    if value is None or low <= value <= high:
        return
    if value < low and low == 1:
        raise invalid(f"Invalid '{name}': {value} must be at least 1.", name)
    raise invalid(f"Invalid '{name}': {value} is not between {low} and {high}.", name)


@dataclass(frozen=True, slots=True)
class Sampling:
    """What a request asks of the generation, in TGI terms, plus what the encoders need."""

    parameters: GenerateParameters
    client_stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    top_logprobs: int | None  # None: no logprobs asked


def _stops(value: str | list[str] | None, limits: Limits) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else list(value or ())
    if len(stops) > limits.max_stop_sequences:
        raise invalid(
            f"`stop` supports up to {limits.max_stop_sequences} stop sequences. Given: {len(stops)}",
            "stop",
        )
    return tuple(stops)


def _common(req: SamplingFields, limits: Limits, max_tokens: int | None) -> dict[str, Any]:
    if req.n not in (None, 1):
        raise invalid("Only `n: 1` is supported: each request generates one choice.", "n")
    _in_range(req.temperature, 0, 2, "temperature")
    _in_range(req.top_p, 0, 1, "top_p")
    _in_range(req.frequency_penalty, -2, 2, "frequency_penalty")
    _in_range(req.presence_penalty, -2, 2, "presence_penalty")
    # Integers are checked against the Rust type TGI reads them as, so none can fail later.
    tokens_name = (
        "max_completion_tokens"
        if getattr(req, "max_completion_tokens", None) is not None
        else "max_tokens"
    )
    _integer(max_tokens, 1, U32_MAX, tokens_name)
    _integer(req.seed, 0, U64_MAX, "seed")
    _integer(req.top_k, 1, I32_MAX, "top_k")
    if req.repetition_penalty is not None and req.repetition_penalty <= 0:
        raise invalid(
            "Invalid 'repetition_penalty': it must be greater than 0.", "repetition_penalty"
        )

    greedy = req.temperature == 0 or req.top_p == 0
    repetition = req.repetition_penalty
    if repetition is None and req.presence_penalty:
        repetition = 2 ** (req.presence_penalty / 2)
    return {
        "max_new_tokens": max_tokens,
        "temperature": None if greedy else req.temperature,
        "top_p": None if greedy or req.top_p in (None, 1) else req.top_p,
        "top_k": None if greedy else req.top_k,
        "do_sample": not greedy,
        "seed": req.seed,
        "frequency_penalty": req.frequency_penalty or None,
        "repetition_penalty": repetition,
        "details": True,
    }


def _top_n(top: int | None, limits: Limits, param: str) -> int | None:
    if top is None:
        return None
    if not 0 <= top <= limits.max_top_n_tokens:
        raise invalid(
            f"Invalid '{param}': {top} is not between 0 and {limits.max_top_n_tokens} "
            "(the model's max_top_n_tokens).",
            param,
        )
    return top


def _grammar(fmt: ResponseFormat) -> Grammar | None:
    """``response_format`` as TGI's grammar: OpenAI's ``json_schema``, or TGI's own shape
    ``{"type": "json_object" | "json" | "regex", "value": …}``; checked as TGI checks grammars.
    """
    if fmt.type == "text":
        return None
    if fmt.type == "json_schema":
        schema = (fmt.json_schema or {}).get("schema")
        if not isinstance(schema, dict):
            raise invalid(
                "`response_format.json_schema.schema` must be an object.", "response_format"
            )
        grammar = Grammar(type="json", value=schema)
    elif fmt.type in ("json_object", "json"):
        if fmt.value is None:
            raise invalid(
                f"`response_format: {fmt.type}` without a `value` is not supported; use "
                '`json_schema` with a schema, or TGI\'s `{"type": "json_object", "value": '
                "<schema>}`.",
                "response_format",
            )
        grammar = Grammar(type="json", value=fmt.value)
    elif fmt.type == "regex":
        if not isinstance(fmt.value, str):
            raise invalid(
                "`response_format: regex` needs a string `value` (the regular expression).",
                "response_format",
            )
        grammar = Grammar(type="regex", value=fmt.value)
    else:
        raise invalid(
            f"Unknown `response_format.type` '{fmt.type}': use text, json_schema, or TGI's "
            "json_object, json or regex with a `value`.",
            "response_format",
        )
    try:
        check_grammar(grammar)
    except GatewayError as exc:
        raise invalid(exc.message, "response_format") from None
    return grammar


def chat_sampling(req: ChatCompletionRequest, limits: Limits, *, relay: bool = False) -> Sampling:
    """``relay``: the model's backend relays chat requests to an OpenAI server, which takes
    ``n``, tools, any ``response_format`` and logprobs itself; only OpenAI's ranges apply."""
    max_tokens = (
        req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    )
    if relay:
        return _relayed(req, limits, max_tokens)
    fields = _common(req, limits, max_tokens)
    top = _top_n(req.top_logprobs, limits, "top_logprobs") if req.logprobs else None
    if req.top_logprobs is not None and not req.logprobs:
        raise invalid("`top_logprobs` requires `logprobs: true`.", "top_logprobs")
    if top:
        fields["top_n_tokens"] = top
    if req.tools:
        raise invalid("Tools are not supported by this model's prompt template.", "tools")
    if req.response_format is not None:
        grammar = _grammar(req.response_format)
        if grammar is not None:
            fields["grammar"] = grammar
    return Sampling(
        parameters=GenerateParameters(**fields),
        client_stop=_stops(req.stop, limits),
        stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        top_logprobs=(top or 0) if req.logprobs else None,
    )


def _relayed(req: ChatCompletionRequest, limits: Limits, max_tokens: int | None) -> Sampling:
    if req.n is not None and not 1 <= req.n <= 128:
        raise invalid(f"Invalid 'n': {req.n} is not between 1 and 128.", "n")
    fields = _common(req.model_copy(update={"n": None}), limits, max_tokens)
    if req.top_logprobs is not None and not req.logprobs:
        raise invalid("`top_logprobs` requires `logprobs: true`.", "top_logprobs")
    _in_range(req.top_logprobs, 0, 20, "top_logprobs")
    return Sampling(
        parameters=GenerateParameters(**fields),
        client_stop=_stops(req.stop, limits),
        stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        top_logprobs=(req.top_logprobs or 0) if req.logprobs else None,
    )


def check_batch_size(prompt: object, limits: Limits) -> None:
    """TGI's bound on prompts per request (``max_client_batch_size``), checked before any
    prompt is looked at, so a huge array costs nothing beyond reading it. One array of token
    ids is one prompt."""
    count = 1
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        count = len(prompt)
    if count > limits.max_client_batch_size:
        raise GatewayError(
            "Number of prompts exceeds the maximum allowed batch size of "
            f"{limits.max_client_batch_size}",
            status=400,
            error_type="batch_size_exceeded",  # TGI's error_type is "batch size exceeded"
            kind=ErrorKind.CLIENT,
            param="prompt",
        )


def completion_sampling(req: CompletionRequest, limits: Limits) -> Sampling:
    if req.suffix:
        raise invalid(
            "Suffix is not supported and can be achieved by preprocessing the prompt.", "suffix"
        )
    if req.best_of not in (None, 1):
        raise invalid("Only `best_of: 1` is supported.", "best_of")
    check_batch_size(req.prompt, limits)
    fields = _common(req, limits, req.max_tokens)
    top = _top_n(req.logprobs, limits, "logprobs")
    if top:
        fields["top_n_tokens"] = top
    return Sampling(
        parameters=GenerateParameters(**fields),
        client_stop=_stops(req.stop, limits),
        stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        top_logprobs=top,
    )
