"""Chat requests for backends that take them as they are (``capabilities.chat``), instead of a
prompt from the gateway's template: TGI's Messages API (``tgi-messages``) and OpenAI servers
(``openai``: vLLM, SGLang, LMI), to which ``tools``/``tool_choice``, ``n > 1``,
``response_format`` and ``logprobs`` are relayed too (``capabilities.openai_chat``).

What comes back is normalised like every other answer: OpenAI finish reasons (TGI says
``stop_sequence``; ``tool_calls`` and ``length`` stay), stop text removed, our ids and model
name, ``usage`` as the container counted it, errors in OpenAI's shape. Tool-call deltas,
log-probs and reasoning text are relayed per choice as the container sent them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.events import ChatChunk, StreamEvent, TokenUsage
from llm_gateway.core.pipeline import collect, stream_seconds
from llm_gateway.core.stops import StopFilter, cut_at_stop
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.context import GatewayContext, answered_as
from llm_gateway.dialects.openai.completion import Generation
from llm_gateway.dialects.openai.encoding import OpenAIStreamEncoder, finish_reason, usage_json
from llm_gateway.dialects.openai.mapping import chat_sampling
from llm_gateway.dialects.openai.schemas import ChatCompletionRequest
from llm_gateway.http.replies import Accounting, JSONReply, Reply, StreamReply
from llm_gateway.http.sse import sse_event


def _extras(delta: dict[str, Any]) -> dict[str, Any]:
    """What a delta carries besides its role and text (tool calls, reasoning), when set."""
    return {
        k: v for k, v in delta.items() if k not in ("role", "content") and v not in (None, [], "")
    }


@dataclass(slots=True)
class _ChoiceState:
    filter: StopFilter
    started: bool = False


class ChatChunkEncoder(OpenAIStreamEncoder):
    """Re-encodes an upstream's chat chunks: same output contract as the templated path, one
    choice per ``index``."""

    def __init__(self, *, prompt_estimate: int, relay: bool = False, **kwargs: Any) -> None:
        super().__init__(prompt_tokens=lambda _: (prompt_estimate, True), **kwargs)
        self.prompt_estimate = prompt_estimate
        self.relay = relay
        self._stops = list(kwargs.get("stops") or ())
        self._choices: dict[int, _ChoiceState] = {}
        self._usage_sent = False

    def _delta_chunk(
        self, index: int, delta: dict[str, Any], logprobs: Any = None, finish: str | None = None
    ) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        chunk: dict[str, Any] = {**self.base, "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return sse_event(orjson.dumps(chunk))

    def event(self, event: StreamEvent) -> bytes:
        assert isinstance(event, ChatChunk), "chat streams carry chat chunks"
        data = event.data
        out = b""
        if not data["choices"]:
            self._count(data.get("usage"))
            if self.include_usage and self.finish is not None:
                out += self._usage_chunk()
            return out
        for choice in data["choices"]:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if self.relay else 0
            index = index if isinstance(index, int) else 0
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState(StopFilter(self._stops))
            if not state.started:
                out += self._delta_chunk(index, {"role": "assistant", "content": ""})
                state.started = True
            delta = choice.get("delta") or {}
            if "content" in delta:
                self.completion_tokens += 1
            text = state.filter.push(delta.get("content") or "")
            extras = _extras(delta) if self.relay else {}
            logprobs = choice.get("logprobs") if self.relay and not state.filter.stopped else None
            if text or extras or logprobs:
                body = {"content": text, **extras} if text else extras
                out += self._delta_chunk(index, body, logprobs)
            if choice.get("finish_reason"):
                tail = state.filter.flush()
                if tail:
                    out += self._delta_chunk(index, {"content": tail})
                self.finish = finish_reason(choice["finish_reason"], state.filter.stopped)
                out += self._delta_chunk(index, {}, None, self.finish)
        return out

    def _count(self, upstream: dict[str, Any] | None) -> None:
        """The container's counts as it sent them; an estimate only when it sent none."""
        usage = TokenUsage.of_chat(
            upstream, estimate=self.prompt_estimate, generated=self.completion_tokens
        )
        self.token_usage, self.usage = usage, usage_json(usage)

    def _usage_chunk(self) -> bytes:
        self._usage_sent = True
        return sse_event(orjson.dumps({**self.base, "choices": [], "usage": self.usage}))

    def end(self) -> bytes:
        out = b""
        if self.include_usage and not self._usage_sent:
            if self.usage is None:
                self._count(None)
            out += self._usage_chunk()
        return out + super().end()


