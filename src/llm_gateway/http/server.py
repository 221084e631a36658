"""The web app: registers the dialects it is handed, their routes and error rendering, the
health probe, the chat page and the middleware. Knows no dialect by name."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from llm_gateway import __version__
from llm_gateway.config.schema import JwtConfig
from llm_gateway.config.settings import Settings
from llm_gateway.core.admission import CURRENT_CALLER, Caller
from llm_gateway.http import openapi
from llm_gateway.http.auth import ALLOWED_MODELS
from llm_gateway.http.context import ALIAS
from llm_gateway.http.dialect import Dialect, Endpoint
from llm_gateway.http.errors import DialectRouting, install_error_handlers
from llm_gateway.http.middleware import ErrorBoundary, Guard, RequestContext
from llm_gateway.http.replies import Reply, StreamReply, StreamSettings, respond
from llm_gateway.http.sse import SERVED_BY
from llm_gateway.http.state import request_state
from llm_gateway.observability.observer import Observer

_PATH_PARAM = re.compile(r"{(\w+)}")
# Response headers a browser app on another origin may read (CORS): ids and timings, retry
# hints, the budget left, and what the gateway did with the request.
EXPOSED_HEADERS = (
    "x-request-id",
    "server-timing",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "x-llm-gateway-served-by",
    "x-llm-gateway-dropped-params",
    "x-llm-gateway-ignored-params",
    "x-llm-gateway-max-tokens",
    "www-authenticate",
)
DROPPED_PARAMS = "x-llm-gateway-dropped-params"


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
        # Who is asking, for the core's admission checks (budgets) and their headers. A
        # signed-in user is metered as the user (and tenant), not as the key that carried them.
        key = None if state.user else state.record.api_key_id or state.key_id
        caller = state.caller = Caller(state.request_id, key, user=state.user, tenant=state.tenant)
        token = CURRENT_CALLER.set(caller)
        allowed = ALLOWED_MODELS.set(state.models)
        alias = ALIAS.set(None)  # set by GatewayContext.model when a model_aliases glob matched
        reply: Reply | None = None
        try:
            reply = await handler(request)
            response = await respond(reply, request, stream_settings)
        finally:
            aliased = ALIAS.get() is not None
            ALIAS.reset(alias)
            ALLOWED_MODELS.reset(allowed)
            CURRENT_CALLER.reset(token)
            if not isinstance(reply, StreamReply):  # a stream accounts for itself at its end
                state.record.failover(caller.served_by, caller.warming, caller.warming_waited)
        extra = caller.headers()
        if caller.served_by is not None and caller.served_by != state.record.model:
            extra[SERVED_BY] = caller.served_by
        elif aliased and state.record.model is not None:  # the answer names the alias
            extra[SERVED_BY] = caller.served_by or state.record.model
        if caller.dropped_params:  # fields the model's backend ignored (unsupported_params)
            extra[DROPPED_PARAMS] = ",".join(caller.dropped_params)
        if extra:  # most answers have none: their headers are left as the reply made them
            response.headers.update(extra)
        return response

    route.__name__ = f"{dialect.name}_{endpoint.handler.__name__}"
    return route


class GatewayRoute(APIRoute):
    """A dialect's route: its handler reads the request itself (body, path parameters) and
    returns the response, so FastAPI's request handler (dependency solving, body parsing,
    response serialization, all with nothing to do here) is left out of every request. It is
    still an :class:`APIRoute`: the OpenAPI document lists it as before."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


def register(
    app: FastAPI, dialect: Dialect, routing: DialectRouting, stream_settings: StreamSettings
) -> None:
    """Add a dialect's routes, remembering that their errors are the dialect's to render."""
    before = len(app.router.routes)
    for endpoint in dialect.endpoints():
        app.router.add_api_route(
            endpoint.path,
            _route(dialect, endpoint, stream_settings),
            methods=[endpoint.method],
            summary=endpoint.summary,
            tags=[dialect.name],
            openapi_extra=_openapi_extra(endpoint) or None,
            route_class_override=GatewayRoute,
        )
    routing.add(dialect, app.router.routes[before:])


def build_app(
    settings: Settings,
    dialects: Sequence[Dialect],
    observer: Observer | None = None,
    jwt: JwtConfig | None = None,
) -> FastAPI:
    """The gateway's ASGI app; the first dialect answers for paths no dialect claims.
    ``jwt``: the models file's ``auth.jwt`` (signed-in users), if any."""
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
        from llm_gateway.ui import SignIn, mount_ui

        # With auth.jwt.client_id the page offers "Sign in" (its issuer and public client id).
        mount_ui(app, SignIn(jwt.issuer, jwt.client_id) if jwt and jwt.client_id else None)

    app.add_middleware(ErrorBoundary, routing=routing)
    app.add_middleware(Guard, settings=settings, routing=routing, jwt=jwt)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],  # reflects what the browser asks for (x-stainless-*, auth)
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )
    app.add_middleware(
        RequestContext,
        observer=observer or Observer(settings),
        request_timeout=settings.request_timeout,
    )
    return app
