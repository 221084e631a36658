"""The dialect seam: what a client dialect gives the web layer.

A :class:`Dialect` owns its routes (:class:`Endpoint` handlers that return a
:class:`~llm_gateway.http.replies.Reply`), renders every error on them in its own shape, and
encodes streams with its own :class:`StreamEncoder`. The web layer registers dialects it is
handed by the composition root and never imports one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel
from starlette.requests import Request

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import StreamEvent

if TYPE_CHECKING:
    from llm_gateway.http.replies import Reply

Handler = Callable[[Request], Awaitable["Reply"]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route of a dialect. ``probe`` routes (health, info) are not counted as traffic."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    probe: bool = False


class StreamEncoder(Protocol):
    """A dialect's SSE encoding of one stream (may keep state, e.g. OpenAI's first delta)."""

    def event(self, event: StreamEvent) -> bytes: ...

    def error(self, error: GatewayError) -> bytes: ...

    def end(self) -> bytes: ...


class Dialect(Protocol):
    """One client dialect. ``fallback_prefixes``: paths under which an unknown route is still
    answered in this dialect's error shape (e.g. ``/v1/`` for OpenAI's)."""

    name: str
    fallback_prefixes: tuple[str, ...]

    def endpoints(self) -> Sequence[Endpoint]: ...

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        """The status and JSON body of ``error`` in this dialect."""
        ...
