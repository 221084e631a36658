"""TGI's native routes, for the default model and per model under ``/models/{name}``.

``text_generation.Client(base_url)`` and ``huggingface_hub.InferenceClient(base_url)`` POST to
the base URL itself, so ``POST /models/{name}`` is the compat route of that model.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.decoding import decode, loads
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import TokenUsage
from llm_gateway.core.parameters import GenerateParameters, GenerateRequest
from llm_gateway.core.ports import Capabilities
from llm_gateway.dialects.context import GatewayContext
from llm_gateway.dialects.tgi.encoding import TGIStreamEncoder, generate_body
from llm_gateway.dialects.tgi.errors import error_body
from llm_gateway.http.dialect import DialectBase, Endpoint
from llm_gateway.http.replies import Accounting, EmptyReply, JSONReply, Reply, StreamReply
from llm_gateway.http.state import request_state


def info_body(model: ModelConfig, max_concurrent_requests: int) -> dict[str, object]:
    """TGI's ``Info`` shape, from what the configuration knows: the model's limits, the
    gateway's own cap on generations in flight, the endpoint's TGI version when the model sets
    ``tgi_version``. What the gateway cannot know is null (``version``, ``sha``), and
    ``validation_workers`` is null because validation runs in the request itself."""
    limits = model.limits
    return {
        "model_id": model.model_id or model.name,
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": max_concurrent_requests,
        "max_best_of": limits.max_best_of,
        "max_stop_sequences": limits.max_stop_sequences,
        "max_input_tokens": limits.max_input_tokens,
        "max_total_tokens": limits.max_total_tokens,
        "validation_workers": None,
        "max_client_batch_size": limits.max_client_batch_size,
        "router": "llm-gateway",
        "version": model.tgi_version,
        "sha": None,
        "docker_label": None,
    }


def compat_parameters(parameters: GenerateParameters, model: ModelConfig) -> GenerateParameters:
    """TGI's compat route (``POST /``, SageMaker's ``/invocations``) sets an unset
    ``return_full_text`` to its router-wide default: true for a ``text-generation`` model (the
    pipeline tag ``/info`` reports) and for an unknown tag since TGI 1.4.2 (``server.rs``
    ``compat_generate``). A model's configured default, when it sets one, comes first.
    """
    if parameters.return_full_text is not None:
        return parameters
    if model.defaults is not None and model.defaults.return_full_text is not None:
        return parameters
    return parameters.model_copy(update={"return_full_text": True})


def full_text_prefix(
    parameters: GenerateParameters, model: ModelConfig, inputs: str, capabilities: Capabilities
) -> tuple[GenerateParameters, str]:
    """A backend that cannot echo the prompt on streams or in chat (``prompt_echo`` false: an
    OpenAI server) gets help: the gateway does what TGI's router does for
    ``return_full_text``: the answer's
    ``generated_text`` is the prompt followed by the generated text (tokens and ``details``
    are the generated ones only, as TGI's). Returns the parameters to send (full text off)
    and the prefix to put before ``generated_text``."""
    wanted = parameters.return_full_text
    if wanted is None and model.defaults is not None:
        wanted = model.defaults.return_full_text
    if capabilities.prompt_echo or not wanted:
        return parameters, ""
    return parameters.model_copy(update={"return_full_text": False}), inputs


def no_estimate() -> int:
    """TGI's answers carry no usage, and a request's record logs only a prompt something
    counted (the upstream, a tokenizer): an estimate here would read the whole prompt, on
    every request, for nothing. Its usage says the prompt is uncounted (estimated, as 0)."""
    return 0


def _model_name(request: Request) -> str | None:
    name = request.path_params.get("name")
    return None if name is None else str(name)


class TGIDialect(DialectBase):
    """TGI 3.x's API: generate, generate_stream, the compat route and info."""

    name = "tgi"
    fallback_prefixes: tuple[str, ...] = ()

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        return error_body(error)

    async def run(self, request: Request, *, stream: bool | None) -> Reply:
        """``stream=None`` is the compat route: the body's top-level ``stream`` decides."""
        ctx = self.ctx
        model = ctx.model(_model_name(request))
        state = request_state(request.scope)
        record = state.record
        record.model = model.name
        body = decode(GenerateRequest, loads(await request.body()))
        ctx.check_input_size(body.inputs, param="inputs", status=422)
        streaming = bool(body.stream) if stream is None else stream
        parameters = body.effective_parameters()
        if stream is None:
            parameters = compat_parameters(parameters, model)
        capabilities = ctx.pipeline.capabilities(model)
        parameters, prefix = full_text_prefix(parameters, model, body.inputs, capabilities)
        prepared = ctx.service.prepare(model, body.inputs, parameters, stream=streaming)
        record.prompt = body.inputs
        record.input_tokens = prepared.input_tokens
        if streaming:
            return StreamReply(
                ctx.service.stream(prepared, state.deadline),
                TGIStreamEncoder(
                    details=prepared.wants_details,
                    prefix=prefix,
                    counted=prepared.input_tokens,
                    estimate=no_estimate,
                ),
            )
        result = await ctx.service.generate(prepared, state.deadline)
        usage = TokenUsage.of_details(
            result.details, counted=prepared.input_tokens, estimate=no_estimate
        )
        accounting = Accounting(
            result.upstream_seconds, usage=usage, texts=(result.generated_text,)
        )
        result.generated_text = prefix + result.generated_text
        out = generate_body(result, details=prepared.wants_details)
        return JSONReply([out] if stream is None else out, accounting=accounting)

    async def generate(self, request: Request) -> Reply:
        return await self.run(request, stream=False)

    async def generate_stream(self, request: Request) -> Reply:
        return await self.run(request, stream=True)

    async def compat_generate(self, request: Request) -> Reply:
        return await self.run(request, stream=None)

    async def info(self, request: Request) -> Reply:
        model = self.ctx.model(_model_name(request))
        # GATEWAY_MAX_CONCURRENT_REQUESTS: the gateway's cap (TGI's default, 128, when unset)
        return JSONReply(info_body(model, self.ctx.settings.max_concurrent_requests))

    async def model_health(self, request: Request) -> Reply:
        self.ctx.model(_model_name(request))
        return EmptyReply()

    def endpoints(self) -> Sequence[Endpoint]:
        body = GenerateRequest
        return [
            Endpoint("POST", "/generate", self.generate, "Generate tokens", body),
            Endpoint(
                "POST", "/generate_stream", self.generate_stream, "Generate tokens (SSE)", body
            ),
            Endpoint(
                "POST",
                "/",
                self.compat_generate,
                "Generate, streaming when the body says `stream: true`",
                body,
            ),
            Endpoint("GET", "/info", self.info, "Model info", probe=True),
            Endpoint(
                "POST",
                "/models/{name}/generate",
                self.generate,
                "Generate tokens with a named model",
                body,
            ),
            Endpoint(
                "POST",
                "/models/{name}/generate_stream",
                self.generate_stream,
                "Stream tokens from a named model",
                body,
            ),
            Endpoint(
                "POST",
                "/models/{name}",
                self.compat_generate,
                "Compat generate with a named model",
                body,
            ),
            Endpoint("GET", "/models/{name}/info", self.info, "Info of a named model", probe=True),
            Endpoint(
                "GET",
                "/models/{name}/health",
                self.model_health,
                "Health of the gateway for a named model",
                probe=True,
            ),
        ]
