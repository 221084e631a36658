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
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from llm_gateway.core.admission import CURRENT_CALLER, Admission, Caller, InFlight, Usage
from llm_gateway.core.errors import ErrorKind, GatewayError, deadline_error, stream_closed
from llm_gateway.core.events import Details
from llm_gateway.core.failover import Attempts, Failover
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Backend, Channel, Generated, ModelTarget
from llm_gateway.core.streaming import Opened, Tally, TokenStream
from llm_gateway.core.tokenizer import TokenCounter, estimate_tokens
from llm_gateway.core.validation import check_token_budget, validate

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_FAILOVER = Failover()  # a model without a wake or fallback policy
# What a buffered call's attempts watch for the client leaving: nothing closes it (a stream's
# attempts watch the stream's own event).
NEVER_CLOSED = threading.Event()


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
    _estimate: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def prompt_tokens(self) -> int:
        """The prompt's tokens: counted when a tokenizer is configured, else estimated (once:
        a budget asks when it reserves and again when it settles, and the estimate reads the
        whole prompt)."""
        if self.input_tokens is not None:
            return self.input_tokens
        if self._estimate is None:
            self._estimate = estimate_tokens(self.inputs)
        return self._estimate

    @property
    def budget_tokens(self) -> int:
        """What a budget reserves: the prompt plus the most the model may generate, for every
        ``best_of`` sequence (without ``max_new_tokens``: the model's own limit)."""
        limit = self.model.limits.max_total_tokens
        most = self.parameters.max_new_tokens
        prompt = self.prompt_tokens
        sequences = max(self.parameters.best_of or 1, 1)
        return prompt + sequences * (most if most is not None else max(limit - prompt, 0))

    @property
    def wants_details(self) -> bool:
        """Whether the *client* asked for details (the upstream is always asked)."""
        p = self.parameters
        return bool(p.details) or (not self.stream and bool(p.decoder_input_details))


@dataclass(slots=True)
class GenerationResult:
    """A buffered answer: the text and the upstream's ``details`` (if any)."""

    generated_text: str
    details: Details | None
    upstream_seconds: float
    served_by: str | None = None  # the model that answered
    warming_waited: float | None = None  # seconds waited for it to scale up from zero


def stream_usage(tally: Tally, fallback_input: int) -> Usage:
    """What a stream's generation used, from what its worker saw of the upstream."""
    if not tally.opened or (tally.failed and tally.tokens == 0):
        return Usage(0, 0, generated_anything=False)  # the model generated nothing
    if not tally.finished and not tally.failed:
        # It ended before the model did (client gone, deadline): what the model went on to
        # generate is unknown, so the reservation stays charged.
        return Usage(None, None, generated_anything=True)
    details, usage = tally.details, tally.usage
    generated = prompt = None
    if details is not None:
        generated, prompt = details.generated_tokens, details.input_length
    if usage is not None:
        if generated is None:
            generated = usage.completion_or(tally.tokens)
        prompt = usage.prompt_tokens if prompt is None else prompt
    return Usage(
        input_tokens=prompt if prompt is not None else fallback_input,
        generated_tokens=(generated if generated is not None else tally.tokens)
        + (details.best_of_tokens if details is not None else 0),
        generated_anything=True,
    )


def buffered_usage(request: PreparedRequest, generated: Generated | None, answered: bool) -> Usage:
    """What a buffered generation used: nothing when the model never answered; the
    upstream's counts when its answer had them; unknown (the reservation stays charged) when
    it answered without counts or ran out of time (the model may have generated it all)."""
    if not answered:
        return Usage(0, 0, generated_anything=False)
    details = generated.details if generated is not None else None
    if details is None or details.generated_tokens is None:
        return Usage(None, None, generated_anything=True)
    prompt = details.input_length
    return Usage(
        prompt if prompt is not None else request.prompt_tokens,
        details.generated_tokens + details.best_of_tokens,
        generated_anything=True,
    )


def chat_budget(model: ModelTarget, data: Mapping[str, Any]) -> tuple[int, int]:
    """``(reservation, prompt estimate)`` of a chat request relayed as it is: the estimate
    counts the whole body (messages, system text, tools, tool results, ``response_format``
    schemas: all of it goes upstream); every choice (``n``) may generate the most tokens
    allowed (``max_completion_tokens``/``max_tokens``, else the model's default, else its own
    limit minus the prompt)."""
    prompt = estimate_tokens(json.dumps(data, ensure_ascii=False, default=str))
    most = data.get("max_completion_tokens") or data.get("max_tokens")
    if not isinstance(most, int) or isinstance(most, bool):
        default = model.defaults.max_new_tokens if model.defaults is not None else None
        most = default if default is not None else max(model.limits.max_total_tokens - prompt, 0)
    n = data.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    return prompt + choices * most, prompt


class _Budget:
    """One generation's admission: reserved on the worker thread before the upstream call,
    settled there once the upstream call has returned. ``inline``: the settlement is done
    right then (on Lambda, before the response can end); otherwise it is handed to the
    executor once the response has gone out (a long-running server)."""

    def __init__(
        self, admission: Admission, caller: Caller, executor: Executor, *, inline: bool
    ) -> None:
        self.admission = admission
        self.caller = caller
        self.executor = executor
        self.inline = inline
        self.ticket: Any = None

    def refuse_now(self, tokens: int) -> None:
        """On the event loop, no I/O: a caller known to be exhausted is refused at once."""
        self.admission.refuse_now(self.caller, tokens)

    def reserve(self, tokens: int, *, stream: bool) -> None:
        ticket = self.admission.admit(self.caller, tokens, stream=stream)
        if ticket is not None:
            self.ticket = ticket
            self.caller.tickets.append(ticket)

    def settle(self, usage: Usage) -> None:
        ticket, admission = self.ticket, self.admission
        if ticket is None:
            return
        self.ticket = None
        if self.inline:
            admission.settle(ticket, usage)
            return
        executor = self.executor

        def later() -> None:
            executor.submit(admission.settle, ticket, usage)

        self.caller.after_response(later)


