"""A request's deadline: the earliest of the mode's API Gateway limit and Lambda's own.

Buffered mode (Mangum) answers within API Gateway's 29 s integration limit
(``GATEWAY_REQUEST_TIMEOUT_SECONDS``, set by the Lambda handler); any mode must answer before
Lambda kills the function. Lambda's deadline comes from the invocation context: Mangum's
``aws.context`` object, or the Web Adapter's ``x-amzn-lambda-context`` header (epoch ms in
``deadline_ms`` or ``deadline``). A margin is kept to send a clean error and flush metrics.

Deadlines are ``time.monotonic()`` values, or ``None`` for no limit.

>>> import json, time
>>> scope = {"headers": [(b"x-amzn-lambda-context",
...           json.dumps({"deadline_ms": int(time.time() * 1000) + 60_000}).encode())]}
>>> 58 < compute_deadline(scope, None, now=time.monotonic()) - time.monotonic() <= 59
True
"""

from __future__ import annotations

import json
import time
from collections.abc import MutableMapping
from typing import Any

LAMBDA_MARGIN = 1.0  # seconds kept to answer with an error and write metrics before the kill


def lambda_remaining(scope: MutableMapping[str, Any]) -> float | None:
    """Seconds until Lambda stops this invocation, if running on Lambda."""
    context = scope.get("aws.context")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            return float(remaining()) / 1000
        except Exception:
            return None
    for name, value in scope.get("headers", ()):
        if name == b"x-amzn-lambda-context":
            try:
                data = json.loads(value)
                deadline_ms = data.get("deadline_ms", data.get("deadline"))
                return float(deadline_ms) / 1000 - time.time()
            except (ValueError, TypeError, AttributeError):
                return None
    return None


def compute_deadline(
    scope: MutableMapping[str, Any], timeout: float | None, *, now: float
) -> float | None:
    """The earliest of ``now + timeout`` and Lambda's deadline less the margin."""
    limits: list[float] = []
    if timeout is not None:
        limits.append(now + timeout)
    remaining = lambda_remaining(scope)
    if remaining is not None:
        limits.append(now + remaining - LAMBDA_MARGIN)
    return min(limits) if limits else None
