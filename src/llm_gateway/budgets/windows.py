"""Fixed UTC windows and the table's item keys.

Every item of a budget's subject lives in its partition: ``key#<id>`` for an API key,
``user#<sub>`` for a signed-in user, ``tenant#<id>`` for a tenant. The sort key says what it is:

====================  ==========================================================
``tpm#<minute>``      tokens reserved in that minute (``used``)
``rpm#<minute>``      requests reserved in that minute (``used``)
``day#<day>``         tokens reserved that day (``used``, the daily limit) and the day's totals
                      (``input_tokens``, ``generated_tokens``, ``requests``, ``failed``)
``streams``           streams open now (``used``) and one ``lease_<id>`` per open stream
``limits``            overrides written by ``llm-gateway keys|users create|update``
``settle#<uuid>``     one per reconciled request: makes the reconcile idempotent
====================  ==========================================================

The window start is in the sort key, so a new window is a new item and no reset is ever
written; TTL (``expires_at``) only cleans up.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Literal

WindowKind = Literal["tpm", "rpm", "day"]

# Window items are useless after their reset; an hour of grace leaves them for debugging.
MINUTE_GRACE_SECONDS = 3600
# Day items also hold the usage report, so they are kept for a year and a bit.
DAY_RETENTION_SECONDS = 400 * 86400


SubjectKind = Literal["key", "user", "tenant"]


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose budget a window belongs to: an API key, a signed-in user or a tenant."""

    kind: SubjectKind
    id: str

    @property
    def pk(self) -> str:
        return f"{self.kind}#{self.id}"

    @property
    def label(self) -> str:
        """How refusals and logs name it: ``key acme``, ``user alice``, ``tenant acme``."""
        return f"{self.kind} {self.id}"

    @property
    def principal(self) -> str:
        """The usage report's id: a key's bare id (as before), ``user:<sub>``, ``tenant:<id>``."""
        return self.id if self.kind == "key" else f"{self.kind}:{self.id}"


def pk(key_id: str) -> str:
    return f"key#{key_id}"


@dataclass(frozen=True)
class Window:
    kind: WindowKind
    sk: str
    reset_at: float  # epoch seconds when the next window starts
    expires_at: int  # TTL attribute value

    @property
    def per_day(self) -> bool:
        return self.kind == "day"


def minute_window(kind: Literal["tpm", "rpm"], now: float) -> Window:
    start = int(now // 60) * 60
    label = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(start))
    return Window(kind, f"{kind}#{label}", start + 60, start + 60 + MINUTE_GRACE_SECONDS)


def day_window(now: float) -> Window:
    start = int(now // 86400) * 86400
    return Window(
        "day",
        day_sk(time.strftime("%Y-%m-%d", time.gmtime(start))),
        start + 86400,
        start + 86400 + DAY_RETENTION_SECONDS,
    )


def day_sk(day: str) -> str:
    return f"day#{day}"


def day_start(day: str) -> int:
    """Epoch seconds of a ``YYYY-MM-DD`` day's UTC midnight."""
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))
