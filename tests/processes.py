"""Child processes for tests that run the gateway as a user does: a free port, and
``python -m llm_gateway serve`` started, waited for and stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(*args: str, env: dict[str, str], log: Path, timeout: float = 30) -> Iterator[str]:
    """``python -m llm_gateway serve --port P ARGS``; yields its URL once the banner is out.

    Output goes to LOG, a file rather than a pipe, so request log lines can never block the
    server. A server that exits or stays silent fails the test with what it printed.
    """
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_gateway", "serve", "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + timeout
        while "Try it:" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llm-gateway serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
