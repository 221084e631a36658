"""Per-request timings and the ``Server-Timing`` header.

``gateway`` is the time the gateway itself spent (total minus upstream), ``upstream`` the
SageMaker call, and for streams ``ttft`` the time to the first token. A stream's header is
written when the response starts, so it reports ``ttft`` only when the first token arrived
before the head went out (the usual case); otherwise ``upstream`` is the wait so far.

>>> t = Timing(start=0.0)
>>> t.upstream = 0.0405
>>> t.header(now=0.0420)
'gateway;dur=1.5, upstream;dur=40.5'
>>> Timing(start=0.0).header(now=0.002)  # answered without calling SageMaker
'gateway;dur=2.0, upstream;dur=0.0'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Timing:
    start: float = field(default_factory=time.perf_counter)
    upstream: float | None = None
    ttft: float | None = None

    def header(self, now: float | None = None) -> str:
        total = (time.perf_counter() if now is None else now) - self.start
        upstream = self.upstream or 0.0
        parts = [
            f"gateway;dur={max(total - upstream, 0.0) * 1000:.1f}",
            f"upstream;dur={upstream * 1000:.1f}",  # 0 when SageMaker was not called
        ]
        if self.ttft is not None:
            parts.append(f"ttft;dur={self.ttft * 1000:.1f}")
        return ", ".join(parts)