class GenerationService:
    """Runs generations through each model's :class:`Upstream`; blocking calls go to
    ``executor``. ``counters`` maps model names to their tokenizers, for the models that have
    one. ``in_flight`` caps concurrent generations; ``admission`` (budgets) checks each
    caller's generation before its upstream call and settles it once the call has returned;
    ``settle_inline`` (set by the Lambda entry points, where the environment may be frozen as
    soon as the response is complete) settles before the response ends, not after it."""

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
        settle_inline: bool = False,
    ) -> None:
        self.settle_inline = settle_inline
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
        policy = self.failovers.get(model.name, NO_FAILOVER)
        if chat:  # a chat request can only fall back to models that take chat requests
            usable = tuple(
                n for n in policy.fallbacks if self.upstreams[n].backend.capabilities.chat
            )
            wake = policy.wake_fallback
            policy = Failover(
                policy.wait_seconds,
                policy.retry_seconds,
                wake
                if wake is not None and self.upstreams[wake].backend.capabilities.chat
                else None,
                usable,
            )
        closed = stream.closed_event if stream is not None else NEVER_CLOSED
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

    def _budget(self) -> _Budget | None:
        """The caller's admission for one generation, when one applies."""
        caller = CURRENT_CALLER.get()
        admission = self.admission
        if admission is None or caller is None or not admission.applies(caller):
            return None
        return _Budget(admission, caller, self.executor, inline=self.settle_inline)

    def _open(
        self,
        model: ModelTarget,
        call: Callable[[str], Opened],
        deadline: float | None,
        budget_for: Callable[[], tuple[int, int]],
        *,
        chat: bool = False,
        estimate_on_loop: bool = False,
    ) -> TokenStream:
        """Start a stream under the in-flight cap, the caller's admission and the model's
        failover policy (``call(name)`` opens the named model's upstream). ``budget_for``
        gives ``(reservation, prompt estimate)``; it runs on the worker thread, or here with
        ``estimate_on_loop`` (a prepared prompt), so an exhausted caller is refused at once."""
        budget = self._budget()
        if budget is not None and estimate_on_loop:
            estimate = budget_for()
            budget.refuse_now(estimate[0])
            budget_for = lambda: estimate  # noqa: E731
        self.in_flight.acquire()
        in_flight = self.in_flight
        prompt_estimate = 0

        def ended(tally: Tally) -> None:
            in_flight.release()
            if budget is not None:
                budget.settle(stream_usage(tally, prompt_estimate))

        def open_upstream(stream: TokenStream) -> Opened:  # on the worker thread
            nonlocal prompt_estimate
            if budget is not None:
                tokens, prompt_estimate = budget_for()
                budget.reserve(tokens, stream=True)  # a refusal: no upstream call
                stream.admit()
            if stream.closed_event.is_set():
                raise stream_closed()
            stream.tally.opened = True
            opened: Opened = attempts.run().value
            return opened

        try:
            stream = TokenStream(
                open_upstream,
                self.executor,
                on_end=ended,
                hold_last=budget is not None and self.settle_inline,
                admitted=budget is None,
            )
            attempts = self._attempts(model, call, deadline, stream, chat=chat)  # caller known
            return stream.start()
        except BaseException:
            in_flight.release()
            raise

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
        dropped = backend.check(effective, stream=stream)
        caller = CURRENT_CALLER.get()
        if dropped and caller is not None:  # reported to the client in a response header
            caller.dropped_params = tuple(dropped)
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
        """A buffered generation; past ``deadline`` it fails with 504 ``timeout``. The blocking
        call cannot be interrupted: its thread finishes in the background, holding its
        in-flight slot, and settles the caller's budget with what the model generated."""
        self.in_flight.acquire()
        in_flight = self.in_flight
        budget = self._budget()
        upstreams = self.upstreams

        def call(name: str) -> bytes:
            return upstreams[name].channel.invoke(self._for_model(request, name).body, deadline)

        def run() -> tuple[Any, Generated, float]:  # on the worker thread
            generated: Generated | None = None
            answered = False  # the model may have generated (it answered, or timed out)
            try:
                if budget is not None:
                    budget.reserve(request.budget_tokens, stream=False)  # refused: no call
                started = time.perf_counter()
                try:
                    outcome = attempts.run()
                except GatewayError as exc:
                    answered = exc.kind == ErrorKind.TIMEOUT
                    raise
                answered = True
                generated = upstreams[outcome.served_by].backend.parse_generated(
                    outcome.value, request.parameters
                )
                return outcome, generated, time.perf_counter() - started
            finally:
                in_flight.release()
                if budget is not None:
                    budget.settle(buffered_usage(request, generated, answered))

        try:
            attempts = self._attempts(request.model, call, deadline)
            future = asyncio.get_running_loop().run_in_executor(self.executor, run)
        except BaseException:
            in_flight.release()
            raise
        outcome, generated, seconds = await self._within(future, deadline)
        return GenerationResult(
            generated.text,
            generated.details,
            seconds,
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
            request.model,
            call,
            deadline,
            lambda: (request.budget_tokens, request.prompt_tokens),
            estimate_on_loop=True,
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

        return self._open(model, call, deadline, lambda: chat_budget(model, data), chat=True)


__all__ = [
    "GatewayError",
    "GenerationResult",
    "GenerationService",
    "PreparedRequest",
    "Upstream",
]
