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
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from llm_gateway.core.admission import CURRENT_CALLER, Admission, Caller, InFlight, Usage
from llm_gateway.core.errors import GatewayError, deadline_error
from llm_gateway.core.failover import Attempts, Failover
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Backend, Channel, ModelTarget
from llm_gateway.core.streaming import Opened, Tally, TokenStream
from llm_gateway.core.tokenizer import TokenCounter, estimate_tokens
from llm_gateway.core.validation import check_token_budget, validate

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    requested: GenerateParameters | None = None  # before defaults (a fallback applies its own)
    # The prompt for another model (a fallback with its own template); None: the same prompt.
    reprompt: Callable[[ModelTarget], str] | None = None

    @property
    def prompt_tokens(self) -> int:
        """The prompt's tokens: counted when a tokenizer is configured, else estimated."""
        if self.input_tokens is not None:
            return self.input_tokens
        return estimate_tokens(self.inputs)

    @property
    def budget_tokens(self) -> int:
        """What a budget reserves: the prompt plus the most the model may generate."""
        limit = self.model.limits.max_total_tokens
        most = self.parameters.max_new_tokens
        prompt = self.prompt_tokens
        return prompt + (most if most is not None else max(limit - prompt, 0))

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
    served_by: str | None = None  # the model that answered
    warming_waited: float | None = None  # seconds waited for it to scale up from zero


class _Settlement:
    """Pairs an admission's ticket with what its generation used; whichever comes second
    settles it (the stream may end before the check returns, or the other way round)."""

    def __init__(self, admission: Admission, fallback_input: int, caller: Caller) -> None:
        self._admission = admission
        self._caller = caller
        self._fallback_input = fallback_input
        self._lock = threading.Lock()
        self._ticket: Any = None
        self._usage: Usage | None = None
        self._done = False

    def ticket(self, ticket: Any) -> None:
        with self._lock:
            self._ticket = ticket
        self._maybe_settle()

    def used(self, tally: Tally) -> None:
        details, usage = tally.details or {}, tally.usage or {}
        generated = details.get("generated_tokens", usage.get("completion_tokens"))
        prompt = details.get("input_length", usage.get("prompt_tokens"))
        with self._lock:
            self._usage = Usage(
                input_tokens=prompt if isinstance(prompt, int) else self._fallback_input,
                generated_tokens=generated if isinstance(generated, int) else tally.tokens,
                generated_anything=tally.tokens > 0,
            )
        self._maybe_settle()

    def _maybe_settle(self) -> None:
        with self._lock:
            if self._done or self._ticket is None or self._usage is None:
                return
            self._done = True
            ticket, usage = self._ticket, self._usage
        admission = self._admission
        self._caller.after_response(lambda: admission.settle(ticket, usage))


