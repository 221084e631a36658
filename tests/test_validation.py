"""TGI's validation: every message byte for byte (reference §1.4), the order, f32 semantics."""

from __future__ import annotations

import math
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.errors import ErrorCode, GatewayError
from llm_gateway.core.parameters import GenerateParameters, Grammar, Limits
from llm_gateway.core.validation import as_f32, check_grammar, check_token_budget, validate
from llm_gateway.dialects.tgi.errors import error_body as _tgi_error_body


def tgi_body(error: GatewayError) -> object:
    """The error as the TGI dialect renders it."""
    return orjson.loads(_tgi_error_body(error)[1])


LIMITS = Limits(
    max_input_tokens=1024,
    max_total_tokens=2048,
    max_stop_sequences=4,
    max_best_of=2,
    max_top_n_tokens=5,
)

# (parameters, inputs, stream, limits, exact "error" text) — texts from reference §1.4.
CASES = [
    (
        {"best_of": 2, "do_sample": True},
        "x",
        True,
        LIMITS,
        "Input validation error: `best_of` != 1 is not supported when streaming tokens",
    ),
    (
        {"best_of": 0},
        "x",
        True,
        LIMITS,
        "Input validation error: `best_of` != 1 is not supported when streaming tokens",
    ),
    (
        {"decoder_input_details": True},
        "x",
        True,
        LIMITS,
        "Input validation error: `decoder_input_details` == true is not supported when streaming tokens",
    ),
    (
        {"best_of": 3, "do_sample": True},
        "x",
        False,
        LIMITS,
        "Input validation error: `best_of` must be > 0 and <= 2. Given: 3",
    ),
    (
        {"best_of": 2, "do_sample": True},
        "x",
        False,
        Limits(max_best_of=1),
        "Input validation error: `best_of` != 1 is not allowed for this endpoint",
    ),
    (
        {"best_of": 2},
        "x",
        False,
        LIMITS,
        "Input validation error: you must use sampling when `best_of` is > 1",
    ),
    (
        {"temperature": 0.0},
        "x",
        False,
        LIMITS,
        "Input validation error: `temperature` must be strictly positive",
    ),
    (
        {"repetition_penalty": -1},
        "x",
        False,
        LIMITS,
        "Input validation error: `repetition_penalty` must be strictly positive",
    ),
    (
        {"frequency_penalty": 2.5},
        "x",
        False,
        LIMITS,
        "Input validation error: `frequency_penalty` must be >= -2.0 and <= 2.0",
    ),
    ({"top_p": 1.0}, "x", False, LIMITS, "Input validation error: `top_p` must be > 0.0 and < 1.0"),
    ({"top_p": 0}, "x", False, LIMITS, "Input validation error: `top_p` must be > 0.0 and < 1.0"),
    (
        {"typical_p": 1.0},
        "x",
        False,
        LIMITS,
        "Input validation error: `typical_p` must be > 0.0 and < 1.0",
    ),
    ({"top_k": 0}, "x", False, LIMITS, "Input validation error: `top_k` must be strictly positive"),
    (
        {"top_k": -3},
        "x",
        False,
        LIMITS,
        "Input validation error: `top_k` must be strictly positive",
    ),
    (
        {"max_new_tokens": 0},
        "x",
        False,
        LIMITS,
        "Input validation error: `max_new_tokens` must be strictly positive",
    ),
    (
        {"stop": ["a", "b", "c", "d", "e"]},
        "x",
        False,
        LIMITS,
        "Input validation error: `stop` supports up to 4 stop sequences. Given: 5",
    ),
    (
        {"best_of": 2, "do_sample": True, "seed": 42},
        "x",
        False,
        LIMITS,
        "Input validation error: `seed` must not be set when `best_of` > 1",
    ),
    (
        {"top_n_tokens": 6},
        "x",
        False,
        LIMITS,
        "Input validation error: `top_n_tokens` must be >= 0 and <= 5. Given: 6",
    ),
    ({}, "", False, LIMITS, "Input validation error: `inputs` cannot be empty"),
    (
        {"truncate": 0},
        "x",
        False,
        LIMITS,
        "Input validation error: `truncate` must be strictly positive and less than 1024. Given: 0",
    ),
    (
        {"truncate": 1025},
        "x",
        False,
        LIMITS,
        "Input validation error: `truncate` must be strictly positive and less than 1024. Given: 1025",
    ),
]


