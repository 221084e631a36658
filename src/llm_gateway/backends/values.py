"""Reading an upstream's JSON values as the core's types: a value of the wrong type is absent
(``None``), never an error, since the decoders read what a container sent as far as it goes."""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int | None:
    """An integer (``True`` is not one, though Python says so)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_number(value: Any) -> float | None:
    """A number as the upstream sent it (an integral log-prob stays an ``int``)."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return value
    return None
