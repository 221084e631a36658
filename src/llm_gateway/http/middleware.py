"""The gateway's ASGI middleware: request id and timings (:class:`RequestContext`), API keys
and the body limit (:class:`Guard`).

Both are plain ASGI (not Starlette's ``BaseHTTPMiddleware``) so streamed responses pass through
untouched and a client hanging up still reaches the route.

- ``x-request-id``: echoed when the client sent a sane one, else a new id; on every response.
- ``Server-Timing``: added to every response head from the request's :class:`Timing`.
- API keys (``GATEWAY_API_KEYS``): ``x-api-key`` or ``Authorization: Bearer``, compared in
  constant time; ``GET /health``, the chat page (``/ui/``) and CORS preflights are open. Keys
  are never logged.
- Body limit (``GATEWAY_MAX_BODY_BYTES``): 413 on a larger ``Content-Length`` or body.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.config.settings import Settings
from llm_gateway.core.errors import ErrorKind, GatewayError
from llm_gateway.http.deadline import request_deadline
from llm_gateway.http.errors import render_error
from llm_gateway.http.timing import Timing
from llm_gateway.observability.observer import Observer

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
OPEN_PATHS = frozenset({"/health", "/ping", "/ui"})
# The chat page and its assets: static, and a user must reach the page to type a key into it.
OPEN_PREFIXES = ("/ui/",)


def _auth_error() -> GatewayError:
    return GatewayError(
        "Missing or invalid API key: send it as `x-api-key` or `Authorization: Bearer <key>`",
        status=401,
        error_type="authentication",
        kind=ErrorKind.AUTH,
    )


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        f"Request body is larger than the limit of {limit} bytes",
        status=413,
        error_type="payload_too_large",
        kind=ErrorKind.CLIENT,
    )


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


def key_matches(key: str | None, allowed: tuple[str, ...]) -> bool:
    """Constant-time comparison against every allowed key (no early exit on a match)."""
    if key is None:
        return False
    candidate = key.encode()
    found = False
    for allowed_key in allowed:
        found |= hmac.compare_digest(candidate, allowed_key.encode())
    return found


class RequestContext:
    """Outermost: gives every request an id, a :class:`Timing` and a record; adds
    ``x-request-id`` and ``Server-Timing`` to every response head (errors and CORS preflights
    included); writes the record out (metrics, log line) once the response has ended, which for
    a stream is when its last byte went out or the client left."""

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
        request_id = client_id if _REQUEST_ID.match(client_id) else uuid.uuid4().hex
        record = self.observer.start(scope, request_id)
        state = scope.setdefault("state", {})
        state["timing"] = timing
        state["request_id"] = request_id
        state["record"] = record
        state["deadline"] = request_deadline(scope, self.request_timeout, now=time.monotonic())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                out = MutableHeaders(scope=message)
                out["x-request-id"] = request_id
                out["server-timing"] = timing.header()
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.observer.finish(record)


class Guard:
    """Inside CORS (so browsers can read its errors): API keys and the body limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._reject(scope, Headers(scope=scope))
        if error is not None:
            record = scope.get("state", {}).get("record")
            if record is not None:
                record.fail(error)
            await render_error(scope["path"], error)(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _reject(self, scope: Scope, headers: Headers) -> GatewayError | None:
        settings = self.settings
        path = scope["path"]
        is_open = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        if settings.api_keys and not is_open and scope["method"] != "OPTIONS":
            if not key_matches(presented_key(headers), settings.api_keys):
                return _auth_error()
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
