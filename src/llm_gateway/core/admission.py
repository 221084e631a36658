"""Who may start a generation, decided before anything reaches the client.

- :class:`InFlight`: a per-process cap on generations in flight
  (``GATEWAY_MAX_CONCURRENT_REQUESTS``, TGI's own default of 128). Over it a request is refused
  at once ("Model is overloaded"), so requests never queue silently behind busy threads.
- :class:`Admission` (a protocol; budgets implement it): a per-caller check started *alongside*
  the upstream call. Its outcome gates the first event: a refusal closes the upstream before
  anything reaches the client, so the check adds nothing a client can see when it passes.

The caller of the generation in progress (API key id, request id) is a context variable set by
the web layer for each request, so dialects need not carry it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_gateway.core.errors import ErrorKind, GatewayError


@dataclass(slots=True)
class Caller:
    """Who is asking, and the admission tickets their request collected (one per generation)."""

    request_id: str
    key_id: str | None = None
    tickets: list[Any] = field(default_factory=list)
    # What failover did (set by the generation service, possibly from a worker thread).
    served_by: str | None = None  # the model that answered
    warming: bool = False  # the model was found scaling up from zero
    warming_waited: float | None = None  # seconds waited for it to wake
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
    """What one generation really used, for settling its ticket."""

    input_tokens: int | None
    generated_tokens: int | None
    generated_anything: bool


class Admission(Protocol):
    """A per-caller check of a generation (``tokens`` = prompt tokens + max new tokens)."""

    def refuse_now(self, caller: Caller, tokens: int) -> None:
        """Raise at once, without I/O, what is already known to be refused."""
        ...

    def admit(self, caller: Caller, tokens: int, *, stream: bool) -> Awaitable[Any]:
        """Start the check; the awaitable yields a ticket or raises a :class:`GatewayError`."""
        ...

    def settle(self, ticket: Any, usage: Usage) -> None:
        """Replace the ticket's reservation by what was used. Must not block or raise."""
        ...


def overloaded(limit: int) -> GatewayError:
    """TGI's own overload answer; the OpenAI dialect answers it as 503 ``overloaded``."""
    return GatewayError(
        "Model is overloaded",
        status=429,
        error_type="overloaded",
        kind=ErrorKind.THROTTLED,
        retry_after=1,
        code="overloaded",
    )


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
                raise overloaded(self.limit)
            self.count += 1

    def release(self) -> None:
        with self._lock:
            self.count -= 1
