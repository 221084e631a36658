"""TGI's parameter validation as a pure function of the request and the model's limits.

The rules, their order and their messages are TGI 3.x's (``router/src/validation.rs``
``validate()``/``validate_best_of()`` and ``server.rs`` ``generate_stream_internal``). Floats
are compared after rounding to ``f32`` because TGI deserialises them as ``f32``: ``top_p:
0.99999999999`` is ``1.0`` to TGI and is rejected.

Token-count rules need the model's tokenizer, so :func:`validate` leaves them to TGI (its
answer is passed through); :func:`check_token_budget` applies them when a count is known.

>>> from llm_gateway.core.parameters import GenerateParameters, Limits
>>> validate(GenerateParameters(top_p=1.0), "Hi", Limits(), stream=False)
Traceback (most recent call last):
...
llm_gateway.core.errors.GatewayError: Input validation error: `top_p` must be > 0.0 and < 1.0
"""

from __future__ import annotations

import math
import struct
from typing import Any

import orjson

from llm_gateway.core.errors import context_length_error, validation_error
from llm_gateway.core.parameters import GenerateParameters, Grammar, Limits

# TGI 3.x schedules generation in chunks of this many tokens and checks the budget per chunk.
DEFAULT_GENERATION_LENGTH = 1024
_F32_MAX = 3.4028234663852886e38
_pack_f32 = struct.Struct("<f")


def as_f32(value: float) -> float:
    """The value TGI sees after serde deserialises the JSON number into an ``f32``."""
    if math.isnan(value) or abs(value) > _F32_MAX:
        return math.copysign(math.inf, value) if not math.isnan(value) else value
    f32: float = _pack_f32.unpack(_pack_f32.pack(value))[0]
    return f32


def validate(parameters: GenerateParameters, inputs: str, limits: Limits, *, stream: bool) -> None:
    """Raise TGI's ``ValidationError`` for the first rule ``parameters`` break, in TGI's order."""
    p = parameters
    best_of = 1 if p.best_of is None else p.best_of

    if stream:
        # generate_stream_internal() rejects these before validate() runs.
        if best_of != 1:
            raise validation_error(
                "`best_of` != 1 is not supported when streaming tokens", param="best_of"
            )
        if p.decoder_input_details:
            raise validation_error(
                "`decoder_input_details` == true is not supported when streaming tokens",
                param="decoder_input_details",
            )
    elif best_of > 1:
        # Infer::generate_best_of() calls validate_best_of() before validate().
        if limits.max_best_of == 1:
            raise validation_error(
                "`best_of` != 1 is not allowed for this endpoint", param="best_of"
            )
        if best_of > limits.max_best_of:
            raise validation_error(
                f"`best_of` must be > 0 and <= {limits.max_best_of}. Given: {best_of}",
                param="best_of",
            )

    if best_of > 1 and not p.sampling:
        raise validation_error("you must use sampling when `best_of` is > 1", param="best_of")
    if p.temperature is not None and as_f32(p.temperature) <= 0.0:
        raise validation_error("`temperature` must be strictly positive", param="temperature")
    if p.repetition_penalty is not None and as_f32(p.repetition_penalty) <= 0.0:
        raise validation_error(
            "`repetition_penalty` must be strictly positive", param="repetition_penalty"
        )
    if p.frequency_penalty is not None and not -2.0 <= as_f32(p.frequency_penalty) <= 2.0:
        raise validation_error(
            "`frequency_penalty` must be >= -2.0 and <= 2.0", param="frequency_penalty"
        )
    if p.top_p is not None and not 0.0 < as_f32(p.top_p) < 1.0:
        raise validation_error("`top_p` must be > 0.0 and < 1.0", param="top_p")
    if p.typical_p is not None and not 0.0 < as_f32(p.typical_p) < 1.0:
        raise validation_error("`typical_p` must be > 0.0 and < 1.0", param="typical_p")
    if p.top_k is not None and p.top_k <= 0:
        raise validation_error("`top_k` must be strictly positive", param="top_k")
    if p.max_new_tokens == 0:
        raise validation_error("`max_new_tokens` must be strictly positive", param="max_new_tokens")
    stop_count = len(p.stop or ())
    if stop_count > limits.max_stop_sequences:
        raise validation_error(
            f"`stop` supports up to {limits.max_stop_sequences} stop sequences. Given: {stop_count}",
            param="stop",
        )
    if p.seed is not None and best_of > 1:
        raise validation_error("`seed` must not be set when `best_of` > 1", param="seed")
    if p.top_n_tokens is not None and p.top_n_tokens > limits.max_top_n_tokens:
        raise validation_error(
            f"`top_n_tokens` must be >= 0 and <= {limits.max_top_n_tokens}. "
            f"Given: {p.top_n_tokens}",
            param="top_n_tokens",
        )
    if not inputs:
        raise validation_error("`inputs` cannot be empty", param="inputs")
    if p.truncate is not None and (p.truncate == 0 or p.truncate > limits.max_input_tokens):
        raise validation_error(
            f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. "
            f"Given: {p.truncate}",
            param="truncate",
        )
    if p.grammar is not None:
        # TGI checks the grammar after the token budget, which needs the tokenizer: a request
        # breaking both is answered here with the grammar's message.
        check_grammar(p.grammar)


