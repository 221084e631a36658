"""One OpenAI request on its way through the core: prompt to prepared TGI request, then a
streamed or buffered answer in OpenAI's shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import TokenEvent, TokenUsage
from llm_gateway.core.generation import PreparedRequest
from llm_gateway.core.pipeline import Turn, collect, prompt_count, served_by, stream_seconds
from llm_gateway.core.stops import cut_at_stop
from llm_gateway.dialects.context import GatewayContext, answered_as
from llm_gateway.dialects.openai.encoding import (
    OpenAIStreamEncoder,
    PromptTokens,
    chat_logprob,
    finish_reason,
    text_logprobs,
    usage_json,
)
from llm_gateway.dialects.openai.mapping import Sampling
from llm_gateway.http.context import ALIAS
from llm_gateway.http.replies import Accounting, JSONReply, StreamReply
from llm_gateway.http.state import request_state


@dataclass(frozen=True, slots=True)
class Answer:
    """One buffered choice: its body, its usage and the seconds its upstream stream took."""

    choice: dict[str, Any]
    usage: TokenUsage
    seconds: float


class Generation:
    """One OpenAI request on its way through the core."""

    def __init__(
        self, ctx: GatewayContext, request: Request, model: ModelConfig, chat: bool
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.chat = chat
        state = request_state(request.scope)
        self.record = state.record
        self.deadline = state.deadline
        self.record.model = model.name
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{state.request_id}"
        self.created = int(time.time())

    def prompt_tokens(self, prepared: PreparedRequest) -> PromptTokens:
        return lambda finish: prompt_count(prepared, finish)

    def prepare(
        self, prompt: str, sampling: Sampling, turns: Sequence[Turn] | None = None
    ) -> PreparedRequest:
        """``turns``: the conversation ``prompt`` was rendered from (its template's stops
        apply, and a fallback model renders it with its own template)."""
        record = self.record
        record.prompt = prompt if record.prompt is None else f"{record.prompt}\n\n{prompt}"
        try:
            return self.ctx.pipeline.prepare(
                self.model, prompt, sampling.parameters, sampling.client_stop, turns
            )
        except GatewayError as exc:
            if exc.param == "inputs":  # TGI's name for the prompt: the field the client sent
                exc.param = "messages" if self.chat else "prompt"
            raise

    async def prepare_all(
        self, prompts: Sequence[str], sampling: Sampling
    ) -> list[PreparedRequest]:
        """Legacy completions' prompts (at most the model's ``max_client_batch_size``, checked
        before), prepared in a worker thread: validation and token counting never hold the
        event loop, whatever the prompts' size."""
        if len(prompts) == 1:
            return [self.prepare(prompts[0], sampling)]
        return await asyncio.to_thread(lambda: [self.prepare(p, sampling) for p in prompts])

    def encoder(
        self, prepared: PreparedRequest, sampling: Sampling, echo: str = ""
    ) -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(
            chat=self.chat,
            completion_id=self.id,
            model=answered_as(self.model),  # the alias the client used, if it used one
            created=self.created,
            stops=list(prepared.parameters.stop or ()),
            include_usage=sampling.include_usage,
            logprobs=sampling.top_logprobs is not None,
            prompt_tokens=self.prompt_tokens(prepared),
            echo=echo,
        )

    def stream(self, prepared: PreparedRequest, sampling: Sampling, echo: str = "") -> StreamReply:
        return StreamReply(
            self.ctx.pipeline.stream(prepared, self.deadline),
            self.encoder(prepared, sampling, echo),
        )

    async def choice(
        self, prepared: PreparedRequest, sampling: Sampling, index: int, echo: str = ""
    ) -> Answer:
        """One buffered choice (text without stop sequences, finish reason, logprobs)."""
        stream = self.ctx.pipeline.stream(prepared, self.deadline)
        events = [e for e in await collect(stream, self.deadline) if isinstance(e, TokenEvent)]
        last = events[-1]
        raw = last.generated_text or "".join(e.text for e in events)
        text, cut = cut_at_stop(raw, prepared.parameters.stop or ())
        finish = last.finish
        prompt, estimated = prompt_count(prepared, finish)
        generated = len(events) if finish.generated_tokens is None else finish.generated_tokens
        choice: dict[str, Any] = {"index": index}
        logprobs = None
        if sampling.top_logprobs is not None:
            kept, length = [], 0
            for e in events:
                if e.token.special or length >= len(text):
                    continue
                kept.append((e.token, e.top_tokens))
                length += len(e.token.text)
            if self.chat:
                logprobs = {"content": [chat_logprob(t, top) for t, top in kept]}
            else:
                logprobs = text_logprobs(kept, len(echo))
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = echo + text
        choice["logprobs"] = logprobs
        choice["finish_reason"] = finish_reason(finish.reason, cut)
        return Answer(choice, TokenUsage(prompt, generated, estimated), stream_seconds(stream))

    def reply(self, answers: Sequence[Answer]) -> JSONReply:
        """The buffered answer (``chat.completion`` or ``text_completion``) from its choices:
        the usage of all of them, the seconds of the slowest."""
        usage = answers[0].usage
        for answer in answers[1:]:
            usage = usage + answer.usage
        choices = [a.choice for a in answers]
        texts = [c["message"]["content"] if self.chat else c["text"] for c in choices]
        body = {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": ALIAS.get() or served_by(self.model.name),
            "system_fingerprint": None,
            "choices": choices,
            "usage": usage_json(usage),
        }
        seconds = max(a.seconds for a in answers)
        return JSONReply(body, accounting=Accounting(seconds, usage=usage, texts=texts))
