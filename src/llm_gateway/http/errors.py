"""Rendering a :class:`GatewayError` in the dialect that owns the request's route.

The route a request matched knows its dialect; a request that matched none (a 404, or one
refused by the middleware before routing) is matched against the registered routes, then the
dialects' ``fallback_prefixes``, then the default dialect.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

from llm_gateway.core.decoding import DESERIALIZE_PREFIX
from llm_gateway.core.errors import (
    ErrorKind,
    GatewayError,
    request_error,
    route_error,
)
from llm_gateway.http.dialect import Dialect
from llm_gateway.http.replies import JSONBytesResponse
from llm_gateway.http.state import request_state

log_internal = "llm_gateway.http.errors"


class DialectRouting:
    """Which dialect answers for a request: filled as dialects register their routes."""

    def __init__(self, default: Dialect) -> None:
        self.default = default
        # Keyed by id(): routes compare by value and are unhashable.
        self.by_route: dict[int, tuple[BaseRoute, Dialect]] = {}
        self.dialects: list[Dialect] = []

    def add(self, dialect: Dialect, routes: Sequence[BaseRoute]) -> None:
        self.dialects.append(dialect)
        for route in routes:
            self.by_route[id(route)] = (route, dialect)

    def dialect_for(self, scope: MutableMapping[str, Any]) -> Dialect:
        route = scope.get("route")
        if route is not None and id(route) in self.by_route:
            return self.by_route[id(route)][1]
        partial: Dialect | None = None
        for candidate, dialect in self.by_route.values():
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return dialect
            if match is Match.PARTIAL and partial is None:
                partial = dialect  # the path is the dialect's, the method is not
        if partial is not None:
            return partial
        path = str(scope.get("path", ""))
        # The longest matching prefix wins (Anthropic's /v1/messages/… inside OpenAI's /v1/).
        best: tuple[int, Dialect] | None = None
        for dialect in self.dialects:
            for prefix in dialect.fallback_prefixes:
                if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), dialect)
        return self.default if best is None else best[1]

    def render(self, scope: MutableMapping[str, Any], error: GatewayError) -> Response:
        """The error response, recorded as the request's failure."""
        dialect = self.dialect_for(scope)
        record = request_state(scope).record
        record.fail(error)
        if record.dialect == "none" and scope.get("route") is None:
            record.dialect = dialect.name  # refused before routing: still this dialect's traffic
        status, body = dialect.error_body(error)
        headers = {}
        if error.retry_after is not None:
            headers["retry-after"] = str(error.retry_after)
        if error.kind is ErrorKind.AUTH:
            headers["www-authenticate"] = "Bearer"
        headers.update(error.headers)
        headers.update(dialect.error_headers(error))
        return JSONBytesResponse(body, status_code=status, headers=headers)


def _http_error(exc: HTTPException) -> GatewayError:
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    return route_error(exc.status_code, detail)


def install_error_handlers(app: FastAPI, routing: DialectRouting) -> None:
    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return routing.render(request.scope, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return routing.render(request.scope, _http_error(exc))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        error = request_error(f"{DESERIALIZE_PREFIX}{where}: {first['msg']}")
        return routing.render(request.scope, error)

    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
