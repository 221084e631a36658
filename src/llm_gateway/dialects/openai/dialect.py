"""OpenAI's routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``, and the
same under a model's base URL (``/models/{name}/v1/…``, the model taken from the path), which
is where ``InferenceClient("<gw>/models/<name>")`` posts.

Chat messages become the model's prompt through its template; then, streamed or not, the
generation runs as a *stream* upstream, because only TGI's stream reports the prompt's token
count (``details.input_length``) that ``usage`` needs, and streams are not bound by
InvokeEndpoint's 60 s limit. Backends that take chat requests as they are get the chat body
(:mod:`.passthrough`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.decoding import decode, loads
from llm_gateway.core.errors import GatewayError
from llm_gateway.dialects.context import V1_BASES, GatewayContext
from llm_gateway.dialects.openai import passthrough
from llm_gateway.dialects.openai.completion import Generation
from llm_gateway.dialects.openai.errors import error_body
from llm_gateway.dialects.openai.mapping import chat_sampling, completion_sampling, invalid
from llm_gateway.dialects.openai.schemas import (
    OPENAI_TYPES,
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
)
from llm_gateway.http.dialect import DialectBase, Endpoint
from llm_gateway.http.replies import JSONReply, Reply
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


class OpenAIDialect(DialectBase):
    """OpenAI's chat completions, completions and models APIs."""

    name = "openai"
    fallback_prefixes = ("/v1/",)

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.created = int(time.time())

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        return error_body(error)

    def model_for(self, request: Request, requested: str | None) -> ModelConfig:
        """The model of a ``/models/{name}/v1/…`` path, else the body's ``model``."""
        name = request.path_params.get("name")
        return self.ctx.model(str(name) if name is not None else requested)

    def model_card(self, model: ModelConfig) -> dict[str, Any]:
        return {"id": model.name, "object": "model", "created": self.created, "owned_by": OWNER}

    async def list_models(self, request: Request) -> Reply:
        models = self.ctx.visible_models()  # a signed-in user's token may limit them
        if "name" in request.path_params:
            models = [self.model_for(request, None)]
        return JSONReply({"object": "list", "data": [self.model_card(m) for m in models]})

    async def get_model(self, request: Request) -> Reply:
        return JSONReply(self.model_card(self.ctx.model(str(request.path_params["model_id"]))))

    async def chat_completions(self, request: Request) -> Reply:
        ctx = self.ctx
        data = loads(await request.body())
        req = decode(ChatCompletionRequest, data, type_names=OPENAI_TYPES)
        model = self.model_for(request, req.model)
        generation = Generation(ctx, request, model, chat=True)
        if len(req.messages) > ctx.settings.max_messages:
            raise invalid(
                f"This gateway accepts at most {ctx.settings.max_messages} messages per request; "
                f"got {len(req.messages)}.",
                "messages",
            )
        if ctx.pipeline.takes_chat(model):
            return await passthrough.forward(ctx, request, model, req, data)
        sampling = chat_sampling(req, model.limits)
        messages = to_messages(req.messages)
        prompt = ctx.pipeline.render(model, messages, param="messages")
        prepared = generation.prepare(prompt, sampling, messages)
        if sampling.stream:
            return generation.stream(prepared, sampling)
        return generation.reply([await generation.choice(prepared, sampling, 0)])

    async def completions(self, request: Request) -> Reply:
        req = decode(CompletionRequest, loads(await request.body()), type_names=OPENAI_TYPES)
        model = self.model_for(request, req.model)
        generation = Generation(self.ctx, request, model, chat=False)
        sampling = completion_sampling(req, model.limits)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise invalid(
                "`prompt` must be a string or a non-empty array of strings "
                "(token ids are not supported).",
                "prompt",
            )
        texts: list[str] = [p for p in prompts if isinstance(p, str)]
        if len(texts) > 1 and sampling.stream:
            raise invalid("Streaming supports one prompt per request.", "prompt")
        for prompt in texts:
            self.ctx.check_input_size(prompt, param="prompt", status=400)
        prepared = await generation.prepare_all(texts, sampling)
        if sampling.stream:
            return generation.stream(prepared[0], sampling, echo=texts[0] if req.echo else "")
        answers = await asyncio.gather(
            *(
                generation.choice(p, sampling, i, echo=texts[i] if req.echo else "")
                for i, p in enumerate(prepared)
            )
        )
        return generation.reply(answers)

    def endpoints(self) -> Sequence[Endpoint]:
        routes: list[Endpoint] = []
        for base in V1_BASES:
            routes += [
                Endpoint(
                    "POST",
                    f"{base}/chat/completions",
                    self.chat_completions,
                    "Chat completion (OpenAI)",
                    ChatCompletionRequest,
                ),
                Endpoint(
                    "POST",
                    f"{base}/completions",
                    self.completions,
                    "Text completion (OpenAI, legacy)",
                    CompletionRequest,
                ),
                Endpoint("GET", f"{base}/models", self.list_models, "List the models"),
            ]
        routes.append(Endpoint("GET", "/v1/models/{model_id}", self.get_model, "Describe a model"))
        return routes
