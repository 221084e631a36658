"""Keeping stop sequences out of what clients see.

TGI keeps a plain-text stop sequence at the end of ``generated_text`` (and streams it token by
token). :func:`cut_at_stop` trims a whole text; :class:`StopFilter` does the same for a stream
while holding back only the tail that could still grow into a stop sequence, so text reaches
the client as early as possible.

>>> f = StopFilter(["\\nUser:"])
>>> f.push("Hello"), f.push("\\nUs"), f.push("er: hi")
('Hello', '', '')
>>> f.stopped
True
"""

from __future__ import annotations

from collections.abc import Iterable


def merge_stops(client: Iterable[str], defaults: Iterable[str], limit: int) -> list[str]:
    """The client's stop sequences first, then a template's defaults, within ``limit``."""
    out: list[str] = []
    for stop in (*client, *defaults):
        if stop and stop not in out and len(out) < limit:
            out.append(stop)
    return out


def cut_at_stop(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """``text`` up to the stop sequence that completes first, and whether one was found.

    "Completes first" (earliest end, then earliest start) is where TGI itself would have
    stopped, and what a stream sees first, so streamed and buffered answers agree.
    """
    best: tuple[int, int] | None = None
    for stop in stops:
        if stop:
            start = text.find(stop)
            if start >= 0 and (best is None or (start + len(stop), start) < best):
                best = (start + len(stop), start)
    return (text, False) if best is None else (text[: best[1]], True)


class StopFilter:
    """Streamed text in, text safe to show out; ``stopped`` once a stop sequence appeared."""

    __slots__ = ("_longest", "_pending", "_stops", "stopped")

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self._stops), default=0)
        self._pending = ""
        self.stopped = False

    def push(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        if not self._stops:
            return text
        pending = self._pending + text
        kept, found = cut_at_stop(pending, self._stops)
        if found:
            self._pending = ""
            self.stopped = True
            return kept
        hold = self._held_back(pending)
        self._pending = pending[len(pending) - hold :] if hold else ""
        return pending[: len(pending) - hold]

    def _held_back(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of a stop."""
        for size in range(min(self._longest - 1, len(text)), 0, -1):
            tail = text[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0

    def flush(self) -> str:
        """The held-back tail at the end of the stream (it never became a stop sequence)."""
        rest, self._pending = self._pending, ""
        return "" if self.stopped else rest
