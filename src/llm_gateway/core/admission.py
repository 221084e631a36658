"""Who may start a generation, decided before anything reaches the model.

- :class:`InFlight`: a per-process cap on generations in flight
  (``GATEWAY_MAX_CONCURRENT_REQUESTS``, TGI's own default of 128). Over it a request is refused
  at once ("Model is overloaded"), so requests never queue silently behind busy threads. A slot
  is held until the upstream call has returned, whatever the client saw (a deadline's 504).
- :class:`Admission` (a protocol; budgets implement it): a per-caller check run *before* the
  upstream call, on the generation's worker thread. A refusal means no upstream call at all.
  Once the upstream call has returned, the ticket is settled with what the model generated.

The caller of the generation in progress (API key id or signed-in user, request id) is a
context variable set by the web layer for each request, so dialects need not carry it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_gateway.core.errors import gateway_overloaded


@dataclass(slots=True)
class Caller:
    """Who is asking, and the admission tickets their request collected (one per generation)."""

    request_id: str
    key_id: str | None = None  # the API key's id (never the key), when a key was presented
    # A signed-in user (SPEC §5.3): ids without their ``user:``/``tenant:`` prefixes, set by
    # the web layer from a verified token. Budgets reserve against the user and the tenant.
    user: str | None = None
    tenant: str | None = None
    tickets: list[Any] = field(default_factory=list)
    # What failover did (set by the generation service, possibly from a worker thread).
    served_by: str | None = None  # the model that answered
    warming: bool = False  # the model was found scaling up from zero
    warming_waited: float | None = None  # seconds waited for it to wake
    # Request fields the model's backend ignored (``unsupported_params: drop``), for a header.
    dropped_params: tuple[str, ...] = ()
    _after: list[Callable[[], None]] = field(default_factory=list)
    _done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def after_response(self, work: Callable[[], None]) -> None:
        """Run ``work`` once the response has gone out (at once if it already has): a budget
        reconcile must never compete with the answer's last bytes."""
        with self._lock:
            if not self._done:
                self._after.append(work)
                return
        work()

    def response_done(self) -> None:
        """The web layer's signal that the response has ended (or the client left)."""
        with self._lock:
            self._done = True
            pending, self._after = self._after, []
        for work in pending:
            work()

    def headers(self) -> dict[str, str]:
        """Response headers the last ticket implies (e.g. ``x-ratelimit-*``)."""
        for ticket in reversed(self.tickets):
            headers = getattr(ticket, "headers", None)
            if callable(headers):
                return dict(headers())
        return {}


CURRENT_CALLER: ContextVar[Caller | None] = ContextVar("llm_gateway_caller", default=None)


@dataclass(frozen=True, slots=True)
class Usage:
    """What one generation really used, for settling its ticket.

    ``generated_anything`` False: the upstream failed before generating (nothing to charge).
    Counts of None: unknown (the request ended before the model did, e.g. the client left):
    the reservation stays charged.
    """

    input_tokens: int | None
    generated_tokens: int | None
    generated_anything: bool


class Admission(Protocol):
    """A per-caller check of a generation (``tokens``: everything the request may make the
    model read and generate). ``admit`` and ``settle`` block (they talk to a store): the
    generation service calls them on worker threads."""

    def applies(self, caller: Caller) -> bool:
        """Whether this caller's generations are checked at all."""
        ...

    def refuse_now(self, caller: Caller, tokens: int) -> None:
        """Raise at once, without I/O, what is already known to be refused."""
        ...

    def admit(self, caller: Caller, tokens: int, *, stream: bool) -> Any:
        """Reserve before the upstream call: a ticket, or raise a :class:`GatewayError`."""
        ...

    def settle(self, ticket: Any, usage: Usage) -> None:
        """Replace the ticket's reservation by what was used. Must not raise."""
        ...


class InFlight:
    """A counter of generations in flight, with a hard cap. Thread-safe (streams end on
    worker threads)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self.count >= self.limit:
                raise gateway_overloaded()
            self.count += 1

    def release(self) -> None:
        with self._lock:
            self.count -= 1
