"""Keys the store has just refused, remembered so their next requests cost no round trip.

After the store refuses a window, this process knows how much of it was used until the window
resets. A request needing more than what is left is refused from memory: no store write and no
upstream call, so an over-quota partner loads neither the table nor the GPU. Other processes'
refunds are invisible here, so the memory is trusted for ``recheck_seconds`` at most; then one
request asks the store again. Refunds settled in this process lower ``used`` at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Exhausted:
    used: int
    reset_at: float
    trust_until: float


class ExhaustedMemory:
    def __init__(self, recheck_seconds: float) -> None:
        self.recheck_seconds = recheck_seconds
        self._known: dict[tuple[str, str], Exhausted] = {}
        self._lock = threading.Lock()

    def remember(self, key_id: str, kind: str, *, used: int, reset_at: float, now: float) -> None:
        trust_until = min(reset_at, now + self.recheck_seconds)
        with self._lock:
            self._known[(key_id, kind)] = Exhausted(used, reset_at, trust_until)

    def refusing(
        self, key_id: str, kind: str, cost: int, limit: int, now: float
    ) -> Exhausted | None:
        """The remembered state if it refuses ``cost`` now, else None (ask the store)."""
        with self._lock:
            known = self._known.get((key_id, kind))
            if known is None:
                return None
            if now >= known.trust_until:
                del self._known[(key_id, kind)]
                return None
            return known if known.used + cost > limit else None

    def refunded(self, key_id: str, kind: str, tokens: int) -> None:
        with self._lock:
            known = self._known.get((key_id, kind))
            if known is not None:
                known.used = max(0, known.used - tokens)
