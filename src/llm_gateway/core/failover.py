"""Opening a model's upstream when it may be asleep, throttled or unavailable.

Runs on the worker thread, before the first byte: nothing has reached the client, so another
attempt or another model cannot be seen as a half-answer.

- **Warming** (an inference component at zero copies: the transport's ``model_warming``
  error): ``wake.fallback``, then ``fallbacks``, answer at once; with none (or none
  answering) the call is retried every ``retry_seconds`` until the model answers or
  ``wait_seconds`` (bounded by the request's deadline) runs out, then the warming error
  stands. The failed call is what wakes the model, so it always happens first.
- **Not ready, throttled, unavailable** (after the transport's own retries): ``fallbacks`` are
  tried in order; if all fail, the primary's error stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from llm_gateway.core.errors import ErrorKind, GatewayError

log = logging.getLogger(__name__)

T = TypeVar("T")
ANSWER_MARGIN = 0.5  # seconds kept before a request's deadline to answer "still warming"


@dataclass(frozen=True, slots=True)
class Failover:
    """One model's policy (from its ``wake`` and ``fallbacks`` settings)."""

    wait_seconds: float = 0.0
    retry_seconds: float = 20.0
    wake_fallback: str | None = None
    fallbacks: tuple[str, ...] = ()


def is_warming(error: GatewayError) -> bool:
    return error.code == "model_warming"


def can_fall_back(error: GatewayError) -> bool:
    """Failures where the model never started: not ready, throttled, unavailable, warming."""
    return error.kind is ErrorKind.THROTTLED


@dataclass(slots=True)
class Outcome(Generic[T]):
    value: T
    served_by: str  # the model that answered
    warming_waited: float = 0.0  # seconds spent waiting for a model to wake


class Attempts(Generic[T]):
    """Calls ``call(model_name)`` under a model's failover policy.

    ``closed`` says the client left (stop at once); ``on_warming`` is told when the model is
    found asleep (a stream then says so to its client); ``deadline`` is a ``time.monotonic()``
    value or ``None``.
    """

    def __init__(
        self,
        primary: str,
        policy: Failover,
        call: Callable[[str], T],
        *,
        deadline: float | None,
        closed: threading.Event,
        on_warming: Callable[[], None] | None = None,
        on_served: Callable[[str, float], None] | None = None,
    ) -> None:
        self.primary = primary
        self.policy = policy
        self.call = call
        self.deadline = deadline
        self.closed = closed
        self.on_warming = on_warming
        self.on_served = on_served

    def run(self) -> Outcome[T]:
        outcome = self._run()
        if self.on_served is not None:
            self.on_served(outcome.served_by, outcome.warming_waited)
        return outcome

    def _run(self) -> Outcome[T]:
        try:
            return Outcome(self.call(self.primary), self.primary)
        except GatewayError as error:
            if not can_fall_back(error):
                raise
            if is_warming(error):
                return self._warming(error)
            return self._fallbacks(error, self.policy.fallbacks)

    def _fallbacks(self, error: GatewayError, names: Sequence[str]) -> Outcome[T]:
        for name in names:
            if self.closed.is_set():
                break
            try:
                log.info(
                    "model %s failed before answering (%s); trying %s",
                    self.primary,
                    error.error_type,
                    name,
                )
                return Outcome(self.call(name), name)
            except GatewayError as other:
                if not can_fall_back(other):
                    raise
        raise error

    def _warming(self, error: GatewayError) -> Outcome[T]:
        if self.on_warming is not None:
            self.on_warming()
        policy = self.policy
        others = tuple(
            dict.fromkeys(n for n in (policy.wake_fallback, *policy.fallbacks) if n is not None)
        )
        if others:
            try:
                return self._fallbacks(error, others)
            except GatewayError as failed:
                if not can_fall_back(failed):
                    raise
        return self._wait(error)

    def _wait(self, error: GatewayError) -> Outcome[T]:
        """Retry the sleeping model every ``retry_seconds`` until it answers or time is up."""
        policy = self.policy
        started = time.monotonic()
        give_up = started + policy.wait_seconds
        if self.deadline is not None:
            # Stop early enough to answer "warming" (retryable) before the deadline's 504.
            give_up = min(give_up, self.deadline - ANSWER_MARGIN)
        while True:
            wait = min(policy.retry_seconds, give_up - time.monotonic())
            if wait <= 0 or self.closed.wait(wait):
                raise error
            try:
                value = self.call(self.primary)
            except GatewayError as again:
                if not is_warming(again):
                    raise
                continue
            return Outcome(value, self.primary, time.monotonic() - started)
