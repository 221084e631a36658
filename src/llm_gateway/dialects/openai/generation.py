"""One OpenAI request on its way through the core: prompt to prepared TGI request, then a
streamed or buffered answer in OpenAI's shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request

from llm_gateway.config.schema import ModelConfig
from llm_gateway.core.admission import CURRENT_CALLER
from llm_gateway.core.errors import GatewayError, deadline_error
from llm_gateway.core.events import StreamEvent, TokenEvent
from llm_gateway.core.generation import PreparedRequest
from llm_gateway.core.ports import ModelTarget
from llm_gateway.core.stops import cut_at_stop, merge_stops
from llm_gateway.core.streaming import TokenStream
from llm_gateway.core.tokenizer import estimate_tokens
from llm_gateway.dialects.openai.encoding import (
    OpenAIStreamEncoder,
    chat_logprob,
    finish_reason,
    text_logprobs,
    usage_body,
)
from llm_gateway.dialects.openai.mapping import Sampling
from llm_gateway.http.context import GatewayContext
from llm_gateway.http.replies import Accounting, JSONReply, StreamReply
from llm_gateway.http.state import request_state


async def collect(stream: TokenStream, deadline: float | None) -> list[StreamEvent]:
    """Every event of a stream (a buffered answer built from a stream), within ``deadline``."""
    events: list[StreamEvent] = []
    try:
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise deadline_error()
            event = await stream.next(wait)
            if event is not None:
                events.append(event)
    except StopAsyncIteration:
        return events
    finally:
        stream.close()


def stream_seconds(stream: TokenStream) -> float:
    return (stream.finished_at or time.perf_counter()) - stream.started_at


def served_by(requested: str) -> str:
    """The model that answered this request: a fallback's name when one did."""
    caller = CURRENT_CALLER.get()
    return caller.served_by if caller is not None and caller.served_by else requested


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

    def prompt_tokens(
        self, prepared: PreparedRequest
    ) -> Callable[[dict[str, Any] | None], tuple[int, bool]]:
        def count(details: dict[str, Any] | None) -> tuple[int, bool]:
            if details and isinstance(details.get("input_length"), int):
                return details["input_length"], False
            if prepared.input_tokens is not None:
                return prepared.input_tokens, False
            return estimate_tokens(prepared.inputs), True

        return count

    def prepare(
        self,
        prompt: str,
        sampling: Sampling,
        template_stop: tuple[str, ...],
        reprompt: Callable[[ModelTarget], str] | None = None,
    ) -> PreparedRequest:
        """``reprompt`` renders the conversation for a fallback model (its own template)."""
        record = self.record
        record.prompt = prompt if record.prompt is None else f"{record.prompt}\n\n{prompt}"
        limits = self.model.limits
        defaults = self.model.defaults
        client = sampling.client_stop or tuple((defaults.stop if defaults else None) or ())
        stops = merge_stops(client, template_stop, limits.max_stop_sequences)
        parameters = sampling.parameters.model_copy(update={"stop": stops or None})
        try:
            return self.ctx.service.prepare(
                self.model, prompt, parameters, stream=True, reprompt=reprompt
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
            return [self.prepare(prompts[0], sampling, ())]
        return await asyncio.to_thread(lambda: [self.prepare(p, sampling, ()) for p in prompts])

    def encoder(
        self, prepared: PreparedRequest, sampling: Sampling, echo: str = ""
    ) -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(
            chat=self.chat,
            completion_id=self.id,
            model=self.model.name,
            created=self.created,
            stops=list(prepared.parameters.stop or ()),
            include_usage=sampling.include_usage,
            logprobs=sampling.top_logprobs is not None,
            prompt_tokens=self.prompt_tokens(prepared),
            echo=echo,
        )

    def stream(self, prepared: PreparedRequest, sampling: Sampling, echo: str = "") -> StreamReply:
        return StreamReply(
            self.ctx.service.stream(prepared, self.deadline),
            self.encoder(prepared, sampling, echo),
        )

    async def choice(
        self, prepared: PreparedRequest, sampling: Sampling, index: int, echo: str = ""
    ) -> tuple[dict[str, Any], float]:
        """One buffered choice (text without stop sequences, finish reason, usage, logprobs)
        and the seconds its upstream stream took."""
        stream = self.ctx.service.stream(prepared, self.deadline)
        events = [e for e in await collect(stream, self.deadline) if isinstance(e, TokenEvent)]
        last = events[-1]
        raw = last.generated_text or "".join(e.text for e in events)
        text, cut = cut_at_stop(raw, prepared.parameters.stop or ())
        details = last.details or {}
        prompt, estimated = self.prompt_tokens(prepared)(last.details)
        generated = details.get("generated_tokens", len(events))
        choice: dict[str, Any] = {"index": index}
        logprobs = None
        if sampling.top_logprobs is not None:
            kept, length = [], 0
            for e in events:
                if e.token["special"] or length >= len(text):
                    continue
                kept.append((e.token, e.top_tokens))
                length += len(e.token["text"])
            if self.chat:
                logprobs = {"content": [chat_logprob(t, top) for t, top in kept]}
            else:
                logprobs = text_logprobs(kept, len(echo))
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = echo + text
        choice["logprobs"] = logprobs
        choice["finish_reason"] = finish_reason(details.get("finish_reason"), cut)
        choice["usage"] = usage_body(prompt, generated, estimated)
        return choice, stream_seconds(stream)

    def reply(self, choices: Sequence[dict[str, Any]], upstream_seconds: float) -> JSONReply:
        """The buffered answer (``chat.completion`` or ``text_completion``) from its choices."""
        usages = [c.pop("usage") for c in choices]
        usage = usage_body(
            sum(u["prompt_tokens"] for u in usages),
            sum(u["completion_tokens"] for u in usages),
            any(u.get("prompt_tokens_estimated") for u in usages),
        )
        texts = [c["message"]["content"] if self.chat else c["text"] for c in choices]
        body = {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": served_by(self.model.name),
            "system_fingerprint": None,
            "choices": list(choices),
            "usage": usage,
        }
        return JSONReply(body, accounting=Accounting(upstream_seconds, usage=usage, texts=texts))
