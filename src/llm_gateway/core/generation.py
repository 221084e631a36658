"""The generation service: validated parameters in, generations or event streams out.

Dialects call :meth:`GenerationService.prepare` with the prompt and TGI parameters they built,
then :meth:`~GenerationService.generate` (buffered) or :meth:`~GenerationService.stream`; chat
requests for backends that take them as they are go through :meth:`~GenerationService.chat`.
The service fills the model's configured defaults, applies TGI's validation against the
model's limits, has the model's :class:`~llm_gateway.core.ports.Backend` build the request
bytes, and sends them through the model's :class:`~llm_gateway.core.ports.Channel`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from llm_gateway.core.errors import GatewayError, deadline_error
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Backend, Channel, ModelTarget
from llm_gateway.core.streaming import TokenStream
from llm_gateway.core.tokenizer import TokenCounter
from llm_gateway.core.validation import check_token_budget, validate


@dataclass(frozen=True, slots=True)
class Upstream:
    """One model's way out: the protocol it speaks and the channel that carries it."""

    backend: Backend
    channel: Channel


@dataclass(slots=True)
class PreparedRequest:
    """A validated generation request, ready to send."""

    model: ModelTarget
    inputs: str
    parameters: GenerateParameters  # after defaults; what the upstream receives
    stream: bool
    body: bytes
    input_tokens: int | None = None  # known only when the model's tokenizer is configured

    @property
    def wants_details(self) -> bool:
        """Whether the *client* asked for details (the upstream is always asked)."""
        p = self.parameters
        return bool(p.details) or (not self.stream and bool(p.decoder_input_details))


@dataclass(slots=True)
class GenerationResult:
    """A buffered answer: the text and the upstream's ``details`` (if any)."""

    generated_text: str
    details: dict[str, Any] | None
    upstream_seconds: float


class GenerationService:
    """Runs generations through each model's :class:`Upstream`; blocking calls go to
    ``executor``. ``counters`` maps model names to their tokenizers, for the models that have
    one."""

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        executor: Executor,
        counters: Mapping[str, TokenCounter] | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.executor = executor
        self.counters = counters or {}

    def backend(self, model: ModelTarget) -> Backend:
        return self.upstreams[model.name].backend

    def prepare(
        self,
        model: ModelTarget,
        inputs: str,
        parameters: GenerateParameters,
        *,
        stream: bool,
    ) -> PreparedRequest:
        """Defaults, then TGI's validation of the effective request, then the upstream body."""
        effective = parameters.with_defaults(model.defaults)
        validate(effective, inputs, model.limits, stream=stream)
        backend = self.backend(model)
        backend.check(effective, stream=stream)
        input_tokens = None
        counter = self.counters.get(model.name)
        if counter is not None:
            input_tokens = check_token_budget(counter.count(inputs), effective, model.limits)
        body = backend.generate_body(inputs, effective, stream=stream)
        return PreparedRequest(model, inputs, effective, stream, body, input_tokens)

    async def generate(
        self, request: PreparedRequest, deadline: float | None = None
    ) -> GenerationResult:
        """A buffered generation; past ``deadline`` it fails with 504 ``timeout`` (the blocking
        call cannot be interrupted, so its thread finishes in the background)."""
        upstream = self.upstreams[request.model.name]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        future = loop.run_in_executor(
            self.executor, upstream.channel.invoke, request.body, deadline
        )
        if deadline is None:
            raw = await future
        else:
            try:
                raw = await asyncio.wait_for(future, max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise deadline_error() from None
        generated = upstream.backend.parse_generated(raw)
        return GenerationResult(generated.text, generated.details, time.perf_counter() - started)

    def stream(self, request: PreparedRequest, deadline: float | None = None) -> TokenStream:
        """Start the upstream stream now; events are read with :meth:`TokenStream.next`."""
        upstream = self.upstreams[request.model.name]
        channel, body = upstream.channel, request.body
        return TokenStream(
            lambda: channel.invoke_stream(body, deadline),
            self.executor,
            upstream.backend.generate_decoder,
        ).start()

    def chat(
        self, model: ModelTarget, data: dict[str, Any], deadline: float | None = None
    ) -> TokenStream:
        """Forward a chat request as it is to a backend that takes one; a stream of chunks."""
        upstream = self.upstreams[model.name]
        channel = upstream.channel
        body = upstream.backend.chat_body(data, model.defaults)
        return TokenStream(
            lambda: channel.invoke_stream(body, deadline),
            self.executor,
            upstream.backend.chat_decoder,
        ).start()


__all__ = [
    "GatewayError",
    "GenerationResult",
    "GenerationService",
    "PreparedRequest",
    "Upstream",
]
