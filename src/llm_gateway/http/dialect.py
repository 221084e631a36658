"""The dialect seam: what a client dialect gives the web layer.

A :class:`Dialect` owns its routes (:class:`Endpoint` handlers that return a
:class:`~llm_gateway.http.replies.Reply`), renders every error on them in its own shape, and
encodes streams with its own :class:`StreamEncoder`, whose hooks return frames
(:mod:`llm_gateway.http.frames`) that :mod:`llm_gateway.http.sse` alone writes as bytes.
The web layer registers dialects it is handed by the composition root and never imports one.
Every hook the web layer calls is declared here; :class:`DialectBase` and :class:`EncoderBase`
give the defaults, so a dialect writes only what it does differently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel
from starlette.requests import Request

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import StreamEvent, TokenUsage
from llm_gateway.http.frames import Comment, Frames

if TYPE_CHECKING:
    from llm_gateway.http.replies import Reply

Handler = Callable[[Request], Awaitable["Reply"]]
HEARTBEAT: Frames = (Comment(),)  # an SSE comment: keeps a silent stream alive


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
    """A dialect's SSE encoding of one stream (may keep state, e.g. OpenAI's first delta).

    The relay (:mod:`llm_gateway.http.sse`) calls :meth:`event` per event, :meth:`error` for a
    failure after the head (the stream ends there) and :meth:`end`; and the hooks
    :meth:`opening`, :meth:`heartbeat`, :meth:`answer_as`; it reads :attr:`token_usage` for
    the request's record once the stream is over. Each hook returns the frames it owes the
    client, ``()`` for none; the relay writes all frames of one call (and of the events that
    arrived together) in one write.
    """

    # What the answer used, once known (for metrics and logs; None: nothing to count).
    token_usage: TokenUsage | None

    def event(self, event: StreamEvent) -> Frames:
        """The frames of one stream event (none while, e.g., a stop sequence is held back)."""
        ...

    def error(self, error: GatewayError) -> Frames:
        """A failure after the head, in the dialect's error shape (its ``error_body``)."""
        ...

    def end(self) -> Frames:
        """The upstream finished: what closes the stream (e.g. OpenAI's ``[DONE]``)."""
        ...

    def opening(self) -> Frames:
        """Events owed before any token, written with the head when the model is still
        silent (e.g. Anthropic's ``message_start``)."""
        ...

    def heartbeat(self) -> Frames:
        """The keep-alive written while the upstream is silent (e.g. Anthropic's ``ping``)."""
        ...

    def answer_as(self, model: str) -> None:
        """A fallback model answered: name it in what follows (OpenAI's ``model``)."""
        ...


class EncoderBase:
    """The defaults of :class:`StreamEncoder`'s hooks: nothing before the first token, an SSE
    comment as heartbeat, answers that keep their model name, nothing counted."""

    __slots__ = ()
    token_usage: TokenUsage | None = None

    def opening(self) -> Frames:
        return ()

    def heartbeat(self) -> Frames:
        return HEARTBEAT

    def answer_as(self, model: str) -> None:
        return None


class Dialect(Protocol):
    """One client dialect. ``fallback_prefixes``: paths under which an unknown route is still
    answered in this dialect's error shape (e.g. ``/v1/`` for OpenAI's)."""

    name: str
    fallback_prefixes: tuple[str, ...]

    def endpoints(self) -> Sequence[Endpoint]: ...

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        """The status and JSON body of ``error`` in this dialect (each dialect has one
        module-level ``error_body`` of this signature, from its one table by ``ErrorCode``)."""
        ...

    def error_headers(self, error: GatewayError) -> dict[str, str]:
        """Further headers of that answer (e.g. Anthropic's rate-limit headers)."""
        ...


class DialectBase:
    """The defaults of :class:`Dialect`: no fallback prefixes, no further error headers."""

    fallback_prefixes: tuple[str, ...] = ()

    def error_headers(self, error: GatewayError) -> dict[str, str]:
        return {}