@pytest.mark.parametrize(("params", "inputs", "stream", "limits", "expected"), CASES)
def test_each_message_is_tgis(params, inputs, stream, limits, expected):
    with pytest.raises(GatewayError) as info:
        validate(GenerateParameters.model_validate(params), inputs, limits, stream=stream)
    err = info.value
    assert err.message == expected
    assert (err.status, err.error_type) == (422, "validation")
    assert tgi_body(err) == {"error": expected, "error_type": "validation"}


def test_valid_requests_pass():
    validate(
        GenerateParameters(
            temperature=0.5,
            top_p=0.9,
            top_k=10,
            stop=["a"] * 4,
            truncate=1024,
            typical_p=0.5,
            frequency_penalty=-2.0,
            top_n_tokens=5,
            max_new_tokens=1,
        ),
        "x",
        LIMITS,
        stream=True,
    )
    validate(GenerateParameters(best_of=2, do_sample=True), "x", LIMITS, stream=False)
    # best_of 0 or 1 on a non-stream route is the normal path in TGI
    validate(GenerateParameters(best_of=0), "x", LIMITS, stream=False)


def test_tgi_order_first_broken_rule_wins():
    # temperature is checked before top_p, top_p before top_k, top_k before max_new_tokens...
    p = GenerateParameters(temperature=0, top_p=2, top_k=0, max_new_tokens=0)
    with pytest.raises(GatewayError, match="temperature"):
        validate(p, "", LIMITS, stream=False)
    p = GenerateParameters(top_p=2, top_k=0, max_new_tokens=0, typical_p=5)
    with pytest.raises(GatewayError, match="top_p"):
        validate(p, "", LIMITS, stream=False)
    p = GenerateParameters(typical_p=5, top_k=0)
    with pytest.raises(GatewayError, match="typical_p"):
        validate(p, "", LIMITS, stream=False)
    # stream checks precede everything; best_of limits precede sampling (non-stream)
    with pytest.raises(GatewayError, match="streaming tokens"):
        validate(GenerateParameters(best_of=2, temperature=0), "", LIMITS, stream=True)
    with pytest.raises(GatewayError, match="must be > 0 and <= 2"):
        validate(GenerateParameters(best_of=5), "", LIMITS, stream=False)
    # empty inputs is checked after the parameter rules but before truncate
    with pytest.raises(GatewayError, match="`inputs` cannot be empty"):
        validate(GenerateParameters(truncate=0), "", LIMITS, stream=False)


def test_floats_are_compared_as_f32():
    # 0.99999999999 is 1.0 in f32: TGI rejects it, so must the gateway
    with pytest.raises(GatewayError, match="top_p"):
        validate(GenerateParameters(top_p=0.99999999999), "x", LIMITS, stream=False)
    # 1e-50 underflows to 0.0 in f32
    with pytest.raises(GatewayError, match="temperature"):
        validate(GenerateParameters(temperature=1e-50), "x", LIMITS, stream=False)
    assert as_f32(1e39) == math.inf
    assert as_f32(0.1) != 0.1 and abs(as_f32(0.1) - 0.1) < 1e-8


