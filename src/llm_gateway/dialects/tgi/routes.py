"""TGI's native routes, for the default model and per model under ``/models/{name}``.

``text_generation.Client(base_url)`` and ``huggingface_hub.InferenceClient(base_url)`` POST to
the base URL itself, so ``POST /models/{name}`` is the compat route of that model.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway import __version__
from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.decoding import decode, loads
from llm_gateway.core.parameters import GenerateRequest
from llm_gateway.dialects.tgi.encoding import TGIStreamEncoder, generate_body
from llm_gateway.http import openapi
from llm_gateway.http.context import (
    GatewayContext,
    request_deadline,
    request_record,
    request_timing,
)
from llm_gateway.http.responses import json_response
from llm_gateway.http.sse import stream_response

GENERATE_BODY = openapi.body(GenerateRequest)
TGI_COMPAT_VERSION = "3.3.6"  # the TGI API version whose shapes the gateway serves


def info_body(model: ModelConfig) -> dict[str, object]:
    """TGI's ``Info`` shape from the model's configuration."""
    limits = model.limits
    return {
        "model_id": model.model_id or model.name,
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128,
        "max_best_of": limits.max_best_of,
        "max_stop_sequences": limits.max_stop_sequences,
        "max_input_tokens": limits.max_input_tokens,
        "max_total_tokens": limits.max_total_tokens,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "llm-gateway",
        "version": f"{TGI_COMPAT_VERSION}+llm-gateway.{__version__}",
        "sha": None,
        "docker_label": None,
    }


def build_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(tags=["TGI"])

    async def run(request: Request, name: str | None, *, stream: bool | None) -> Response:
        """``stream=None`` is the compat route: the body's top-level ``stream`` decides."""
        model = ctx.model(name)
        record = request_record(request)
        record.model = model.name
        body = decode(GenerateRequest, loads(await request.body()))
        ctx.check_input_size(body.inputs, param="inputs", status=422)
        streaming = bool(body.stream) if stream is None else stream
        prepared = ctx.service.prepare(
            model, body.inputs, body.effective_parameters(), stream=streaming
        )
        timing = request_timing(request)
        record.prompt = body.inputs
        record.input_tokens = prepared.input_tokens
        deadline = request_deadline(request)
        if streaming:
            return await stream_response(
                ctx.service.stream(prepared, deadline),
                TGIStreamEncoder(details=prepared.wants_details),
                timing=timing,
                record=record,
                deadline=deadline,
                commit_after=ctx.settings.stream_commit_seconds,
                heartbeat=ctx.settings.heartbeat_seconds,
            )
        result = await ctx.service.generate(prepared, deadline)
        timing.upstream = record.upstream_seconds = result.upstream_seconds
        record.tokens_from_details(result.details)
        if record.output is not None:
            record.output.append(result.generated_text)
        out = generate_body(result, details=prepared.wants_details)
        return json_response([out] if stream is None else out)

    @router.post("/generate", openapi_extra=GENERATE_BODY, summary="Generate tokens")
    async def generate(request: Request) -> Response:
        return await run(request, None, stream=False)

    @router.post(
        "/generate_stream", openapi_extra=GENERATE_BODY, summary="Generate a stream of tokens (SSE)"
    )
    async def generate_stream(request: Request) -> Response:
        return await run(request, None, stream=True)

    @router.post(
        "/",
        openapi_extra=GENERATE_BODY,
        summary="Generate, streaming when the body says `stream: true`",
    )
    async def compat_generate(request: Request) -> Response:
        return await run(request, None, stream=None)

    @router.get("/info", summary="Model info")
    async def info() -> Response:
        return json_response(info_body(ctx.model(None)))

    @router.post(
        "/models/{name}/generate",
        openapi_extra=GENERATE_BODY,
        summary="Generate tokens with a named model",
    )
    async def model_generate(request: Request, name: str) -> Response:
        return await run(request, name, stream=False)

    @router.post(
        "/models/{name}/generate_stream",
        openapi_extra=GENERATE_BODY,
        summary="Stream tokens from a named model",
    )
    async def model_generate_stream(request: Request, name: str) -> Response:
        return await run(request, name, stream=True)

    @router.post(
        "/models/{name}", openapi_extra=GENERATE_BODY, summary="Compat generate with a named model"
    )
    async def model_compat_generate(request: Request, name: str) -> Response:
        return await run(request, name, stream=None)

    @router.get("/models/{name}/info", summary="Info of a named model")
    async def model_info(name: str) -> Response:
        return json_response(info_body(ctx.model(name)))

    @router.get("/models/{name}/health", summary="Health of the gateway for a named model")
    async def model_health(name: str) -> Response:
        ctx.model(name)
        return Response(status_code=200)

    return router
