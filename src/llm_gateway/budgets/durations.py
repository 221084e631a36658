"""OpenAI's ``x-ratelimit-reset-*`` durations: Go's ``time.Duration`` text, to the millisecond.

>>> [format_duration(ms) for ms in (0, 41, 1000, 1500, 66_000, 360_000, 3_723_004)]
['0s', '41ms', '1s', '1.5s', '1m6s', '6m0s', '1h2m3.004s']
"""

from __future__ import annotations

import math


def format_duration(milliseconds: int) -> str:
    """Go's ``Duration.String()`` for a whole number of milliseconds (negative → ``0s``)."""
    ms = max(0, milliseconds)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def until_ms(reset_at: float, now: float) -> int:
    """Milliseconds from ``now`` to ``reset_at``, rounded up: a client must not retry early."""
    return max(0, math.ceil((reset_at - now) * 1000))
