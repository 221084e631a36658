"""X-Ray subsegments around upstream calls, through Powertools Tracer, when tracing is on.

Powertools disables its Tracer outside Lambda (and with ``POWERTOOLS_TRACE_DISABLED=true``),
and the X-Ray SDK is an optional dependency: without either, :func:`upstream_span` is a no-op.
With it, botocore is patched too, so each SageMaker call is its own subsegment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

_tracer: Any = None
_loaded = False


def tracer() -> Any:
    global _tracer, _loaded
    if not _loaded:
        _loaded = True
        if (
            os.environ.get("LAMBDA_TASK_ROOT")
            and os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() != "true"
        ):
            try:
                from aws_lambda_powertools import Tracer

                candidate = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "llm-gateway"))
                _tracer = None if candidate.disabled else candidate
            except Exception:  # no aws-xray-sdk: tracing stays off
                _tracer = None
    return _tracer


_OFF = contextlib.nullcontext()  # reusable: what every span is while tracing is off


def upstream_span(name: str, model: str) -> contextlib.AbstractContextManager[Any]:
    active = tracer()
    if active is None:
        return _OFF
    return _span(active, name, model)


@contextlib.contextmanager
def _span(active: Any, name: str, model: str) -> Iterator[None]:
    with active.provider.in_subsegment(f"## {name}") as subsegment:
        subsegment.put_annotation(key="model", value=model)
        yield