def check_grammar(grammar: Grammar) -> None:
    """TGI's grammar rules (``validation.rs``): a ``json`` grammar's value is a JSON Schema
    given as an object or as a string holding one; it must be valid against the draft 2020-12
    meta-schema and have ``properties``. ``json_schema`` grammars get the same check on their
    ``schema``; a ``regex`` is passed on as it is (its type was checked when it was read).

    >>> check_grammar(Grammar(type="json", value=5))
    Traceback (most recent call last):
    ...
    llm_gateway.core.errors.GatewayError: Input validation error: grammar is not supported
    """
    if grammar.type == "regex":
        return
    value: Any = grammar.value
    if grammar.type == "json_schema":
        value = value["schema"]  # presence checked when the grammar was read
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise _invalid_grammar(str(exc)) from None
    elif not isinstance(value, dict):
        raise validation_error("grammar is not supported", param="grammar")
    from jsonschema import Draft202012Validator  # imported on first use: start-up stays fast
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        raise _invalid_grammar(exc.message) from None
    except RecursionError:  # deeper than the body parser admits; kept as a client error
        raise _invalid_grammar("the schema is nested too deeply") from None
    if not isinstance(value, dict) or "properties" not in value:
        raise _invalid_grammar("Grammar must have a 'properties' field")


def _invalid_grammar(reason: str) -> Exception:
    return validation_error(f"grammar is not valid: {reason}", param="grammar")


def check_token_budget(
    input_tokens: int,
    parameters: GenerateParameters,
    limits: Limits,
    *,
    chunked: bool = True,
) -> int:
    """TGI's ``validate_input()`` token rules; returns the prompt length TGI would report.

    ``chunked`` is TGI ≥ 3.0's behaviour of checking ``min(max_new_tokens, 1024)``; older
    versions check ``max_new_tokens`` itself.
    """
    truncate = parameters.truncate
    input_length = min(input_tokens, truncate) if truncate is not None else input_tokens
    if parameters.max_new_tokens is not None:
        max_new = parameters.max_new_tokens
    else:
        max_new = max(limits.max_total_tokens - input_length, 0)
    if chunked:
        max_new = min(max_new, DEFAULT_GENERATION_LENGTH)
    if input_length + max_new > limits.max_total_tokens:
        raise context_length_error(
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_length} `inputs` tokens and {max_new} `max_new_tokens`",
            param="max_new_tokens",
        )
    if input_length > limits.max_input_tokens:
        raise context_length_error(
            f"`inputs` must have less than {limits.max_input_tokens} tokens. Given: {input_length}",
            param="inputs",
        )
    return input_length
