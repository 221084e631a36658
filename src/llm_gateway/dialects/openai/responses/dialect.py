"""``POST /v1/responses`` and ``POST /models/{name}/v1/responses``: OpenAI's Responses API,
stateless.

The request becomes template messages and chat completions' :class:`Sampling`
(:mod:`.mapping`), then runs exactly as a chat completion runs — the same
:class:`~llm_gateway.dialects.openai.completion.Generation` (record, deadline, defaults, TGI
validation, stops), the same upstream stream, or the same chat passthrough for backends that
take chat requests — and is answered as a ``response`` object or its typed event stream
(:mod:`.encoding`). Errors are chat completions' OpenAI shapes, with Responses parameter names
(:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.errors import ErrorKind, GatewayError
from llm_gateway.core.streaming import TokenStream
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.context import V1_BASES, GatewayContext, answered_as
from llm_gateway.dialects.openai.completion import Generation
from llm_gateway.dialects.openai.encoding import PromptTokens
from llm_gateway.dialects.openai.responses.encoding import ResponseEncoder
from llm_gateway.dialects.openai.responses.errors import error_body
from llm_gateway.dialects.openai.responses.mapping import (
    chat_body,
    parse,
    refuse_stateful,
    sampling,
    template_messages,
    to_messages,
)
from llm_gateway.dialects.openai.responses.schemas import ResponsesRequest
from llm_gateway.dialects.openai.responses.tools import Tools, read_tools
from llm_gateway.http.dialect import DialectBase, Endpoint
from llm_gateway.http.replies import Accounting, JSONReply, Reply, StreamReply, drain
from llm_gateway.http.state import request_state


def echo_fields(req: ResponsesRequest, model: ModelConfig, tools: Tools) -> dict[str, Any]:
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
        "model": answered_as(model),
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        "temperature": temperature,
        "text": text,
        "tool_choice": tools.choice,
        "tools": tools.functions,
        "top_p": top_p,
        "metadata": req.metadata or {},
    }


def _message_text(message: dict[str, Any]) -> str:
    """What a chat message says, tool calls' arguments included (for the size check)."""
    calls = message.get("tool_calls") or ()
    return " ".join([message["content"] or "", *(c["function"]["arguments"] for c in calls)])


class ResponsesDialect(DialectBase):
    """OpenAI's Responses API. Registered after :class:`OpenAIDialect`, whose ``/v1/`` fallback
    renders errors of unknown paths; this one renders those of its own routes."""

    name = "openai"
    fallback_prefixes: tuple[str, ...] = ()

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        return error_body(error)

    async def create(self, request: Request) -> Reply:
        ctx = self.ctx
        req = parse(await request.body())
        name = request.path_params.get("name")
        model = ctx.model(str(name) if name is not None else req.model)
        refuse_stateful(req)
        # Tools run where the backend relays them to an OpenAI server (vLLM, SGLang, LMI).
        pipeline = ctx.pipeline
        capabilities = pipeline.capabilities(model)
        relays_tools = capabilities.tools
        tools = read_tools(req, model.name, relays_tools)
        generation = Generation(ctx, request, model, chat=True)
        messages = to_messages(req, ctx.settings.max_messages, tools=relays_tools)
        wanted = sampling(req, model.limits)
        stream: TokenStream
        prompt_tokens: PromptTokens
        if capabilities.chat:
            text = " ".join(_message_text(m) for m in messages)
            pipeline.check_size(text, param="input")
            estimate = estimate_tokens(text)
            body = chat_body(req, messages, tools.chat_fields(req.parallel_tool_calls))
            generation.record.prompt = orjson.dumps(body["messages"]).decode()
            stops = pipeline.chat_stops(model, wanted.client_stop)
            stream = pipeline.chat(model, body, generation.deadline)
            prompt_tokens = lambda _details: (estimate, True)  # noqa: E731
        else:
            turns = template_messages(messages)
            prompt = pipeline.render(model, turns, param="input")
            prepared = generation.prepare(prompt, wanted, turns)
            stops = list(prepared.parameters.stop or ())
            stream = pipeline.stream(prepared, generation.deadline)
            prompt_tokens = generation.prompt_tokens(prepared)
        request_id = request_state(request.scope).request_id
        encoder = ResponseEncoder(
            request_id=request_id,
            echo=echo_fields(req, model, tools),
            stops=stops,
            prompt_tokens=prompt_tokens,
            wire=wanted.stream,
        )
        if wanted.stream:
            return StreamReply(stream, encoder)
        seconds = await drain(stream, encoder, generation.deadline)
        assert encoder.final is not None
        accounting = Accounting(seconds, usage=encoder.token_usage, texts=[encoder.text])
        return JSONReply(encoder.final, accounting=accounting)

    async def stored(self, request: Request) -> Reply:
        """Reading or deleting a stored response: nothing is stored, so the response is not
        found (OpenAI's 404 for an unknown id). Other paths under ``/v1/`` (``…/cancel``) are
        the OpenAI dialect's unknown-route 404."""
        response_id = request.path_params["response_id"]
        raise GatewayError(
            f"Response with id '{response_id}' not found. This gateway is stateless: it stores "
            "no responses (send the whole conversation in `input`).",
            status=404,
            error_type="not_found",
            kind=ErrorKind.CLIENT,
        )

    def endpoints(self) -> Sequence[Endpoint]:
        create = [
            Endpoint(
                "POST",
                f"{base}/responses",
                self.create,
                "Create a model response (OpenAI Responses API, stateless)",
                ResponsesRequest,
            )
            for base in V1_BASES
        ]
        stored = [
            Endpoint(method, path, self.stored, "Stored responses: 404 (nothing is stored)")
            for method, path in (
                ("GET", "/v1/responses/{response_id}"),
                ("DELETE", "/v1/responses/{response_id}"),
                ("GET", "/v1/responses/{response_id}/input_items"),
            )
        ]
        return create + stored