class GenerationService:
    """Runs generations through each model's :class:`Upstream`; blocking calls go to
    ``executor``. ``counters`` maps model names to their tokenizers, for the models that have
    one. ``in_flight`` caps concurrent generations; ``admission`` (budgets) checks each
    caller's generation alongside its upstream call."""

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        executor: Executor,
        counters: Mapping[str, TokenCounter] | None = None,
        *,
        in_flight: InFlight | None = None,
        admission: Admission | None = None,
        targets: Mapping[str, ModelTarget] | None = None,
        failovers: Mapping[str, Failover] | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.executor = executor
        self.counters = counters or {}
        self.in_flight = in_flight or InFlight(2**31)
        self.admission = admission
        self.targets = targets or {}  # by name: the models a fallback may name
        self.failovers = failovers or {}

    def _attempts(
        self,
        model: ModelTarget,
        call: Callable[[str], Any],
        deadline: float | None,
        stream: TokenStream | None = None,
        *,
        chat: bool = False,
    ) -> Attempts[Any]:
        policy = self.failovers.get(model.name, Failover())
        if chat:  # a chat request can only fall back to models that take chat requests
            usable = tuple(n for n in policy.fallbacks if self.upstreams[n].backend.chat)
            wake = policy.wake_fallback
            policy = Failover(
                policy.wait_seconds,
                policy.retry_seconds,
                wake if wake is not None and self.upstreams[wake].backend.chat else None,
                usable,
            )
        closed = stream.closed_event if stream is not None else threading.Event()
        caller = CURRENT_CALLER.get()  # captured here: the attempts run on a worker thread

        def warming() -> None:
            if stream is not None:
                stream.warming = True
            if caller is not None:
                caller.warming = True

        def served(name: str, waited: float) -> None:
            if stream is not None:
                stream.served_by, stream.warming_waited = name, waited or None
            if caller is not None:
                caller.served_by, caller.warming_waited = name, waited or None

        return Attempts(
            model.name,
            policy,
            call,
            deadline=deadline,
            closed=closed,
            on_warming=warming,
            on_served=served,
        )

    def _for_model(self, request: PreparedRequest, name: str) -> PreparedRequest:
        """The request as another (fallback) model takes it: its template, defaults, limits."""
        if name == request.model.name:
            return request
        model = self.targets[name]
        inputs = request.reprompt(model) if request.reprompt is not None else request.inputs
        requested = request.requested or request.parameters
        return self.prepare(
            model, inputs, requested, stream=request.stream, reprompt=request.reprompt
        )

    def _admit(
        self, tokens: int, fallback_input: int, *, stream: bool
    ) -> tuple[asyncio.Future[Any] | None, _Settlement | None]:
        """Start the caller's admission check (if any) without waiting for it.

        A caller already known to be over budget is refused here, before any upstream call.
        """
        caller = CURRENT_CALLER.get()
        admission = self.admission
        if admission is None or caller is None or caller.key_id is None:
            return None, None
        admission.refuse_now(caller, tokens)
        settlement = _Settlement(admission, fallback_input, caller)
        gate = asyncio.ensure_future(admission.admit(caller, tokens, stream=stream))

        def admitted(future: asyncio.Future[Any]) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            caller.tickets.append(future.result())
            settlement.ticket(future.result())

        gate.add_done_callback(admitted)
        return gate, settlement

    def _open(
        self,
        model: ModelTarget,
        call: Callable[[str], Opened],
        deadline: float | None,
        tokens: int,
        fallback_input: int,
        *,
        chat: bool = False,
    ) -> TokenStream:
        """Start a stream under the in-flight cap, the caller's admission and the model's
        failover policy (``call(name)`` opens the named model's upstream)."""
        self.in_flight.acquire()
        try:
            gate, settlement = self._admit(tokens, fallback_input, stream=True)
        except BaseException:
            self.in_flight.release()
            raise
        in_flight = self.in_flight

        def ended(tally: Tally) -> None:
            in_flight.release()
            if settlement is not None:
                settlement.used(tally)

        def open_upstream(stream: TokenStream) -> Opened:
            opened: Opened = attempts.run().value  # on the worker thread
            return opened

        stream = TokenStream(open_upstream, self.executor, gate=gate, on_end=ended)
        attempts = self._attempts(model, call, deadline, stream, chat=chat)  # caller known here
        return stream.start()

    def backend(self, model: ModelTarget) -> Backend:
        return self.upstreams[model.name].backend

    def prepare(
        self,
        model: ModelTarget,
        inputs: str,
        parameters: GenerateParameters,
        *,
        stream: bool,
        reprompt: Callable[[ModelTarget], str] | None = None,
    ) -> PreparedRequest:
        """Defaults, then TGI's validation of the effective request, then the upstream body.

        ``reprompt`` renders the prompt for another model, should a fallback answer."""
        effective = parameters.with_defaults(model.defaults)
        validate(effective, inputs, model.limits, stream=stream)
        backend = self.backend(model)
        backend.check(effective, stream=stream)
        input_tokens = None
        counter = self.counters.get(model.name)
        if counter is not None:
            input_tokens = check_token_budget(counter.count(inputs), effective, model.limits)
        body = backend.generate_body(inputs, effective, stream=stream)
        return PreparedRequest(
            model, inputs, effective, stream, body, input_tokens, parameters, reprompt
        )

    async def generate(
        self, request: PreparedRequest, deadline: float | None = None
    ) -> GenerationResult:
        """A buffered generation; past ``deadline`` it fails with 504 ``timeout`` (the blocking
        call cannot be interrupted, so its thread finishes in the background)."""
        self.in_flight.acquire()
        try:
            gate, settlement = self._admit(
                request.budget_tokens, request.prompt_tokens, stream=False
            )
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            upstreams = self.upstreams

            def call(name: str) -> bytes:
                return upstreams[name].channel.invoke(self._for_model(request, name).body, deadline)

            attempts = self._attempts(request.model, call, deadline)
            future = loop.run_in_executor(self.executor, attempts.run)
            tally = Tally()
            try:
                if gate is not None:
                    await gate  # a refusal answers at once; the call's result is dropped
                outcome = await self._within(future, deadline)
                upstream = upstreams[outcome.served_by]
                generated = upstream.backend.parse_generated(outcome.value, request.parameters)
                tally.tokens = 1  # something was generated (the details hold the count)
                tally.details = generated.details
            finally:
                if settlement is not None:
                    settlement.used(tally)
        finally:
            self.in_flight.release()
        return GenerationResult(
            generated.text,
            generated.details,
            time.perf_counter() - started,
            outcome.served_by,
            outcome.warming_waited or None,
        )

    @staticmethod
    async def _within(future: asyncio.Future[T], deadline: float | None) -> T:
        if deadline is None:
            return await future
        try:
            return await asyncio.wait_for(future, max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            raise deadline_error() from None

    def stream(self, request: PreparedRequest, deadline: float | None = None) -> TokenStream:
        """Start the upstream stream now; events are read with :meth:`TokenStream.next`."""
        upstreams = self.upstreams

        def call(name: str) -> Opened:
            upstream = upstreams[name]
            prepared = self._for_model(request, name)
            return upstream.channel.invoke_stream(
                prepared.body, deadline
            ), upstream.backend.generate_decoder(prepared.parameters)

        return self._open(
            request.model, call, deadline, request.budget_tokens, request.prompt_tokens
        )

    def chat(
        self, model: ModelTarget, data: dict[str, Any], deadline: float | None = None
    ) -> TokenStream:
        """Forward a chat request as it is to a backend that takes one; a stream of chunks."""
        upstreams, targets = self.upstreams, self.targets

        def call(name: str) -> Opened:
            upstream = upstreams[name]
            target = model if name == model.name else targets[name]
            body = upstream.backend.chat_body(data, target.defaults)
            return upstream.channel.invoke_stream(body, deadline), upstream.backend.chat_decoder()

        prompt = estimate_tokens(str(data.get("messages", "")))
        most = data.get("max_completion_tokens") or data.get("max_tokens")
        if not isinstance(most, int):
            most = max(model.limits.max_total_tokens - prompt, 0)
        return self._open(model, call, deadline, prompt + most, prompt, chat=True)


__all__ = [
    "GatewayError",
    "GenerationResult",
    "GenerationService",
    "PreparedRequest",
    "Upstream",
]
