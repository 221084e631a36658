"""OpenAI's routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

Chat messages become the model's prompt through its template; then, streamed or not, the
generation runs as a TGI *stream* upstream, because only TGI's stream reports the prompt's
token count (``details.input_length``) that ``usage`` needs, and streams are not bound by
InvokeEndpoint's 60 s limit. Models with ``chat_api: true`` forward the chat body instead
(:mod:`.chat_api`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.decoding import decode, loads
from llm_gateway.core.errors import model_not_found
from llm_gateway.dialects.openai import chat_api
from llm_gateway.dialects.openai.generation import Generation
from llm_gateway.dialects.openai.mapping import chat_sampling, completion_sampling, invalid
from llm_gateway.dialects.openai.schemas import (
    OPENAI_TYPES,
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
)
from llm_gateway.http import openapi
from llm_gateway.http.context import GatewayContext, request_record
from llm_gateway.http.responses import json_response
from llm_gateway.templates import Message

OWNER = "llm-gateway"


def to_messages(messages: list[ChatMessage]) -> list[Message]:
    """OpenAI messages as plain role/text pairs; text parts are joined as TGI joins them."""
    out = []
    for index, message in enumerate(messages):
        if message.tool_calls:
            raise invalid(
                "Tool calls are not supported by this model's prompt template.",
                f"messages[{index}].tool_calls",
            )
        content = message.content
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.type != "text" or part.text is None:
                    raise invalid(
                        f"Content parts of type '{part.type}' are not supported.",
                        f"messages[{index}].content",
                    )
                texts.append(part.text)
            content = "".join(texts)
        out.append(Message(message.role, content or ""))
    return out


def build_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI"])
    created = int(time.time())
    templates = ctx.templates

    def model_card(model: ModelConfig) -> dict[str, Any]:
        return {"id": model.name, "object": "model", "created": created, "owned_by": OWNER}

    def find(name: str | None) -> ModelConfig:
        return ctx.model(name)

    @router.get("/models", summary="List the models")
    async def list_models() -> Response:
        return json_response({"object": "list", "data": [model_card(m) for m in ctx.config.models]})

    @router.get("/models/{model_id}", summary="Describe a model")
    async def get_model(model_id: str) -> Response:
        model = ctx.config.get(model_id)
        if model is None:
            raise model_not_found(model_id)
        return json_response(model_card(model))

    @router.post(
        "/chat/completions",
        summary="Chat completion (OpenAI)",
        openapi_extra=openapi.body(ChatCompletionRequest),
    )
    async def chat_completions(request: Request) -> Response:
        data = loads(await request.body())
        req = decode(ChatCompletionRequest, data, type_names=OPENAI_TYPES)
        model = find(req.model)
        request_record(request).model = model.name
        if len(req.messages) > ctx.settings.max_messages:
            raise invalid(
                f"This gateway accepts at most {ctx.settings.max_messages} messages per request; "
                f"got {len(req.messages)}.",
                "messages",
            )
        if model.chat_api:
            return await chat_api.forward(ctx, request, model, req, data)
        sampling = chat_sampling(req, model.limits)
        template = templates[model.name]
        prompt = template.render(to_messages(req.messages))
        ctx.check_input_size(prompt, param="messages", status=400)
        generation = Generation(ctx, request, model, chat=True)
        prepared = generation.prepare(prompt, sampling, template.stop)
        if sampling.stream:
            return await generation.stream(prepared, sampling)
        return json_response(generation.body([await generation.choice(prepared, sampling, 0)]))

    @router.post(
        "/completions",
        summary="Text completion (OpenAI, legacy)",
        openapi_extra=openapi.body(CompletionRequest),
    )
    async def completions(request: Request) -> Response:
        req = decode(CompletionRequest, loads(await request.body()), type_names=OPENAI_TYPES)
        model = find(req.model)
        request_record(request).model = model.name
        sampling = completion_sampling(req, model.limits)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise invalid(
                "`prompt` must be a string or a non-empty array of strings "
                "(token ids are not supported).",
                "prompt",
            )
        if len(prompts) > 1 and sampling.stream:
            raise invalid("Streaming supports one prompt per request.", "prompt")
        for prompt in prompts:
            ctx.check_input_size(prompt, param="prompt", status=400)
        generation = Generation(ctx, request, model, chat=False)
        prepared = [generation.prepare(p, sampling, ()) for p in prompts]
        if sampling.stream:
            return await generation.stream(
                prepared[0], sampling, echo=prompts[0] if req.echo else ""
            )
        choices = await asyncio.gather(
            *(
                generation.choice(p, sampling, i, echo=prompts[i] if req.echo else "")
                for i, p in enumerate(prepared)
            )
        )
        return json_response(generation.body(list(choices)))

    return router
