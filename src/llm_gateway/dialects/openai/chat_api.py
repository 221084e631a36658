"""Models whose endpoint runs TGI's Messages API (``chat_api: true``).

The client's chat body goes upstream as it is (TGI ≥ 2.4 recognises a ``messages`` payload on
SageMaker's ``/invocations``), with four changes: ``model`` becomes ``"tgi"`` (anything else is
read as a LoRA adapter id), the call is always a stream with ``include_usage`` (usage and
metrics need TGI's counts), ``top_p: 1`` is dropped (TGI rejects it) and the model's
configured defaults fill what the client left out. What comes back is normalised like every
other answer: OpenAI finish reasons (TGI says ``stop_sequence``), stop text removed, our ids
and model name, errors in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.generation import dumps_request
from llm_gateway.core.sse import ChatChunk, ChatChunkDecoder
from llm_gateway.core.stops import cut_at_stop
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.openai.encoding import (
    OpenAIStreamEncoder,
    finish_reason,
    usage_body,
)
from llm_gateway.dialects.openai.generation import Generation, collect
from llm_gateway.dialects.openai.mapping import chat_sampling
from llm_gateway.dialects.openai.schemas import ChatCompletionRequest
from llm_gateway.http.context import GatewayContext, request_timing
from llm_gateway.http.responses import json_response
from llm_gateway.http.sse import stream_response

# Model defaults (TGI names) -> the chat field they fill when the client left it out.
_DEFAULTS = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
}


def upstream_body(data: dict[str, Any], model: ModelConfig) -> bytes:
    body = dict(data)
    body["model"] = "tgi"
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if body.get("top_p") == 1:
        del body["top_p"]
    body.pop("n", None)  # only n = 1 gets here
    defaults = model.defaults
    if defaults is not None:
        for tgi_name, chat_name in _DEFAULTS.items():
            value = getattr(defaults, tgi_name)
            if (
                value not in (None, [])
                and body.get(chat_name) is None
                and not (
                    chat_name == "max_tokens" and body.get("max_completion_tokens") is not None
                )
            ):
                body[chat_name] = value
    return dumps_request(body)


def _usage(data: dict[str, Any] | None, fallback: tuple[int, int]) -> dict[str, Any]:
    if data and isinstance(data.get("prompt_tokens"), int):
        return usage_body(data["prompt_tokens"], int(data.get("completion_tokens", 0)), False)
    return usage_body(fallback[0], fallback[1], True)


class ChatAPIStreamEncoder(OpenAIStreamEncoder):
    """Re-encodes TGI's chat chunks: same output contract as the templated path."""

    def __init__(self, *, prompt_estimate: int, **kwargs: Any) -> None:
        super().__init__(prompt_tokens=lambda _: (prompt_estimate, True), **kwargs)
        self.prompt_estimate = prompt_estimate
        self._usage_sent = False

    def event(self, chunk: ChatChunk) -> bytes:  # type: ignore[override]
        data = chunk.data
        out = b""
        if not data["choices"]:
            self.usage = _usage(data.get("usage"), (self.prompt_estimate, self.completion_tokens))
            if self.include_usage and self.finish is not None:
                out += self._usage_chunk()
            return out
        if not self._started:
            out += self._chunk("", role=True)
            self._started = True
        for choice in data["choices"]:
            delta = choice.get("delta") or {}
            if "content" in delta:
                self.completion_tokens += 1
            text = self.filter.push(delta.get("content") or "")
            if text:
                out += self._chunk(text)
            if choice.get("finish_reason"):
                tail = self.filter.flush()
                if tail:
                    out += self._chunk(tail)
                self.finish = finish_reason(choice["finish_reason"], self.filter.stopped)
                out += self._chunk(None, self.finish)
        return out

    def _usage_chunk(self) -> bytes:
        self._usage_sent = True
        return b"data: " + orjson.dumps({**self.base, "choices": [], "usage": self.usage}) + b"\n\n"

    def end(self) -> bytes:
        out = b""
        if self.include_usage and not self._usage_sent:
            if self.usage is None:
                self.usage = _usage(None, (self.prompt_estimate, self.completion_tokens))
            out += self._usage_chunk()
        return out + super().end()


async def forward(
    ctx: GatewayContext,
    request: Request,
    model: ModelConfig,
    req: ChatCompletionRequest,
    data: dict[str, Any],
) -> Response:
    sampling = chat_sampling(req, model.limits)  # OpenAI's ranges, checked before any call
    stops = list(sampling.client_stop or ((model.defaults.stop or ()) if model.defaults else ()))
    text = " ".join(
        m.content if isinstance(m.content, str) else "".join(p.text or "" for p in m.content or ())
        for m in req.messages
    )
    ctx.check_input_size(text, param="messages", status=400)
    prompt_estimate = estimate_tokens(text)
    generation = Generation(ctx, request, model, chat=True)
    generation.record.prompt = orjson.dumps(data.get("messages")).decode()
    stream = ctx.service.stream_body(
        model, upstream_body(data, model), ChatChunkDecoder, deadline=generation.deadline
    )
    if sampling.stream:
        encoder = ChatAPIStreamEncoder(
            chat=True,
            completion_id=generation.id,
            model=model.name,
            created=generation.created,
            stops=stops,
            include_usage=sampling.include_usage,
            logprobs=False,
            prompt_estimate=prompt_estimate,
        )
        settings = ctx.settings
        return await stream_response(
            stream,
            encoder,
            timing=request_timing(request),
            record=generation.record,
            deadline=generation.deadline,
            commit_after=settings.stream_commit_seconds,
            heartbeat=settings.heartbeat_seconds,
        )
    chunks: list[ChatChunk] = await collect(stream, generation.deadline)
    generation.record.upstream_seconds = (stream.finished_at or 0.0) - stream.started_at
    text, reason, usage, count = "", None, None, 0
    for chunk in chunks:
        if not chunk.data["choices"]:
            usage = chunk.data.get("usage")
        for choice in chunk.data["choices"]:
            content = (choice.get("delta") or {}).get("content")
            if content is not None:
                text += content
                count += 1
            reason = choice.get("finish_reason") or reason
    text, cut = cut_at_stop(text, stops)
    body = generation.body(
        [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason(reason, cut),
                "usage": _usage(usage, (prompt_estimate, count)),
            }
        ]
    )
    return json_response(body)
