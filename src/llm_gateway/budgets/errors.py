"""Refusals: a :class:`GatewayError` that also says how the OpenAI dialect must answer.

The refusal carries the neutral code of the limit that ran out (``LIMIT_CODES``); each dialect
words it its own way. ``headers`` are for the response (``x-ratelimit-*``,
``retry-after-ms``, ``x-should-retry``). ``retry_after`` (seconds) is the base class's
``Retry-After``. The TGI dialect needs nothing extra: ``{"error": message, "error_type":
"rate_limit"}`` with status 429.
"""

from __future__ import annotations

import time

from llm_gateway.budgets.durations import format_duration, until_ms
from llm_gateway.budgets.windows import Subject
from llm_gateway.core.errors import ErrorCode, ErrorKind, GatewayError

# What each limit is called in messages and metrics.
LIMIT_NAMES = {
    "tpm": "tokens per minute",
    "rpm": "requests per minute",
    "day": "tokens per day",
    "streams": "concurrent streams",
}


# The neutral code of a refusal by the limit that ran out (each dialect words it its own way).
LIMIT_CODES = {
    "tpm": ErrorCode.TOKENS_RATE_LIMITED,
    "rpm": ErrorCode.REQUESTS_RATE_LIMITED,
    "streams": ErrorCode.REQUESTS_RATE_LIMITED,
    "day": ErrorCode.QUOTA_EXHAUSTED,
    "store": ErrorCode.BUDGET_STORE_UNAVAILABLE,
}


class BudgetRefusal(GatewayError):
    """A request refused by a budget (429: a key's, a user's or a tenant's; ``subject`` says
    whose) or by an unreachable store under ``deny`` (503)."""

    # ``headers`` is set here whether or not the base class has such a field too.
    __slots__ = ("key_id", "limit", "subject")

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        error_type: str = "rate_limit",
        kind: ErrorKind = ErrorKind.THROTTLED,
        retry_after: int | None,
        headers: dict[str, str],
        subject: Subject,
        limit: str,
    ) -> None:
        super().__init__(
            message,
            status=status,
            error_type=error_type,
            kind=kind,
            retry_after=retry_after,
            code=LIMIT_CODES[limit],
        )
        self.headers = headers
        self.subject = subject
        self.key_id = subject.principal
        self.limit = limit  # "tpm" | "rpm" | "day" | "streams" | "store"

    def __repr__(self) -> str:
        return f"BudgetRefusal({self.status}, {self.limit!r}, {self.message!r})"


def _at(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def over_limit(
    subject: Subject,
    kind: str,
    *,
    limit: int,
    used: int,
    requested: int,
    reset_at: float,
    now: float,
    headers: dict[str, str],
) -> BudgetRefusal:
    """The answer for a window that cannot take ``requested`` more."""
    name = LIMIT_NAMES[kind]
    wait_ms = until_ms(reset_at, now)
    wait = format_duration(wait_ms)
    headers = dict(headers)
    never = requested > limit  # no window will ever take it: retrying cannot help
    if never:
        message = (
            f"Request too large for {subject.label} on {name}: limit {limit}, requested {requested}. "
            "Reduce the prompt or max_tokens."
        )
    else:
        message = (
            f"Budget reached for {subject.label} on {name}: limit {limit}, used {used}, "
            f"requested {requested}. Resets in {wait} (at {_at(reset_at)})."
        )
    if kind == "day":
        headers["x-should-retry"] = "false"
        return BudgetRefusal(
            message,
            retry_after=None,
            headers=headers,
            subject=subject,
            limit=kind,
        )
    if never:
        headers["x-should-retry"] = "false"
    else:
        headers["retry-after-ms"] = str(wait_ms)
    return BudgetRefusal(
        message,
        retry_after=None if never else max(1, -(-wait_ms // 1000)),
        headers=headers,
        subject=subject,
        limit=kind,
    )


def too_many_streams(subject: Subject, limit: int) -> BudgetRefusal:
    # A stream slot frees whenever one ends; a second is a fair guess for clients that wait.
    return BudgetRefusal(
        f"Budget reached for {subject.label} on concurrent streams: limit {limit}, open {limit}, "
        f"requested 1. A slot frees when one of the {subject.kind}'s streams ends.",
        retry_after=1,
        headers={"retry-after-ms": "1000"},
        subject=subject,
        limit="streams",
    )


def store_unavailable(subject: Subject) -> BudgetRefusal:
    """``on_store_error: deny``: the gateway cannot check the budget, so it does not serve."""
    return BudgetRefusal(
        f"The budget of {subject.label} cannot be checked right now; try again shortly.",
        status=503,
        error_type="unavailable",
        kind=ErrorKind.UPSTREAM,
        retry_after=5,
        headers={},
        subject=subject,
        limit="store",
    )
