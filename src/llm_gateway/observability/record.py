"""What one request did: filled by middleware, routes and the stream relay; read once at the end.

``dialect`` is set by the web layer from the route that served the request (``none`` for
probes, the chat page and anything no dialect answered).

>>> r = RequestRecord(request_id="r1", method="POST", path="/v1/chat/completions", started=0.0)
>>> r.dialect
'none'
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.core.errors import GatewayError


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    method: str
    path: str
    started: float
    dialect: str = "none"
    correlation_id: str | None = None  # API Gateway's request id
    api_key_id: str | None = None  # the usage-plan key *id*, never the key
    principal: str | None = None  # who asked: "user:<id>" (a verified token) or "key:<id>"
    tenant: str | None = None  # "tenant:<id>", a signed-in user's tenant when configured
    end_user: str | None = None  # the client's own end-user id (Anthropic's metadata.user_id)
    model: str | None = None
    stream: bool = False
    status: int | None = None
    error_kind: str | None = None
    error_type: str | None = None
    error_code: str | None = None  # the neutral ErrorCode (core/errors.py)
    error_in_stream: bool = False
    duration: float | None = None
    upstream_seconds: float | None = None
    ttft_seconds: float | None = None
    input_tokens: int | None = None
    generated_tokens: int | None = None
    disconnected: bool = False
    prompt: str | None = None
    output: list[str] | None = field(default=None)  # collected only when prompts may be logged
    served_by: str | None = None  # the model that answered, when a fallback did
    # Further per-request counters (WarmingWaits, Fallbacks, BudgetRejections, ...).
    counters: dict[str, float] = field(default_factory=dict)

    def count(self, name: str, value: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + value

    def failover(self, served_by: str | None, warming: bool, waited: float | None) -> None:
        """What the model's wake and fallback policy did (SPEC §5.5)."""
        if served_by is not None and self.model is not None and served_by != self.model:
            self.served_by = served_by
            self.count("Fallbacks")
        if warming:
            self.count("WarmingWaits")
        if waited:
            self.count("WarmingWaitSeconds", waited)

    def fail(self, error: GatewayError, *, in_stream: bool = False) -> None:
        self.error_kind = error.kind.value
        self.error_type = error.error_type
        self.error_code = error.code.value
        self.error_in_stream = in_stream


def api_gateway_context(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """API Gateway's ``requestContext``: from the Lambda event under Mangum, or from the
    ``x-amzn-request-context`` header the Lambda Web Adapter adds."""
    event = scope.get("aws.event")
    if isinstance(event, dict) and isinstance(event.get("requestContext"), dict):
        context: dict[str, Any] = event["requestContext"]
        return context
    for name, value in scope.get("headers", ()):
        if name == b"x-amzn-request-context":
            try:
                parsed = json.loads(value)
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
    return {}
