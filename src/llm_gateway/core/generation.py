"""The generation service: validated parameters in, TGI results or token streams out.

Dialects call :meth:`GenerationService.prepare` with the prompt and TGI parameters they built,
then :meth:`generate` (buffered) or :meth:`stream`. The service fills the model's configured
defaults, applies TGI's validation against the model's limits, builds the upstream body
(``{"inputs", "parameters", "stream"}`` with ``stream`` at the top level, where TGI's
``/invocations`` reads it) and talks to the upstream through the :class:`Upstream` protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from llm_gateway.core.errors import GatewayError, deadline_error, request_error, upstream_error
from llm_gateway.core.parameters import GenerateParameters, Limits
from llm_gateway.core.sse import StreamDecoder
from llm_gateway.core.streaming import TokenStream, UpstreamBody
from llm_gateway.core.tokenizer import TokenCounter
from llm_gateway.core.validation import check_token_budget, validate


class ModelTarget(Protocol):
    """What the service needs to know of a configured model."""

    name: str
    endpoint: str
    inference_component: str | None
    limits: Limits
    defaults: GenerateParameters | None


class Upstream(Protocol):
    """Blocking calls to the model endpoint; failures are raised as :class:`GatewayError`.

    ``deadline`` (a ``time.monotonic()`` value) bounds retries: no retry starts that could
    not finish before it.
    """

    def invoke(self, target: ModelTarget, body: bytes, deadline: float | None = None) -> bytes: ...

    def invoke_stream(
        self, target: ModelTarget, body: bytes, deadline: float | None = None
    ) -> UpstreamBody: ...


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
    """A buffered TGI answer: ``generated_text`` and the upstream's ``details`` (if any)."""

    generated_text: str
    details: dict[str, Any] | None
    upstream_seconds: float


def upstream_body(inputs: str, parameters: GenerateParameters, *, stream: bool) -> bytes:
    payload: dict[str, Any] = {
        "inputs": inputs,
        "parameters": parameters.to_upstream(return_full_text=bool(parameters.return_full_text)),
    }
    if stream:
        payload["stream"] = True
    return dumps_request(payload)


def dumps_request(payload: object) -> bytes:
    """Serialise an upstream body; JSON nested deeper than the encoder allows is the client's
    doing (parsing allows 1024 levels, encoding 254), so it is a 422, not a crash."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:
        raise request_error(f"The request cannot be forwarded: {exc}") from None


def parse_generate_response(raw: bytes) -> tuple[str, dict[str, Any] | None]:
    """TGI's compat answer is ``[{"generated_text", "details"?}]``; an object is accepted too."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise upstream_error("The model endpoint returned a body that is not JSON") from None
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict) or not isinstance(data.get("generated_text"), str):
        raise upstream_error("The model endpoint returned an unexpected body (no generated_text)")
    details = data.get("details")
    return data["generated_text"], details if isinstance(details, dict) else None


class GenerationService:
    """Runs generations against an :class:`Upstream`; blocking calls go to ``executor``.

    ``counters`` maps model names to their tokenizers, for the models that have one.
    """

    def __init__(
        self,
        upstream: Upstream,
        executor: Executor,
        counters: dict[str, TokenCounter] | None = None,
    ) -> None:
        self.upstream = upstream
        self.executor = executor
        self.counters = counters or {}

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
        input_tokens = None
        counter = self.counters.get(model.name)
        if counter is not None:
            input_tokens = check_token_budget(counter.count(inputs), effective, model.limits)
        body = upstream_body(inputs, effective, stream=stream)
        return PreparedRequest(model, inputs, effective, stream, body, input_tokens)

    async def generate(
        self, request: PreparedRequest, deadline: float | None = None
    ) -> GenerationResult:
        """A buffered generation; past ``deadline`` it fails with 504 ``timeout`` (the blocking
        call cannot be interrupted, so its thread finishes in the background)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        future = loop.run_in_executor(
            self.executor, self.upstream.invoke, request.model, request.body, deadline
        )
        if deadline is None:
            raw = await future
        else:
            try:
                raw = await asyncio.wait_for(future, max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise deadline_error() from None
        text, details = parse_generate_response(raw)
        return GenerationResult(text, details, time.perf_counter() - started)

    def stream(self, request: PreparedRequest, deadline: float | None = None) -> TokenStream:
        """Start the upstream stream now; events are read with :meth:`TokenStream.next`."""
        return self.stream_body(request.model, request.body, deadline=deadline)

    def stream_body(
        self,
        model: ModelTarget,
        body: bytes,
        decoder: Callable[[], StreamDecoder] = StreamDecoder,
        deadline: float | None = None,
    ) -> TokenStream:
        """Stream any upstream body (e.g. a Messages API request) with the given decoder."""
        upstream = self.upstream
        return TokenStream(
            lambda: upstream.invoke_stream(model, body, deadline), self.executor, decoder
        ).start()


__all__ = [
    "GatewayError",
    "GenerationResult",
    "GenerationService",
    "ModelTarget",
    "PreparedRequest",
    "Upstream",
]
