"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``, and
the same under a model's base URL (``/models/{name}/v1/…``, the model taken from the path).

A request is read once into a :class:`~.mapping.Conversation`. A model with a prompt template
(TGI) renders it and runs a generation stream — TGI's details give the exact token counts; a
model whose backend takes chat requests (``backend: openai``: vLLM, SGLang, LMI) gets an OpenAI
chat completion with tools, translated back block by block (:mod:`.encoding`). Budgets, the
in-flight cap, wake-up holds, fallbacks, metrics and logs are the core's, as for every dialect.
The query string (Claude Code posts ``?beta=true``) and the ``anthropic-version`` and
``anthropic-beta`` headers are accepted and change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.streaming import TokenStream
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.anthropic import mapping
from llm_gateway.dialects.anthropic.encoding import MessageEncoder
from llm_gateway.dialects.anthropic.errors import error_body, rate_limit_headers
from llm_gateway.dialects.anthropic.schemas import CountTokensRequest, MessagesRequest
from llm_gateway.dialects.context import V1_BASES, GatewayContext, answered_as
from llm_gateway.http.dialect import DialectBase, Endpoint
from llm_gateway.http.replies import Accounting, JSONReply, Reply, StreamReply, drain
from llm_gateway.http.state import request_state

IGNORED = "x-llm-gateway-ignored-params"  # the hints a request carried that were not honoured
MAX_TOKENS = "x-llm-gateway-max-tokens"  # the max_tokens used, when the model's limits clamped it
# TGI's parameter names in errors of the shared rules -> the Messages API's.
_PARAMS = {"inputs": "messages", "max_new_tokens": "max_tokens", "stop": "stop_sequences"}


class AnthropicDialect(DialectBase):
    """Anthropic's Messages API over every configured model."""

    name = "anthropic"
    fallback_prefixes = ("/v1/messages",)

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    def error_body(self, error: GatewayError) -> tuple[int, bytes]:
        return error_body(error)

    def error_headers(self, error: GatewayError) -> dict[str, str]:
        return rate_limit_headers(error)

    def _model(self, request: Request, requested: str) -> ModelConfig:
        name = request.path_params.get("name")
        model = self.ctx.model(str(name) if name is not None else requested)
        request_state(request.scope).record.model = model.name
        return model

    def _count(self, model: ModelConfig, text: str) -> tuple[int, bool]:
        """The prompt's tokens: the model's tokenizer when configured, else the estimate."""
        counter = self.ctx.service.counters.get(model.name)
        if counter is not None:
            return counter.count(text), False
        return estimate_tokens(text), True

    def _prompt(self, model: ModelConfig, conv: mapping.Conversation) -> tuple[str, bool]:
        """What the model reads (a rendered template, or the chat text) and whether the
        model's backend takes chat requests."""
        pipeline = self.ctx.pipeline
        if pipeline.takes_chat(model):
            if conv.has_tools and not pipeline.capabilities(model).tools:
                # TGI's Messages API is relayed plain chat (no tools), like the OpenAI routes.
                raise mapping.invalid(
                    f"tools: model '{model.name}' takes chat requests to which the gateway "
                    "relays no tools; tools need a model with `backend: openai`",
                    "tools",
                )
            text = conv.text()
            pipeline.check_size(text, param="messages")
            return text, True
        turns = mapping.template_messages(conv, model.name)
        return pipeline.render(model, turns, param="messages"), False

    async def count_tokens(self, request: Request) -> Reply:
        req = mapping.parse(CountTokensRequest, await request.body())
        model = self._model(request, req.model)
        conv = mapping.conversation(req, self.ctx.settings.max_messages)
        prompt, _ = self._prompt(model, conv)
        return JSONReply({"input_tokens": self._count(model, prompt)[0]})

    async def messages(self, request: Request) -> Reply:
        ctx = self.ctx
        req = mapping.parse(MessagesRequest, await request.body())
        mapping.check_sampling(req)
        model = self._model(request, req.model)
        state = request_state(request.scope)
        record, deadline = state.record, state.deadline
        if req.metadata is not None and req.metadata.user_id:
            record.end_user = req.metadata.user_id
        conv = mapping.conversation(req, ctx.settings.max_messages)
        client_stops = list(mapping.stop_sequences(req, model.limits))
        prompt, chat = self._prompt(model, conv)
        input_tokens, estimated = self._count(model, prompt)
        max_tokens = mapping.clamp(req.max_tokens, input_tokens, model.limits)
        headers = {IGNORED: ",".join(conv.hints)} if conv.hints else {}
        if max_tokens != req.max_tokens:
            headers[MAX_TOKENS] = str(max_tokens)
        stream: TokenStream
        if chat:
            body = mapping.chat_body(req, conv, max_tokens)
            record.prompt = orjson.dumps(body["messages"]).decode()
            stream = ctx.pipeline.chat(model, body, deadline)
            stops = ctx.pipeline.chat_stops(model, client_stops)
        else:
            stream, stops = self._generate(
                model, conv, prompt, req, max_tokens, client_stops, deadline
            )
            record.prompt = prompt
        encoder = MessageEncoder(
            message_id=f"msg_{state.request_id}",
            model=answered_as(model),
            input_tokens=input_tokens,
            estimated=estimated,
            stops=stops,
            client_stops=client_stops,
            wire=bool(req.stream),
            rename=answered_as(model) == model.name,
        )
        if req.stream:
            return StreamReply(stream, encoder, headers)
        seconds = await drain(stream, encoder, deadline)
        assert encoder.final is not None
        texts = [b["text"] for b in encoder.final["content"] if b["type"] == "text"]
        accounting = Accounting(seconds, usage=encoder.token_usage, texts=texts)
        return JSONReply(encoder.final, headers=headers, accounting=accounting)

    def _generate(
        self,
        model: ModelConfig,
        conv: mapping.Conversation,
        prompt: str,
        req: MessagesRequest,
        max_tokens: int,
        client_stops: list[str],
        deadline: float | None,
    ) -> tuple[TokenStream, list[str]]:
        """A prompt template's generation stream and the stops it runs with."""
        pipeline = self.ctx.pipeline
        parameters = mapping.generate_parameters(req, max_tokens, client_stops)
        turns = mapping.template_messages(conv, model.name)
        try:
            prepared = pipeline.prepare(model, prompt, parameters, client_stops, turns)
        except GatewayError as error:
            error.param = _PARAMS.get(error.param or "", error.param)
            raise
        return pipeline.stream(prepared, deadline), list(prepared.parameters.stop or ())

    def endpoints(self) -> Sequence[Endpoint]:
        routes: list[Endpoint] = []
        for base in V1_BASES:
            routes += [
                Endpoint(
                    "POST",
                    f"{base}/messages",
                    self.messages,
                    "Create a message (Anthropic Messages API)",
                    MessagesRequest,
                ),
                Endpoint(
                    "POST",
                    f"{base}/messages/count_tokens",
                    self.count_tokens,
                    "Count a message's input tokens (Anthropic Messages API; no model call)",
                    CountTokensRequest,
                ),
            ]
        return routes