def test_token_budget_messages():
    with pytest.raises(GatewayError) as info:
        check_token_budget(2000, GenerateParameters(max_new_tokens=100), LIMITS)
    assert info.value.message == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 2000 `inputs` tokens and 100 `max_new_tokens`"
    )
    with pytest.raises(GatewayError) as info:
        check_token_budget(1030, GenerateParameters(max_new_tokens=10), LIMITS)
    assert info.value.message == (
        "Input validation error: `inputs` must have less than 1024 tokens. Given: 1030"
    )
    # equal to the limit is allowed; truncate keeps the last tokens
    assert check_token_budget(1024, GenerateParameters(max_new_tokens=10), LIMITS) == 1024
    assert (
        check_token_budget(5000, GenerateParameters(max_new_tokens=10, truncate=100), LIMITS) == 100
    )
    # TGI 3.x checks chunks of at most 1024 new tokens; older versions the full amount
    assert check_token_budget(10, GenerateParameters(max_new_tokens=5000), LIMITS) == 10
    with pytest.raises(GatewayError, match="5000 `max_new_tokens`"):
        check_token_budget(10, GenerateParameters(max_new_tokens=5000), LIMITS, chunked=False)
    # unset max_new_tokens means "the rest of the budget"
    assert check_token_budget(1000, GenerateParameters(), LIMITS) == 1000


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
parameters = st.builds(
    GenerateParameters,
    best_of=st.none() | st.integers(0, 2**64 - 1),
    temperature=st.none() | finite,
    repetition_penalty=st.none() | finite,
    frequency_penalty=st.none() | finite,
    top_k=st.none() | st.integers(-(2**31), 2**31 - 1),
    top_p=st.none() | finite,
    typical_p=st.none() | finite,
    do_sample=st.none() | st.booleans(),
    max_new_tokens=st.none() | st.integers(0, 2**32 - 1),
    stop=st.none() | st.lists(st.text(max_size=3), max_size=6),
    truncate=st.none() | st.integers(0, 2**64 - 1),
    seed=st.none() | st.integers(0, 2**64 - 1),
    top_n_tokens=st.none() | st.integers(0, 2**32 - 1),
    decoder_input_details=st.none() | st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(p=parameters, inputs=st.text(max_size=4), stream=st.booleans())
def test_validation_is_total_and_only_speaks_tgi(p, inputs, stream):
    """Any parameters either pass or fail with a 422 whose text is one of TGI's messages."""
    try:
        validate(p, inputs, LIMITS, stream=stream)
    except GatewayError as err:
        assert err.status == 422 and err.error_type == "validation"
        assert err.message.startswith("Input validation error: ")
        assert err.param is not None
    else:
        # what passes really is within TGI's accepted ranges
        if p.top_p is not None:
            assert 0 < as_f32(p.top_p) < 1
        if p.temperature is not None:
            assert as_f32(p.temperature) > 0
        if stream:
            assert (p.best_of or 1) == 1 or p.best_of == 1
        assert inputs != ""


@pytest.mark.parametrize(("params", "inputs", "stream", "limits", "expected"), CASES)
def test_each_refusal_names_the_field_it_is_about(params, inputs, stream, limits, expected):
    """The field is the one TGI's message names first; the OpenAI and Anthropic dialects
    report it (``param``)."""
    with pytest.raises(GatewayError) as info:
        validate(GenerateParameters.model_validate(params), inputs, limits, stream=stream)
    named = re.search(r"`(\w+)`", expected)
    assert named is not None
    assert info.value.param == named.group(1)
    assert info.value.code is ErrorCode.INVALID_PARAMETER


def test_the_token_budget_names_its_field_and_is_the_context_window():
    with pytest.raises(GatewayError) as info:
        check_token_budget(2000, GenerateParameters(max_new_tokens=100), LIMITS)
    assert (info.value.param, info.value.code) == ("max_new_tokens", ErrorCode.CONTEXT_LENGTH)
    with pytest.raises(GatewayError) as info:
        check_token_budget(1030, GenerateParameters(max_new_tokens=10), LIMITS)
    assert (info.value.param, info.value.code) == ("inputs", ErrorCode.CONTEXT_LENGTH)
    assert (info.value.status, info.value.error_type) == (422, "validation")


def test_the_token_budget_boundaries():
    # inputs + max_new_tokens equal to max_total_tokens fits, one more does not.
    assert check_token_budget(1024, GenerateParameters(max_new_tokens=1024), LIMITS) == 1024
    with pytest.raises(GatewayError, match="Given: 1024 `inputs` tokens and 1025"):
        check_token_budget(1024, GenerateParameters(max_new_tokens=1025), LIMITS, chunked=False)
    # Chunked: at most 1024 new tokens are checked, however many are asked for.
    assert check_token_budget(1024, GenerateParameters(max_new_tokens=10**6), LIMITS) == 1024
    with pytest.raises(GatewayError, match="Given: 1025 `inputs` tokens and 1024"):
        check_token_budget(1025, GenerateParameters(max_new_tokens=10**6), LIMITS)


def test_an_unset_max_new_tokens_is_the_rest_of_the_window_never_less_than_zero():
    wide = Limits(max_input_tokens=1500, max_total_tokens=2048)
    # The rest of the window is 548 tokens (not the 1024 of a chunk): it fits exactly.
    assert check_token_budget(1500, GenerateParameters(), wide) == 1500
    assert check_token_budget(1500, GenerateParameters(), wide, chunked=False) == 1500
    # A prompt filling the whole window leaves 0 new tokens (TGI's saturating_sub): the
    # window check passes and the prompt-length rule answers.
    with pytest.raises(GatewayError) as info:
        check_token_budget(2048, GenerateParameters(), LIMITS)
    assert info.value.message == (
        "Input validation error: `inputs` must have less than 1024 tokens. Given: 2048"
    )
    with pytest.raises(GatewayError) as info:
        check_token_budget(3000, GenerateParameters(), LIMITS)
    assert info.value.message == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 3000 `inputs` tokens and 0 `max_new_tokens`"
    )


