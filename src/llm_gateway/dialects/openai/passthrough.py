"""Chat requests for backends that take them as they are (``capabilities.chat``), instead of a
prompt from the gateway's template: TGI's Messages API (``tgi-messages``) and OpenAI servers
(``openai``: vLLM, SGLang, LMI), to which ``tools``/``tool_choice``, ``n > 1``,
``response_format`` and ``logprobs`` are relayed too (``capabilities.openai_chat``).

What comes back is normalised like every other answer: OpenAI finish reasons (TGI says
``stop_sequence``; ``tool_calls`` and ``length`` stay), stop text removed, our ids and model
name, ``usage`` as the container counted it, errors in OpenAI's shape. Tool-call deltas,
log-probs and reasoning text (``reasoning_content``, ``reasoning``) are relayed per choice, in
OpenAI's field order, with the fields the container sent; other delta fields (``refusal``,
``function_call``, ``audio``) are not read (:mod:`llm_gateway.backends.chunks`), so not relayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.events import (
    ChatChoice,
    ChatChunk,
    ChatLogprob,
    StreamEvent,
    TokenUsage,
    ToolCallDelta,
)
from llm_gateway.core.pipeline import collect, stream_seconds
from llm_gateway.core.stops import StopFilter, cut_at_stop
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.context import GatewayContext, answered_as
from llm_gateway.dialects.openai.completion import Generation
from llm_gateway.dialects.openai.encoding import OpenAIStreamEncoder, finish_reason, usage_json
from llm_gateway.dialects.openai.mapping import chat_sampling
from llm_gateway.dialects.openai.schemas import ChatCompletionRequest
from llm_gateway.http.frames import Frame
from llm_gateway.http.replies import Accounting, JSONReply, Reply, StreamReply


def _tool_call(call: ToolCallDelta) -> dict[str, Any]:
    """A tool-call fragment in OpenAI's field order, with the fields the container sent."""
    out: dict[str, Any] = {"index": call.index}
    if call.id is not None:
        out["id"] = call.id
    if call.type is not None:
        out["type"] = call.type
    if call.name is not None or call.arguments is not None:
        function: dict[str, str] = {}
        if call.name is not None:
            function["name"] = call.name
        if call.arguments is not None:
            function["arguments"] = call.arguments
        out["function"] = function
    return out


def _extras(choice: ChatChoice) -> dict[str, Any]:
    """What a delta carries besides its role and text (reasoning, tool calls), when set."""
    out: dict[str, Any] = {}
    if choice.reasoning_content:
        out["reasoning_content"] = choice.reasoning_content
    if choice.reasoning:
        out["reasoning"] = choice.reasoning
    if choice.tool_calls:
        out["tool_calls"] = [_tool_call(c) for c in choice.tool_calls]
    return out


def _logprob(entry: ChatLogprob) -> dict[str, Any]:
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": entry.bytes,
        "top_logprobs": [
            {"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in entry.top_logprobs
        ],
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
    ) -> Frame:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        chunk: dict[str, Any] = {**self.base, "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return Frame(orjson.dumps(chunk))

    def event(self, event: StreamEvent) -> list[Frame]:
        assert isinstance(event, ChatChunk), "chat streams carry chat chunks"
        out: list[Frame] = []
        if not event.choices:
            self._count(event.usage)
            if self.include_usage and self.finish is not None:
                out.append(self._usage_chunk())
            return out
        for choice in event.choices:
            index = choice.index if self.relay else 0
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState(StopFilter(self._stops))
            if not state.started:
                out.append(self._delta_chunk(index, {"role": "assistant", "content": ""}))
                state.started = True
            if choice.content is not None:
                self.completion_tokens += 1
            text = state.filter.push(choice.content or "")
            extras = _extras(choice) if self.relay else {}
            logprobs = None
            if self.relay and not state.filter.stopped and choice.logprobs is not None:
                logprobs = {"content": [_logprob(e) for e in choice.logprobs]}
            if text or extras or logprobs:
                body = {"content": text, **extras} if text else extras
                out.append(self._delta_chunk(index, body, logprobs))
            if choice.finish_reason:
                tail = state.filter.flush()
                if tail:
                    out.append(self._delta_chunk(index, {"content": tail}))
                self.finish = finish_reason(choice.finish_reason, state.filter.stopped)
                out.append(self._delta_chunk(index, {}, None, self.finish))
        return out

    def _count(self, upstream: TokenUsage | None) -> None:
        """The container's counts as it sent them; an estimate only when it sent none."""
        usage = TokenUsage.of_chat(
            upstream, estimate=self.prompt_estimate, generated=self.completion_tokens
        )
        self.token_usage, self.usage = usage, usage_json(usage)

    def _usage_chunk(self) -> Frame:
        self._usage_sent = True
        return Frame(orjson.dumps({**self.base, "choices": [], "usage": self.usage}))

    def end(self) -> tuple[Frame, ...]:
        if self.include_usage and not self._usage_sent:
            if self.usage is None:
                self._count(None)
            return (self._usage_chunk(), *super().end())
        return super().end()


@dataclass(slots=True)
class _Answer:
    """One choice of a buffered answer, gathered from its chunks."""

    texts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def add(self, choice: ChatChoice) -> None:
        if choice.content is not None:
            self.texts.append(choice.content)
        for call in choice.tool_calls:
            self._call(call)
        for key, value in (
            ("reasoning_content", choice.reasoning_content),
            ("reasoning", choice.reasoning),
        ):
            if value is not None:
                self.extras[key] = self.extras.get(key, "") + value
        if choice.logprobs is not None:
            self.logprobs += [_logprob(e) for e in choice.logprobs]
        self.reason = choice.finish_reason or self.reason

    def _call(self, fragment: ToolCallDelta) -> None:
        call = self.calls.setdefault(
            fragment.index,
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if fragment.id:
            call["id"] = fragment.id
        if fragment.type:
            call["type"] = fragment.type
        if fragment.name:
            call["function"]["name"] = fragment.name
        if fragment.arguments is not None:
            call["function"]["arguments"] += fragment.arguments

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


def _gather(
    chunks: list[ChatChunk], relay: bool
) -> tuple[dict[int, _Answer], TokenUsage | None, int]:
    """The choices of a chat stream, its usage and its content-delta count."""
    answers: dict[int, _Answer] = {}
    usage, count = None, 0
    for chunk in chunks:
        if not chunk.choices:
            usage = chunk.usage
        for choice in chunk.choices:
            answers.setdefault(choice.index if relay else 0, _Answer()).add(choice)
            count += choice.content is not None
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
