"""The pure rules under every budget: whose partition an item is in, which fixed UTC window a
moment falls in (its sort key, its reset and its TTL), and the exact refusal each limit gives —
message, status, headers, ``Retry-After`` and the neutral code the dialects word. No store here:
these are the values the store writes and the answers a client reads.
"""

from __future__ import annotations

import orjson
import pytest

from llm_gateway.budgets.durations import until_ms
from llm_gateway.budgets.errors import (
    BudgetRefusal,
    over_limit,
    store_unavailable,
    too_many_streams,
)
from llm_gateway.budgets.windows import (
    DAY_RETENTION_SECONDS,
    MINUTE_GRACE_SECONDS,
    Subject,
    day_sk,
    day_start,
    day_window,
    minute_window,
    pk,
)
from llm_gateway.core.errors import ErrorCode, ErrorKind
from llm_gateway.dialects.openai.errors import error_body as openai_error_body
from llm_gateway.dialects.tgi.errors import error_body as tgi_error_body

# 2023-11-14T22:15:00Z, a minute start; the day started at 1_699_920_000 (00:00:00Z).
MINUTE = 1_700_000_100
MIDNIGHT = 1_699_920_000
ACME = Subject("key", "acme")

# -- subjects and partitions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "pk_", "label", "principal"),
    [
        ("key", "key#acme", "key acme", "acme"),
        ("user", "user#acme", "user acme", "user:acme"),
        ("tenant", "tenant#acme", "tenant acme", "tenant:acme"),
    ],
)
def test_a_subject_names_its_partition_its_refusals_and_its_report(kind, pk_, label, principal):
    subject = Subject(kind, "acme")
    assert (subject.pk, subject.label, subject.principal) == (pk_, label, principal)


def test_an_api_keys_partition():
    assert pk("acme") == "key#acme" == ACME.pk


# -- windows ------------------------------------------------------------------------------------


def test_the_retention_periods():
    # A minute's items are kept an hour past their reset, a day's for 400 days (the report).
    assert (MINUTE_GRACE_SECONDS, DAY_RETENTION_SECONDS) == (3600, 400 * 86400)


@pytest.mark.parametrize("kind", ["tpm", "rpm"])
@pytest.mark.parametrize("offset", [0, 23.5, 59.999])
def test_every_moment_of_a_minute_is_in_that_minutes_window(kind, offset):
    window = minute_window(kind, MINUTE + offset)
    assert window.kind == kind
    assert window.sk == f"{kind}#2023-11-14T22:15"
    assert window.reset_at == MINUTE + 60
    assert window.expires_at == MINUTE + 60 + 3600
    assert not window.per_day


def test_the_next_minute_is_a_new_window():
    window = minute_window("tpm", MINUTE + 60)
    assert (window.sk, window.reset_at) == ("tpm#2023-11-14T22:16", MINUTE + 120)
    before = minute_window("rpm", MINUTE - 0.001)
    assert (before.sk, before.reset_at) == ("rpm#2023-11-14T22:14", MINUTE)


@pytest.mark.parametrize("offset", [0, 80_123.25, 86_399.999])
def test_every_moment_of_a_day_is_in_that_days_window(offset):
    window = day_window(MIDNIGHT + offset)
    assert window.kind == "day"
    assert window.sk == "day#2023-11-14"
    assert window.reset_at == MIDNIGHT + 86400
    assert window.expires_at == MIDNIGHT + 86400 + 400 * 86400
    assert window.per_day


def test_the_next_day_is_a_new_window():
    window = day_window(MIDNIGHT + 86400)
    assert (window.sk, window.reset_at) == ("day#2023-11-15", MIDNIGHT + 2 * 86400)


def test_a_days_key_and_its_midnight():
    assert day_sk("2023-11-14") == "day#2023-11-14"
    assert day_start("2023-11-14") == MIDNIGHT
    assert day_start("1970-01-02") == 86400


# -- waiting times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reset_at", "now", "ms"),
    [
        (10.5, 10.0, 500),
        (11.0, 10.0, 1000),
        (1.0, 0.9995, 1),  # half a millisecond is rounded up: never retry early
        (10.0, 10.0, 0),
        (9.0, 10.0, 0),  # a reset in the past is no wait, never a negative one
    ],
)
def test_the_wait_until_a_reset(reset_at, now, ms):
    assert until_ms(reset_at, now) == ms


# -- refusals -----------------------------------------------------------------------------------

LIMIT_HEADERS = {"x-ratelimit-limit-tokens": "1000"}


def refuse(kind: str, *, requested: int = 200, now: float = MINUTE + 23.5, subject=ACME):
    reset_at = MIDNIGHT + 86400 if kind == "day" else MINUTE + 60
    return over_limit(
        subject,
        kind,
        limit=1000,
        used=900,
        requested=requested,
        reset_at=reset_at,
        now=now,
        headers=LIMIT_HEADERS,
    )


def test_a_full_minute_says_when_it_resets():
    refusal = refuse("tpm")
    assert isinstance(refusal, BudgetRefusal)
    assert refusal.message == (
        "Budget reached for key acme on tokens per minute: limit 1000, used 900, requested 200. "
        "Resets in 36.5s (at 2023-11-14T22:16:00Z)."
    )
    assert (refusal.status, refusal.error_type, refusal.kind) == (
        429,
        "rate_limit",
        ErrorKind.THROTTLED,
    )
    assert refusal.code is ErrorCode.TOKENS_RATE_LIMITED
    assert refusal.retry_after == 37  # whole seconds, rounded up
    assert refusal.headers == {"x-ratelimit-limit-tokens": "1000", "retry-after-ms": "36500"}
    assert LIMIT_HEADERS == {"x-ratelimit-limit-tokens": "1000"}  # the caller's dict is copied
    assert (refusal.limit, refusal.subject, refusal.key_id) == ("tpm", ACME, "acme")


