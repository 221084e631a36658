"""An inference component that scales to zero, as callers of SageMaker Runtime see it.

While the component has no copy, every invocation (buffered or streaming) fails at once with
SageMaker's no-capacity ``ValidationError`` (HTTP 400). The first failed call is what wakes it
(on AWS: the ``NoCapacityInvocationFailures`` alarm scales the copy count out); calls keep failing
until ``wake_seconds`` have passed since then. Once awake, ``idle_seconds`` without a call take it
back to zero.

>>> from llm_gateway.emulator.spec import ScaleToZero
>>> wake = WakeState(ScaleToZero(wake_seconds=5, idle_seconds=60), now=0.0)
>>> wake.admit(1.0), wake.state(1.0), wake.admit(5.9), wake.admit(6.0), wake.state(66.0)
(False, 'waking', False, True, 'asleep')
"""

from __future__ import annotations

import time
from typing import Any, Literal

from llm_gateway.emulator.spec import ScaleToZero

# Verbatim from AWS (blog and notebook on scale-down-to-zero); botocore prefixes it with
# "An error occurred (ValidationError) when calling the InvokeEndpoint operation: ".
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
    "in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)

State = Literal["asleep", "waking", "awake"]


class WakeState:
    """The copy count of one emulated component over time (times from ``time.monotonic``)."""

    def __init__(self, config: ScaleToZero, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.config = config
        self._state: State = "asleep" if config.asleep_at_start else "awake"
        self._since = now  # when waking started / when the last call was admitted
        self.wakes = 0
        self.no_capacity_failures = 0

    def state(self, now: float | None = None) -> State:
        """The state at ``now``: wakes finish and idle components go back to zero lazily."""
        now = time.monotonic() if now is None else now
        if self._state == "waking" and now - self._since >= self.config.wake_seconds:
            self._state, self._since = "awake", self._since + self.config.wake_seconds
        if self._state == "awake" and now - self._since >= self.config.idle_seconds:
            self._state = "asleep"
        return self._state

    def admit(self, now: float | None = None) -> bool:
        """One invocation: True if a copy serves it, False if it fails for lack of capacity
        (the first such failure starts the wake)."""
        now = time.monotonic() if now is None else now
        state = self.state(now)
        if state == "awake":
            self._since = now
            return True
        if state == "asleep":
            self._state, self._since = "waking", now
            self.wakes += 1
        self.no_capacity_failures += 1
        return False

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        return {
            "state": self.state(now),
            "wakes": self.wakes,
            "no_capacity_failures": self.no_capacity_failures,
            "wake_seconds": self.config.wake_seconds,
            "idle_seconds": self.config.idle_seconds,
        }
