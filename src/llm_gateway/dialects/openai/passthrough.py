"""Chat requests for backends that take them as they are (``backend.chat``: TGI's Messages
API), instead of a prompt from the gateway's template.

What comes back is normalised like every other answer: OpenAI finish reasons (TGI says
``stop_sequence``), stop text removed, our ids and model name, errors in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.events import ChatChunk, StreamEvent
from llm_gateway.core.stops import cut_at_stop
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.openai.encoding import OpenAIStreamEncoder, finish_reason, usage_body
from llm_gateway.dialects.openai.generation import Generation, collect, stream_seconds
from llm_gateway.dialects.openai.mapping import chat_sampling
from llm_gateway.dialects.openai.schemas import ChatCompletionRequest
from llm_gateway.http.context import GatewayContext
from llm_gateway.http.replies import Reply, StreamReply


def _usage(data: dict[str, Any] | None, fallback: tuple[int, int]) -> dict[str, Any]:
    if data and isinstance(data.get("prompt_tokens"), int):
        return usage_body(data["prompt_tokens"], int(data.get("completion_tokens", 0)), False)
    return usage_body(fallback[0], fallback[1], True)


class ChatChunkEncoder(OpenAIStreamEncoder):
    """Re-encodes an upstream's chat chunks: same output contract as the templated path."""

    def __init__(self, *, prompt_estimate: int, **kwargs: Any) -> None:
        super().__init__(prompt_tokens=lambda _: (prompt_estimate, True), **kwargs)
        self.prompt_estimate = prompt_estimate
        self._usage_sent = False

    def event(self, event: StreamEvent) -> bytes:
        assert isinstance(event, ChatChunk), "chat streams carry chat chunks"
        data = event.data
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


def _joined_text(chunks: list[ChatChunk]) -> tuple[str, str | None, dict[str, Any] | None, int]:
    """The text, upstream finish reason, usage and content-delta count of a chat stream."""
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
    return text, reason, usage, count


async def forward(
    ctx: GatewayContext,
    request: Request,
    model: ModelConfig,
    req: ChatCompletionRequest,
    data: dict[str, Any],
) -> Reply:
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
    stream = ctx.service.chat(model, data, generation.deadline)
    if sampling.stream:
        encoder = ChatChunkEncoder(
            chat=True,
            completion_id=generation.id,
            model=model.name,
            created=generation.created,
            stops=stops,
            include_usage=sampling.include_usage,
            logprobs=False,
            prompt_estimate=prompt_estimate,
        )
        return StreamReply(stream, encoder)
    chunks = [c for c in await collect(stream, generation.deadline) if isinstance(c, ChatChunk)]
    raw, reason, usage, count = _joined_text(chunks)
    answer, cut = cut_at_stop(raw, stops)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": answer},
        "logprobs": None,
        "finish_reason": finish_reason(reason, cut),
        "usage": _usage(usage, (prompt_estimate, count)),
    }
    return generation.reply([choice], stream_seconds(stream))
