"""What the gateway keeps per request, in one place in the ASGI scope.

The outermost middleware creates a :class:`RequestState`; routes, the stream relay and error
rendering read it with :func:`request_state`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.core.admission import Caller
from llm_gateway.http.timing import Timing
from llm_gateway.observability.record import RequestRecord

_KEY = "gateway"


@dataclass(slots=True)
class RequestState:
    request_id: str = ""
    timing: Timing = field(default_factory=Timing)
    record: RequestRecord = field(
        default_factory=lambda: RequestRecord(request_id="", method="", path="", started=0.0)
    )
    deadline: float | None = None  # time.monotonic() value; see llm_gateway.http.deadline
    key_id: str | None = None  # the API key's id (never the key), when keys are checked here
    caller: Caller | None = None  # set by the route: work owed once the response has ended
    # A signed-in user (a verified token): ids without prefixes, and the models the token
    # allows (None: any). Set by the Guard (llm_gateway.http.auth).
    user: str | None = None
    tenant: str | None = None
    models: frozenset[str] | None = None


def request_state(scope: MutableMapping[str, Any]) -> RequestState:
    """The request's state (a detached one outside the middleware, e.g. in unit tests)."""
    state = scope.setdefault("state", {})
    current = state.get(_KEY)
    if current is None:
        current = state[_KEY] = RequestState()
    return current  # type: ignore[no-any-return]


def set_request_state(scope: MutableMapping[str, Any], value: RequestState) -> None:
    scope.setdefault("state", {})[_KEY] = value