def test_truncate_bounds_the_prompt_length_before_the_window_is_checked():
    # truncate=1024 of a 5000-token prompt: 1024 + 1024 fits; the prompt is reported as 1024.
    params = GenerateParameters(truncate=1024, max_new_tokens=1024)
    assert check_token_budget(5000, params, LIMITS) == 1024
    # A prompt shorter than truncate keeps its own length.
    assert check_token_budget(7, GenerateParameters(truncate=1024), LIMITS) == 7


def test_a_schema_too_deep_to_check_is_refused_as_invalid():
    schema: dict[str, object] = {"type": "object", "properties": {}}
    for _ in range(5000):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(GatewayError) as info:
        check_grammar(Grammar(type="json", value=schema))
    assert info.value.message == (
        "Input validation error: grammar is not valid: the schema is nested too deeply"
    )
    assert info.value.param == "grammar"


@pytest.mark.parametrize(
    ("params", "limits"),
    [
        ({}, Limits(max_best_of=1)),  # best_of unset is 1, allowed on every endpoint
        ({"best_of": 1, "seed": 5}, Limits(max_best_of=1)),  # a seed is fine without best_of
        ({"repetition_penalty": 0.5}, LIMITS),  # below 1.0 is allowed: only <= 0 is refused
        ({"frequency_penalty": 2.0}, LIMITS),  # both ends of [-2, 2] are allowed
        ({"frequency_penalty": -2.0}, LIMITS),
        ({"top_k": 1}, LIMITS),
        ({"typical_p": 1e-6, "top_p": 0.999999}, LIMITS),
        ({"truncate": 1, "top_n_tokens": 0, "stop": []}, LIMITS),
        ({"max_new_tokens": 1}, LIMITS),
    ],
)
def test_the_edges_tgi_accepts(params, limits):
    validate(GenerateParameters.model_validate(params), "x", limits, stream=False)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"frequency_penalty": 2.001}, "frequency_penalty"),
        ({"typical_p": 0.0}, "typical_p"),
        ({"temperature": -0.0}, "temperature"),
    ],
)
def test_the_edges_tgi_refuses(params, field):
    with pytest.raises(GatewayError) as info:
        validate(GenerateParameters.model_validate(params), "x", LIMITS, stream=False)
    assert info.value.param == field


def test_f32_edges():
    # The largest f32 is still finite; NaN stays NaN (TGI's comparisons then refuse it).
    assert as_f32(3.4028234663852886e38) == 3.4028234663852886e38
    assert as_f32(-1e39) == -math.inf
    assert math.isnan(as_f32(math.nan))
