"""The gateway's ASGI middleware, outermost first:

- :class:`RequestContext`: a request id, a :class:`~llm_gateway.http.state.RequestState`
  (timing, record, deadline) per request; ``x-request-id`` and ``Server-Timing`` on every
  response head; the record written out once the response has ended.
- CORS (Starlette's, from the allow-list), so browsers can read the refusals below.
- :class:`Guard`: who is asking (:mod:`llm_gateway.http.auth`: API keys from
  ``GATEWAY_API_KEYS``, signed-in users' JWTs under ``auth.jwt``; ``GET /health``, the chat
  page and CORS preflights are open; keys and tokens are never logged, their ids are), bodies
  not declared JSON (415, before the body is read, as TGI's axum extractor answers) and the
  body limit (``GATEWAY_MAX_BODY_BYTES``, 413).
- :class:`ErrorBoundary`: an unexpected exception is still answered inside the request
  context (JSON in the route's dialect, request id, timing, a log line, ``ErrorRate``).

All are plain ASGI (not Starlette's ``BaseHTTPMiddleware``) so streamed responses pass through
untouched and a client hanging up still reaches the route.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.config.schema import JwtConfig
from llm_gateway.config.settings import Settings
from llm_gateway.core.errors import (
    GatewayError,
    internal_error,
    payload_too_large,
    unsupported_media_type,
)
from llm_gateway.http.auth import Authenticator, matching_key_id
from llm_gateway.http.deadline import compute_deadline
from llm_gateway.http.errors import DialectRouting
from llm_gateway.http.state import RequestState, set_request_state
from llm_gateway.http.timing import Timing
from llm_gateway.observability.observer import Observer

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Open without a key: the health probe and the chat page with its assets (static, and a user
# must reach the page to type a key into it).
OPEN_PATHS = frozenset({"/health", "/ui"})
OPEN_PREFIXES = ("/ui/",)
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")


_too_large = payload_too_large
_not_json = unsupported_media_type


def presented_key(headers: Headers) -> str | None:
    """The API key a request carries, from ``x-api-key`` or ``Authorization: Bearer``."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def key_id(entry: str) -> tuple[str, str]:
    """``(id, key)`` of one ``GATEWAY_API_KEYS`` entry: ``name:key`` names its id; a bare key's
    id is a short hash of it, so logs and metrics can tell keys apart without holding one.

    >>> key_id("acme:sk-123")
    ('acme', 'sk-123')
    >>> key_id("sk-123")[0]
    'key-acb42a4f'
    """
    name, sep, key = entry.partition(":")
    if sep and name and key:
        return name, key
    return "key-" + hashlib.sha256(entry.encode()).hexdigest()[:8], entry


def key_matches(key: str | None, allowed: tuple[str, ...]) -> bool:
    """Constant-time comparison against every allowed key (no early exit on a match)."""
    return matching_key_id(key, {k: k for k in allowed}) is not None


def _expects_json_body(scope: Scope, headers: Headers) -> bool:
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return True
    declared = headers.get("content-type", "")
    if declared == "application/json":  # what nearly every client sends
        return True
    content_type = declared.split(";", 1)[0].strip().lower()
    return bool(_JSON_TYPE.match(content_type))


class RequestContext:
    """Outermost: gives every request an id and a :class:`RequestState`; adds ``x-request-id``
    and ``Server-Timing`` to every response head (errors and CORS preflights included); writes
    the record out (metrics, log line) once the response has ended, which for a stream is when
    its last byte went out or the client left."""

    def __init__(
        self, app: ASGIApp, observer: Observer, request_timeout: float | None = None
    ) -> None:
        self.app = app
        self.observer = observer
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timing = Timing()
        client_id = Headers(scope=scope).get("x-request-id", "")
        # 128 random bits in hex, as uuid4().hex spells them, without building a UUID object
        request_id = client_id if _REQUEST_ID.match(client_id) else os.urandom(16).hex()
        record = self.observer.start(scope, request_id)
        deadline = compute_deadline(scope, self.request_timeout, now=time.monotonic())
        set_request_state(scope, RequestState(request_id, timing, record, deadline))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                out = MutableHeaders(scope=message)  # nothing inside sets these two
                out.append("x-request-id", request_id)
                out.append("server-timing", timing.header())
            await send(message)

        state = scope["state"]["gateway"]
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.observer.finish(record)
            if state.caller is not None:  # e.g. budget reconciles, now that nothing is left
                state.caller.response_done()


class Guard:
    """Inside CORS (so browsers can read its refusals): credentials, JSON bodies, body limit."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        routing: DialectRouting,
        jwt: JwtConfig | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.routing = routing
        self.ids_by_key = {key: name for name, key in map(key_id, settings.api_keys)}
        self.auth = Authenticator(self.ids_by_key, jwt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.auth.required:
            error = await self._authenticate(scope, headers) or self._reject(scope, headers)
        else:  # open (API Gateway may still have checked a key): nothing to await
            self.auth.open(scope["state"]["gateway"])
            error = self._reject(scope, headers)
        if error is not None:
            await self.routing.render(scope, error)(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    async def _authenticate(self, scope: Scope, headers: Headers) -> GatewayError | None:
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or scope["method"] == "OPTIONS":
            return None
        return await self.auth.check(scope, headers, scope["state"]["gateway"])

    def _reject(self, scope: Scope, headers: Headers) -> GatewayError | None:
        settings = self.settings
        if not _expects_json_body(scope, headers):
            return _not_json(headers.get("content-type"))
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return _too_large(settings.max_body_bytes)
        return None

    def _limited(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        limit = self.settings.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        return limited_receive


class ErrorBoundary:
    """Innermost: an exception no handler answered becomes a JSON 500 in the route's dialect
    (the traceback goes to the log, never to the client). After the response has started there
    is nothing left to answer: it is logged and the connection ends."""

    def __init__(self, app: ASGIApp, routing: DialectRouting) -> None:
        self.app = app
        self.routing = routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if started:
                return
            await self.routing.render(scope, internal_error())(scope, receive, send)