@dataclass(slots=True)
class _Answer:
    """One choice of a buffered answer, gathered from its chunks."""

    texts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: list[Any] = field(default_factory=list)
    extras: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if isinstance(content, str):
            self.texts.append(content)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._call(call)
        for key in ("reasoning_content", "reasoning"):
            if isinstance(delta.get(key), str):
                self.extras[key] = self.extras.get(key, "") + delta[key]
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            self.logprobs += logprobs["content"]
        self.reason = choice.get("finish_reason") or self.reason

    def _call(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", 0)
        call = self.calls.setdefault(
            index if isinstance(index, int) else 0,
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if fragment.get("id"):
            call["id"] = fragment["id"]
        if fragment.get("type"):
            call["type"] = fragment["type"]
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]

    def choice(self, index: int, stops: list[str], relay: bool) -> dict[str, Any]:
        answer, cut = cut_at_stop("".join(self.texts), stops)
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if self.calls:
            message["tool_calls"] = [self.calls[k] for k in sorted(self.calls)]
            message["content"] = answer or None
        message.update(self.extras)
        logprobs = {"content": self.logprobs} if relay and self.logprobs else None
        return {
            "index": index,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": finish_reason(self.reason, cut),
        }


def _gather(chunks: list[ChatChunk], relay: bool) -> tuple[dict[int, _Answer], Any, int]:
    """The choices of a chat stream, its usage and its content-delta count."""
    answers: dict[int, _Answer] = {}
    usage, count = None, 0
    for chunk in chunks:
        if not chunk.data["choices"]:
            usage = chunk.data.get("usage")
        for choice in chunk.data["choices"]:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if relay else 0
            answers.setdefault(index if isinstance(index, int) else 0, _Answer()).add(choice)
            count += (choice.get("delta") or {}).get("content") is not None
    return answers or {0: _Answer()}, usage, count


async def forward(
    ctx: GatewayContext,
    request: Request,
    model: ModelConfig,
    req: ChatCompletionRequest,
    data: dict[str, Any],
) -> Reply:
    pipeline = ctx.pipeline
    relay = pipeline.capabilities(model).openai_chat
    # OpenAI's ranges, checked before any call
    sampling = chat_sampling(req, model.limits, relay=relay)
    stops = pipeline.chat_stops(model, sampling.client_stop)
    text = " ".join(
        m.content if isinstance(m.content, str) else "".join(p.text or "" for p in m.content or ())
        for m in req.messages
    )
    pipeline.check_size(text, param="messages")
    prompt_estimate = estimate_tokens(text)
    generation = Generation(ctx, request, model, chat=True)
    generation.record.prompt = orjson.dumps(data.get("messages")).decode()
    stream = pipeline.chat(model, data, generation.deadline)
    if sampling.stream:
        encoder = ChatChunkEncoder(
            chat=True,
            completion_id=generation.id,
            model=answered_as(model),
            created=generation.created,
            stops=stops,
            include_usage=sampling.include_usage,
            logprobs=False,
            prompt_estimate=prompt_estimate,
            relay=relay,
        )
        return StreamReply(stream, encoder)
    chunks = [c for c in await collect(stream, generation.deadline) if isinstance(c, ChatChunk)]
    answers, upstream_usage, count = _gather(chunks, relay)
    choices = [answers[i].choice(i, stops, relay) for i in sorted(answers)]
    usage = TokenUsage.of_chat(upstream_usage, estimate=prompt_estimate, generated=count)
    body = {
        "id": generation.id,
        "object": "chat.completion",
        "created": generation.created,
        "model": answered_as(model),
        "system_fingerprint": None,
        "choices": choices,
        "usage": usage_json(usage),
    }
    texts = tuple(c["message"]["content"] or "" for c in choices)
    accounting = Accounting(stream_seconds(stream), usage=usage, texts=texts)
    return JSONReply(body, accounting=accounting)
