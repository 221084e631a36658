"""The FastAPI app: one factory used by uvicorn (local and Lambda Web Adapter) and Mangum.

Everything expensive (config, boto3 client, thread pool) is built once per process here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from llm_gateway import __version__
from llm_gateway.config.loader import ConfigError, load_config
from llm_gateway.config.schema import GatewayConfig
from llm_gateway.config.settings import Settings
from llm_gateway.core.generation import GenerationService, Upstream
from llm_gateway.core.tokenizer import HFTokenizer, TokenCounter
from llm_gateway.dialects.openai import routes as openai_routes
from llm_gateway.dialects.tgi import routes as tgi_routes
from llm_gateway.http import openapi
from llm_gateway.http.context import GatewayContext
from llm_gateway.http.errors import install_error_handlers
from llm_gateway.http.middleware import Guard, RequestContext
from llm_gateway.observability.observer import Observer
from llm_gateway.templates import template_for


def load_counters(config: GatewayConfig) -> dict[str, TokenCounter]:
    """The tokenizers of the models that configure one; a bad one stops start-up."""
    counters: dict[str, TokenCounter] = {}
    for index, model in enumerate(config.models):
        if model.tokenizer:
            try:
                counters[model.name] = HFTokenizer(model.tokenizer)
            except Exception as exc:
                raise ConfigError(
                    f"Invalid configuration: model '{model.name}' (models[{index}]), "
                    f"field 'tokenizer': cannot load {model.tokenizer}: {exc}"
                ) from None
    return counters


def create_app(
    config: GatewayConfig | None = None,
    settings: Settings | None = None,
    upstream: Upstream | None = None,
    observer: Observer | None = None,
) -> FastAPI:
    """Build the gateway. Without arguments it reads the environment (SPEC §4)."""
    settings = settings or Settings.from_env()
    config = config or load_config()
    if upstream is None:
        from llm_gateway.upstream.sagemaker import SageMakerRuntime

        upstream = SageMakerRuntime(settings)  # one boto3 client per process
    # One thread per in-flight upstream call or stream; created on demand.
    executor = ThreadPoolExecutor(
        max_workers=settings.max_connections + 8, thread_name_prefix="upstream"
    )
    service = GenerationService(upstream, executor, load_counters(config))
    templates = {model.name: template_for(model.template) for model in config.models}
    ctx = GatewayContext(config, settings, service, templates)

    app = FastAPI(
        title="SageMaker LLM Gateway",
        version=__version__,
        description="TGI and OpenAI dialects in front of SageMaker endpoints running TGI.",
        redoc_url=None,
    )
    app.state.context = ctx
    install_error_handlers(app)
    openapi.install(app)

    @app.get("/health", tags=["health"], summary="Gateway health (no upstream call)")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/", tags=["health"], include_in_schema=False)
    async def root_health() -> Response:
        return Response(status_code=200)

    app.include_router(tgi_routes.build_router(ctx))
    app.include_router(openai_routes.build_router(ctx))
    if settings.ui:  # GATEWAY_UI: the chat page at /ui/ (static files, no upstream call)
        from llm_gateway.ui import mount_ui

        mount_ui(app)

    app.add_middleware(Guard, settings=settings)
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
