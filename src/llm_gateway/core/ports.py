"""The core's two seams toward the upstream, as protocols.

- A :class:`Backend` is one upstream *protocol* (TGI generate, TGI's Messages API, an OpenAI
  server): it turns the core's validated request into request bytes and the upstream's bytes
  into the core's typed events (:mod:`llm_gateway.core.events`).
- A :class:`Channel` is one model's *transport*: it carries bytes to the model and back
  (SageMaker Runtime in production) and raises :class:`~llm_gateway.core.errors.GatewayError`.

The composition root (:mod:`llm_gateway.app`) pairs a backend with a channel per model; the core
knows neither SageMaker nor any wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import Details, EventDecoder
from llm_gateway.core.parameters import GenerateParameters, Limits


class ModelTarget(Protocol):
    """What the core needs to know of a configured model."""

    @property
    def name(self) -> str: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def defaults(self) -> GenerateParameters | None: ...


class UpstreamBody(Protocol):
    """What a streaming call returns: byte chunks, closable from another thread."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Channel(Protocol):
    """Blocking calls to one model; failures are raised as :class:`GatewayError`.

    ``deadline`` (a ``time.monotonic()`` value) bounds retries: no retry starts that could not
    finish before it.
    """

    def invoke(self, body: bytes, deadline: float | None = None) -> bytes: ...

    def invoke_stream(self, body: bytes, deadline: float | None = None) -> UpstreamBody: ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do, declared once: dialects, the web layer and the core consult
    these instead of naming a backend (a new backend declares its own and touches no dialect).

    >>> caps = Capabilities(chat=True, tools=True, logprobs=True, choices=True)
    >>> caps.openai_chat, Capabilities(chat=True).openai_chat
    (True, False)
    """

    # Chat requests go upstream as they are (``Backend.chat_body`` / ``chat_decoder``) instead
    # of a prompt rendered by the gateway's template.
    chat: bool = False
    # In relayed chat requests: tools and tool_choice, log-probs, ``n > 1`` (and with them
    # ``response_format``) go to the container, which applies them itself.
    tools: bool = False
    logprobs: bool = False
    choices: bool = False
    # ``return_full_text`` is honoured upstream on every route; without it the gateway puts
    # the prompt before the generated text itself, as TGI's router does.
    prompt_echo: bool = True

    @property
    def openai_chat(self) -> bool:
        """The relayed chat request keeps all of OpenAI's own fields (an OpenAI server)."""
        return self.chat and self.tools and self.logprobs and self.choices


@dataclass(frozen=True, slots=True)
class Generated:
    """A buffered generation as a backend decoded it (``details`` in the core's terms)."""

    text: str
    details: Details | None


class Backend(Protocol):
    """One upstream protocol. :attr:`capabilities` declares what it can do; with
    ``capabilities.chat`` it forwards chat requests as they are (then :meth:`chat_body` and
    :meth:`chat_decoder` apply) instead of prompts from the gateway's templates."""

    name: str
    capabilities: Capabilities

    def check(self, parameters: GenerateParameters, *, stream: bool) -> tuple[str, ...] | None:
        """Refuse (422, naming the field and the backend) what this protocol cannot honour,
        before any upstream call; TGI's own validation has already passed. Returns the names
        of fields it will ignore instead (hints the upstream lacks), if any."""
        ...

    def generate_body(
        self, inputs: str, parameters: GenerateParameters, *, stream: bool
    ) -> bytes: ...

    def parse_generated(
        self, raw: bytes, parameters: GenerateParameters | None = None
    ) -> Generated:
        """A buffered answer; ``parameters`` are the request's (what was asked decides what
        the answer reports, e.g. TGI's ``seed`` and ``top_tokens``)."""
        ...

    def generate_decoder(self, parameters: GenerateParameters | None = None) -> EventDecoder:
        """A decoder for one stream of the request with these ``parameters``."""
        ...

    def chat_body(self, data: dict[str, Any], defaults: GenerateParameters | None) -> bytes: ...

    def chat_decoder(self) -> EventDecoder: ...

    def container_error(self, status: int | None, body: str) -> GatewayError | None:
        """The container's own error body (wrapped by the transport, e.g. SageMaker's
        ModelError) in the core's terms, or ``None`` when it is not the container's format."""
        ...
