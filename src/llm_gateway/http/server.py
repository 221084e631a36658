"""The web app: registers the dialects it is handed, their routes and error rendering, the
health probe, the chat page and the middleware. Knows no dialect by name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from llm_gateway import __version__
from llm_gateway.config.settings import Settings
from llm_gateway.core.admission import CURRENT_CALLER, Caller
from llm_gateway.http import openapi
from llm_gateway.http.dialect import Dialect, Endpoint
from llm_gateway.http.errors import DialectRouting, install_error_handlers
from llm_gateway.http.middleware import ErrorBoundary, Guard, RequestContext
from llm_gateway.http.replies import Reply, StreamReply, StreamSettings, respond
from llm_gateway.http.sse import SERVED_BY
from llm_gateway.http.state import request_state
from llm_gateway.observability.observer import Observer

_PATH_PARAM = re.compile(r"{(\w+)}")


def _openapi_extra(endpoint: Endpoint) -> dict[str, Any]:
    """Path parameters and the body model: handlers read both from the request themselves."""
    extra: dict[str, Any] = openapi.body(endpoint.body) if endpoint.body else {}
    names = _PATH_PARAM.findall(endpoint.path)
    if names:
        extra["parameters"] = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
        ]
    return extra


def _route(dialect: Dialect, endpoint: Endpoint, stream_settings: StreamSettings) -> Any:
    handler = endpoint.handler
    name = "none" if endpoint.probe else dialect.name

    async def route(request: Request) -> Response:
        state = request_state(request.scope)
        state.record.dialect = name
        # Who is asking, for the core's admission checks (budgets) and their headers.
        caller = state.caller = Caller(state.request_id, state.record.api_key_id or state.key_id)
        token = CURRENT_CALLER.set(caller)
        reply: Reply | None = None
        try:
            reply = await handler(request)
            response = await respond(reply, request, stream_settings)
        finally:
            CURRENT_CALLER.reset(token)
            if not isinstance(reply, StreamReply):  # a stream accounts for itself at its end
                state.record.failover(caller.served_by, caller.warming, caller.warming_waited)
        response.headers.update(caller.headers())
        if caller.served_by is not None and caller.served_by != state.record.model:
            response.headers[SERVED_BY] = caller.served_by
        return response

    route.__name__ = f"{dialect.name}_{endpoint.handler.__name__}"
    return route


def register(
    app: FastAPI, dialect: Dialect, routing: DialectRouting, stream_settings: StreamSettings
) -> None:
    """Add a dialect's routes, remembering that their errors are the dialect's to render."""
    before = len(app.router.routes)
    for endpoint in dialect.endpoints():
        app.add_api_route(
            endpoint.path,
            _route(dialect, endpoint, stream_settings),
            methods=[endpoint.method],
            summary=endpoint.summary,
            tags=[dialect.name],
            openapi_extra=_openapi_extra(endpoint) or None,
        )
    routing.add(dialect, app.router.routes[before:])


def build_app(
    settings: Settings, dialects: Sequence[Dialect], observer: Observer | None = None
) -> FastAPI:
    """The gateway's ASGI app; the first dialect answers for paths no dialect claims."""
    app = FastAPI(
        title="SageMaker LLM Gateway",
        version=__version__,
        description="TGI and OpenAI dialects in front of SageMaker model endpoints.",
        redoc_url=None,
    )
    routing = DialectRouting(default=dialects[0])
    install_error_handlers(app, routing)
    openapi.install(app)

    @app.get("/health", tags=["health"], summary="Gateway health (no upstream call)")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/", tags=["health"], include_in_schema=False)
    async def root_health() -> Response:  # SageMaker-style probes of the base URL
        return Response(status_code=200)

    stream_settings = StreamSettings(settings.stream_commit_seconds, settings.heartbeat_seconds)
    for dialect in dialects:
        register(app, dialect, routing, stream_settings)
    if settings.ui:  # GATEWAY_UI: the chat page at /ui/ (static files, no upstream call)
        from llm_gateway.ui import mount_ui

        mount_ui(app)

    app.add_middleware(ErrorBoundary, routing=routing)
    app.add_middleware(Guard, settings=settings, routing=routing)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],  # reflects what the browser asks for (x-stainless-*, auth)
            expose_headers=["x-request-id", "server-timing", "retry-after"],
            max_age=600,
        )
    app.add_middleware(
        RequestContext,
        observer=observer or Observer(settings),
        request_timeout=settings.request_timeout,
    )
    return app
