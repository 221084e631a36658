"""OpenAI's x-ratelimit-reset-* values are Go durations: ``1m6s``, ``41ms``, ``6m0s``."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.budgets.durations import format_duration, until_ms

GO_DURATION = re.compile(r"0s|[1-9]\d{0,2}ms|(?:(\d+)h)?(?:(\d+)m)?(\d+)(?:\.(\d{1,3}))?s")


def parse(text: str) -> int:
    """Milliseconds of a Go duration as OpenAI sends it (what go-openai's ParseDuration reads)."""
    if text.endswith("ms"):
        return int(text[:-2])
    match = GO_DURATION.fullmatch(text)
    assert match, text
    if text == "0s":
        return 0
    hours, minutes, seconds, fraction = match.groups()
    millis = int((fraction or "").ljust(3, "0"))
    return ((int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(seconds)) * 1000 + millis


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (1, "1ms"),
        (41, "41ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (7660, "7.66s"),
        (66_000, "1m6s"),
        (360_000, "6m0s"),
        (3_600_000, "1h0m0s"),
        (86_400_000, "24h0m0s"),
        (-5, "0s"),
    ],
)
def test_examples(ms, text):
    assert format_duration(ms) == text


@given(st.integers(min_value=0, max_value=10**10))
def test_round_trips_through_a_go_duration_parser(ms):
    text = format_duration(ms)
    assert GO_DURATION.fullmatch(text), text
    assert parse(text) == ms


@given(st.integers(min_value=1000, max_value=10**10))
def test_shape_above_a_second(ms):
    text = format_duration(ms)
    # Go prints every unit below the largest one (6m0s, never 6m) and no trailing zeros.
    if ms >= 3_600_000:
        assert re.fullmatch(r"\d+h\d+m[\d.]+s", text)
    elif ms >= 60_000:
        assert re.fullmatch(r"\d+m[\d.]+s", text)
    assert not re.search(r"\.\d*0s$", text)


@given(st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=1e6))
def test_until_never_undershoots(reset_at, now):
    ms = until_ms(reset_at, now)
    assert ms >= 0
    assert ms >= (reset_at - now) * 1000 - 1e-6  # rounded up: a client never retries early