@pytest.mark.parametrize(
    ("now", "retry_after", "wait_ms"),
    [
        (MINUTE + 59.5, 1, "500"),  # under a second still says 1, never 0
        (MINUTE + 60, 1, "0"),  # the window just reset: retry at once, but Retry-After ≥ 1
        (MINUTE + 58.999, 2, "1001"),
    ],
)
def test_retry_after_is_whole_seconds_rounded_up_and_never_zero(now, retry_after, wait_ms):
    refusal = refuse("rpm", now=now)
    assert refusal.retry_after == retry_after
    assert refusal.headers["retry-after-ms"] == wait_ms


def test_a_full_request_window():
    refusal = refuse("rpm")
    assert refusal.message.startswith(
        "Budget reached for key acme on requests per minute: limit 1000, used 900"
    )
    assert refusal.code is ErrorCode.REQUESTS_RATE_LIMITED
    assert refusal.limit == "rpm"


def test_a_request_no_window_can_ever_take_is_not_worth_retrying():
    refusal = refuse("tpm", requested=1001)
    assert refusal.message == (
        "Request too large for key acme on tokens per minute: limit 1000, requested 1001. "
        "Reduce the prompt or max_tokens."
    )
    assert refusal.retry_after is None
    assert refusal.headers == {"x-ratelimit-limit-tokens": "1000", "x-should-retry": "false"}
    assert refusal.code is ErrorCode.TOKENS_RATE_LIMITED


def test_a_request_of_exactly_the_limit_fits_an_empty_window():
    refusal = refuse("tpm", requested=1000)
    assert refusal.message.startswith("Budget reached for key acme")
    assert refusal.retry_after == 37
    assert "x-should-retry" not in refusal.headers


def test_a_spent_day_is_a_quota_not_a_rate():
    refusal = refuse("day", subject=Subject("user", "alice"))
    assert refusal.message == (
        "Budget reached for user alice on tokens per day: limit 1000, used 900, requested 200. "
        "Resets in 1h44m36.5s (at 2023-11-15T00:00:00Z)."
    )
    assert refusal.retry_after is None  # retrying today cannot help
    assert refusal.headers == {"x-ratelimit-limit-tokens": "1000", "x-should-retry": "false"}
    assert refusal.code is ErrorCode.QUOTA_EXHAUSTED
    assert (refusal.status, refusal.limit, refusal.key_id) == (429, "day", "user:alice")


def test_a_day_too_small_for_the_request():
    refusal = refuse("day", requested=5000, subject=Subject("tenant", "t1"))
    assert refusal.message == (
        "Request too large for tenant t1 on tokens per day: limit 1000, requested 5000. "
        "Reduce the prompt or max_tokens."
    )
    assert refusal.code is ErrorCode.QUOTA_EXHAUSTED
    assert refusal.headers["x-should-retry"] == "false"


def test_too_many_streams():
    refusal = too_many_streams(Subject("user", "alice"), 2)
    assert refusal.message == (
        "Budget reached for user alice on concurrent streams: limit 2, open 2, requested 1. "
        "A slot frees when one of the user's streams ends."
    )
    assert (refusal.status, refusal.retry_after, refusal.headers) == (
        429,
        1,
        {"retry-after-ms": "1000"},
    )
    assert (refusal.code, refusal.limit) == (ErrorCode.REQUESTS_RATE_LIMITED, "streams")


def test_an_unreachable_store_under_deny():
    refusal = store_unavailable(ACME)
    assert refusal.message == (
        "The budget of key acme cannot be checked right now; try again shortly."
    )
    assert (refusal.status, refusal.error_type, refusal.kind) == (
        503,
        "unavailable",
        ErrorKind.UPSTREAM,
    )
    assert (refusal.retry_after, refusal.headers) == (5, {})
    assert (refusal.code, refusal.limit) == (ErrorCode.BUDGET_STORE_UNAVAILABLE, "store")


def test_a_refusal_names_its_limit():
    assert repr(refuse("rpm", requested=2000)) == (
        "BudgetRefusal(429, 'rpm', 'Request too large for key acme on requests per minute: "
        "limit 1000, requested 2000. Reduce the prompt or max_tokens.')"
    )


# -- as each dialect words them -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "status", "type_", "code"),
    [
        (lambda: refuse("tpm"), 429, "tokens", "rate_limit_exceeded"),
        (lambda: refuse("rpm"), 429, "requests", "rate_limit_exceeded"),
        (lambda: too_many_streams(ACME, 1), 429, "requests", "rate_limit_exceeded"),
        (lambda: refuse("day"), 429, "insufficient_quota", "insufficient_quota"),
        (lambda: store_unavailable(ACME), 503, "server_error", "budget_store_unavailable"),
    ],
)
def test_openai_words_a_refusal_as_its_api_does(make, status, type_, code):
    refusal = make()  # made in the test: a mutation run collects once for every mutant
    got, body = openai_error_body(refusal)
    assert (got, orjson.loads(body)) == (
        status,
        {"error": {"message": refusal.message, "type": type_, "param": None, "code": code}},
    )


def test_tgi_words_a_refusal_as_a_rate_limit():
    refusal = refuse("tpm")
    assert tgi_error_body(refusal)[0] == 429
    assert orjson.loads(tgi_error_body(refusal)[1]) == {
        "error": refusal.message,
        "error_type": "rate_limit",
    }
