"""What a successful reservation holds, and the ``x-ratelimit-*`` headers it answers with."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from llm_gateway.budgets.durations import format_duration, until_ms
from llm_gateway.budgets.windows import Subject, Window
from llm_gateway.config.budgets import BudgetLimits


@dataclass(frozen=True)
class Charge:
    """One window's share of a reservation."""

    window: Window
    amount: int
    limit: int
    used: int  # the window's total right after this charge

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(eq=False)
class Share:
    """One subject's part of a reservation: a key's, or a signed-in user's and their tenant's."""

    subject: Subject
    limits: BudgetLimits
    day: Window  # the day item that receives this request's totals
    charges: list[Charge] = field(default_factory=list)
    stream_lease: str | None = None  # the lease attribute of the stream slot held, if any


@dataclass(eq=False)
class Reservation:
    """A reservation made by :meth:`Budgets.reserve`; hand it back to :meth:`Budgets.settle`.

    Metric fields for the observability layer: ``reserved_tokens`` (what the token windows were
    charged), ``refunded_tokens`` (set by settle), ``store_errors`` (store calls that failed for
    this request), ``admitted_without_store`` (served under ``on_store_error: allow``).
    """

    request_id: str
    tokens: int
    stream: bool
    shares: list[Share]
    admitted_without_store: bool = False
    store_errors: int = 0
    refunded_tokens: int = 0
    settled: bool = False
    # Names this request's reconcile in the table. Random, not the client's x-request-id: a
    # client reusing an id must not make its second request's reconcile look like a retry.
    ledger_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def subject(self) -> Subject:
        """The subject that holds the ledger and names the request in metrics."""
        return self.shares[0].subject

    @property
    def key_id(self) -> str:
        return self.subject.principal

    @property
    def limits(self) -> BudgetLimits:
        return self.shares[0].limits

    @property
    def charges(self) -> list[Charge]:
        return [c for share in self.shares for c in share.charges]

    @property
    def stream_slot(self) -> bool:
        return any(share.stream_lease for share in self.shares)

    @property
    def budgeted(self) -> bool:
        return any(not share.limits.empty for share in self.shares)

    @property
    def reserved_tokens(self) -> int:
        return self.tokens if any(c.window.kind != "rpm" for c in self.charges) else 0

    def headers(self, now: float | None = None) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the answer (empty for unbudgeted callers):
        the token window with the least room left, of whichever subject it belongs to."""
        charges = self.charges
        tokens = [c for c in charges if c.window.kind in ("tpm", "day")]
        requests = [c for c in charges if c.window.kind == "rpm"]
        return rate_headers(
            min(tokens, key=lambda c: c.remaining, default=None),
            min(requests, key=lambda c: c.remaining, default=None),
            time.time() if now is None else now,
        )


def rate_headers(tokens: Charge | None, requests: Charge | None, now: float) -> dict[str, str]:
    """The tightest token window (the one that binds) and the request window, if any."""
    headers: dict[str, str] = {}
    for suffix, charge in (("tokens", tokens), ("requests", requests)):
        if charge is None:
            continue
        headers[f"x-ratelimit-limit-{suffix}"] = str(charge.limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = str(charge.remaining)
        headers[f"x-ratelimit-reset-{suffix}"] = format_duration(
            until_ms(charge.window.reset_at, now)
        )
    return headers
