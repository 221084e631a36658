"""``POST /v1/responses`` and ``POST /models/{name}/v1/responses``: OpenAI's Responses API,
stateless.

The request becomes template messages and chat completions' :class:`Sampling`
(:mod:`.mapping`), then runs exactly as a chat completion runs — the same
:class:`~llm_gateway.dialects.openai.generation.Generation` (record, deadline, defaults, TGI
validation, stops), the same upstream stream, or the same chat passthrough for backends that
take chat requests — and is answered as a ``response`` object or its typed event stream
(:mod:`.encoding`). Errors are chat completions' OpenAI shapes, with Responses parameter names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.ports import ModelTarget
from llm_gateway.core.streaming import TokenStream
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.openai.encoding import PromptTokens, error_body
from llm_gateway.dialects.openai.generation import Generation, collect, stream_seconds
from llm_gateway.dialects.openai.responses.encoding import ResponseEncoder
from llm_gateway.dialects.openai.responses.mapping import (
    chat_body,
    parse,
    refuse_stateful,
    rename_param,
    sampling,
    to_messages,
)
from llm_gateway.dialects.openai.responses.schemas import ResponsesRequest
from llm_gateway.http.context import GatewayContext
from llm_gateway.http.dialect import Endpoint
from llm_gateway.http.replies import Accounting, JSONReply, Reply, StreamReply
from llm_gateway.http.state import request_state


def echo_fields(req: ResponsesRequest, model: ModelConfig) -> dict[str, Any]:
    """What a ``response`` repeats of its request. Unset sampling values are the effective
    ones: the model's configured default, else OpenAI's (and TGI's) 1.0."""
    defaults = model.defaults
    temperature = req.temperature
    if temperature is None:
        temperature = defaults.temperature if defaults and defaults.temperature is not None else 1.0
    top_p = req.top_p
    if top_p is None:
        top_p = defaults.top_p if defaults and defaults.top_p is not None else 1.0
    fmt = req.text.format if req.text else None
    text = {
        "format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"},
        "verbosity": (req.text.verbosity if req.text else None) or "medium",
    }
    return {
        "model": model.name,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        "temperature": temperature,
        "text": text,
        "tool_choice": req.tool_choice or "auto",
        "top_p": top_p,
        "metadata": req.metadata or {},
    }


class ResponsesDialect:
    """OpenAI's Responses API. Registered after :class:`OpenAIDialect`, whose ``/v1/`` fallback
    renders errors of unknown paths; this one renders those of its own routes."""

    name = "openai"
    fallback_prefixes: tuple[str, ...] = ()

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        status, body = error_body(error)
        body["error"]["param"] = rename_param(body["error"]["param"])
        return status, orjson.dumps(body)

    async def create(self, request: Request) -> Reply:
        ctx = self.ctx
        req = parse(await request.body())
        name = request.path_params.get("name")
        model = ctx.model(str(name) if name is not None else req.model)
        refuse_stateful(req)
        generation = Generation(ctx, request, model, chat=True)
        messages = to_messages(req, ctx.settings.max_messages)
        wanted = sampling(req, model.limits)
        stream: TokenStream
        prompt_tokens: PromptTokens
        if ctx.service.backend(model).chat:
            text = " ".join(m.content for m in messages)
            ctx.check_input_size(text, param="input", status=400)
            estimate = estimate_tokens(text)
            body = chat_body(req, messages)
            generation.record.prompt = orjson.dumps(body["messages"]).decode()
            defaults = model.defaults
            stops = list(wanted.client_stop or ((defaults.stop or ()) if defaults else ()))
            stream = ctx.service.chat(model, body, generation.deadline)
            prompt_tokens = lambda _details: (estimate, True)  # noqa: E731
        else:
            template = ctx.templates[model.name]
            prompt = template.render(messages)
            ctx.check_input_size(prompt, param="input", status=400)

            def reprompt(other: ModelTarget) -> str:  # a fallback renders with its own template
                return ctx.templates[other.name].render(messages)

            prepared = generation.prepare(prompt, wanted, template.stop, reprompt)
            stops = list(prepared.parameters.stop or ())
            stream = ctx.service.stream(prepared, generation.deadline)
            prompt_tokens = generation.prompt_tokens(prepared)
        request_id = request_state(request.scope).request_id
        encoder = ResponseEncoder(
            response_id=f"resp_{request_id}",
            item_id=f"msg_{request_id}",
            echo=echo_fields(req, model),
            stops=stops,
            prompt_tokens=prompt_tokens,
            wire=wanted.stream,
        )
        if wanted.stream:
            return StreamReply(stream, encoder)
        events = await collect(stream, generation.deadline)
        if stream.served_by is not None:  # a fallback answered
            encoder.answer_as(stream.served_by)
        for event in events:
            encoder.event(event)
        encoder.end()
        assert encoder.final is not None
        accounting = Accounting(stream_seconds(stream), usage=encoder.usage, texts=[encoder.text])
        return JSONReply(encoder.final, accounting=accounting)

    def endpoints(self) -> Sequence[Endpoint]:
        return [
            Endpoint(
                "POST",
                f"{base}/responses",
                self.create,
                "Create a model response (OpenAI Responses API, stateless)",
                ResponsesRequest,
            )
            for base in ("/v1", "/models/{name}/v1")
        ]
