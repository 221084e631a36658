"""The composition root: config, transport, backends and dialects wired into one app.

Used by uvicorn (``llm-gateway serve``, the Lambda Web Adapter via :mod:`.asgi`) and by the
Mangum handler. Everything expensive (config, the boto3 client, the thread pool) is built once
per process here. Adding a dialect is one line in :data:`DIALECTS`; adding a backend, one line
in :data:`llm_gateway.backends.BACKENDS`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI

from llm_gateway.backends import BACKENDS
from llm_gateway.config.loader import ConfigError, load_config
from llm_gateway.config.schema import GatewayConfig
from llm_gateway.config.settings import Settings, aws_region
from llm_gateway.core.admission import Admission, InFlight
from llm_gateway.core.failover import Failover
from llm_gateway.core.generation import GenerationService, Upstream
from llm_gateway.core.pipeline import Pipeline, Turn
from llm_gateway.core.tokenizer import HFTokenizer, TokenCounter
from llm_gateway.dialects.anthropic.dialect import AnthropicDialect
from llm_gateway.dialects.context import GatewayContext
from llm_gateway.dialects.openai.dialect import OpenAIDialect
from llm_gateway.dialects.openai.responses.dialect import ResponsesDialect
from llm_gateway.dialects.tgi.dialect import TGIDialect
from llm_gateway.http.dialect import Dialect
from llm_gateway.http.server import build_app
from llm_gateway.observability.observer import Observer
from llm_gateway.templates import Message, PromptTemplate, template_for
from llm_gateway.transport.sagemaker import SageMakerRuntime

# The client dialects, in registration order; the first answers for paths nobody claims.
DIALECTS: tuple[Callable[[GatewayContext], Dialect], ...] = (
    TGIDialect,  # type: ignore[assignment]
    OpenAIDialect,
    ResponsesDialect,
    AnthropicDialect,
)


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


class TemplatePrompts:
    """The models' prompt templates as the core's :class:`~llm_gateway.core.pipeline.Prompts`."""

    def __init__(self, templates: dict[str, PromptTemplate]) -> None:
        self.templates = templates  # by model name

    def render(self, model: str, turns: Sequence[Turn]) -> str:
        messages = [t if isinstance(t, Message) else Message(t.role, t.content) for t in turns]
        return self.templates[model].render(messages)

    def stops(self, model: str) -> tuple[str, ...]:
        return self.templates[model].stop


def upstreams(config: GatewayConfig, transport: SageMakerRuntime) -> dict[str, Upstream]:
    """Each model's backend (by its ``backend`` setting) on the shared transport."""
    out: dict[str, Upstream] = {}
    for index, model in enumerate(config.models):
        make = BACKENDS.get(model.backend)
        if make is None:
            raise ConfigError(
                f"Invalid configuration: model '{model.name}' (models[{index}]), field "
                f"'backend': '{model.backend}' is not available; use one of "
                f"{', '.join(sorted(BACKENDS))}"
            )
        options: dict[str, Any] = {"chat_only": True} if model.chat_only else {}
        if model.backend == "openai":
            options["unsupported_params"] = model.unsupported_params
        backend = make(**options)
        out[model.name] = Upstream(backend, transport.channel(model, backend.container_error))
    return out


def budget_admission(config: GatewayConfig, observer: Observer) -> Admission | None:
    """Per-key token budgets over DynamoDB, when the models file has a ``budgets`` section
    (the table comes from ``GATEWAY_BUDGETS_TABLE`` on AWS, else the file)."""
    if config.budgets is None:
        return None
    from llm_gateway.budgets import Budgets, make_client, table_name
    from llm_gateway.budgets.admission import BudgetAdmission

    def metric(name: str, value: int, key_id: str) -> None:
        observer.metrics.event(name, value, key_id)

    budgets = Budgets(
        config.budgets,
        client=make_client(region=aws_region()),  # botocore alone ignores AWS_REGION
        table=table_name(config.budgets),
        on_metric=metric,
    )
    return BudgetAdmission(budgets)


def create_app(
    config: GatewayConfig | None = None,
    settings: Settings | None = None,
    transport: SageMakerRuntime | None = None,
    observer: Observer | None = None,
    *,
    settle_inline: bool = False,
) -> FastAPI:
    """Build the gateway. Without arguments it reads the environment (SPEC §4).

    ``settle_inline``: the Lambda entry points set it (the environment may be frozen the moment
    a response is complete), so budgets are settled before a response ends, not after."""
    try:
        return _build(config, settings, transport, observer, settle_inline)
    finally:
        resume_collector()


def resume_collector() -> None:
    """Once per process, after the first app is built (or failed to build).

    Start-up makes a few hundred thousand objects that live as long as the process (FastAPI,
    pydantic and botocore models, the routes), and the cyclic collector would trace them again
    and again while they load: about a tenth of a cold start. The Lambda entry points
    (``handler.py``, ``asgi.py``) pause it before their imports; here start-up's objects are
    moved out of its reach (``gc.freeze``: no full collection retraces them in the middle of a
    request either) and it runs again. Other importers never had it paused."""
    global _collector_resumed
    if not _collector_resumed:
        _collector_resumed = True
        if not gc.isenabled():
            gc.freeze()
            gc.enable()


_collector_resumed = False


def _build(
    config: GatewayConfig | None,
    settings: Settings | None,
    transport: SageMakerRuntime | None,
    observer: Observer | None,
    settle_inline: bool,
) -> FastAPI:
    settings = settings or Settings.from_env()
    config = config or load_config()
    transport = transport or SageMakerRuntime(settings)  # one boto3 client per process
    # One thread per in-flight upstream call or stream; created on demand.
    executor = ThreadPoolExecutor(
        max_workers=settings.max_connections + 8, thread_name_prefix="upstream"
    )
    observer = observer or Observer(settings)
    service = GenerationService(
        upstreams(config, transport),
        executor,
        load_counters(config),
        in_flight=InFlight(settings.max_concurrent_requests),
        admission=budget_admission(config, observer),
        targets={model.name: model for model in config.models},
        failovers={
            model.name: Failover(
                model.wake.wait_seconds,
                model.wake.retry_seconds,
                model.wake.fallback,
                tuple(model.fallbacks),
            )
            for model in config.models
        },
        settle_inline=settle_inline,
    )
    templates = {model.name: template_for(model.template) for model in config.models}
    pipeline = Pipeline(service, TemplatePrompts(templates), settings.max_input_chars)
    ctx = GatewayContext(config, settings, service, pipeline)
    jwt = config.auth.jwt if config.auth else None  # signed-in users (SPEC §5.3)
    return build_app(settings, [make(ctx) for make in DIALECTS], observer, jwt=jwt)
