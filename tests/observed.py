"""Reading what the gateway wrote to stdout: its EMF metric documents and JSON log lines."""

from __future__ import annotations

import json
import time


class Stdout:
    """Accumulates captured stdout and finds the EMF documents and log lines of a request."""

    def __init__(self, capsys):
        self.capsys = capsys
        self.lines: list[dict] = []

    def _read(self):
        for line in self.capsys.readouterr().out.splitlines():
            if line.startswith("{"):
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    pass

    def emf(self, request_id: str, timeout: float = 3.0) -> dict:
        return self._wait(lambda d: "_aws" in d and d.get("request_id") == request_id, timeout)

    def log(self, request_id: str, timeout: float = 3.0) -> dict:
        return self._wait(
            lambda d: d.get("message") == "request" and d.get("request_id") == request_id, timeout
        )

    def logs(self, match, count: int, timeout: float = 3.0) -> list[dict]:
        """The request log lines ``match`` selects, once ``count`` of them are out: a line is
        written after its response has ended, so a client can be done before it is."""
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            found = [d for d in self.lines if d.get("message") == "request" and match(d)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def _wait(self, match, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            found = [d for d in self.lines if match(d)]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching line in {len(self.lines)} captured lines")
            time.sleep(0.02)

    def text(self) -> str:
        self._read()
        return "\n".join(json.dumps(d) for d in self.lines)


def metrics_of(doc: dict) -> dict[str, tuple[float, str]]:
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    return {
        m["Name"]: (
            doc[m["Name"]][0] if isinstance(doc[m["Name"]], list) else doc[m["Name"]],
            m["Unit"],
        )
        for m in directive["Metrics"]
    }
