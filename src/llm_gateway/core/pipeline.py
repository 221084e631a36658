"""One pipeline for chat-shaped dialects (OpenAI chat completions, Responses, Anthropic).

Every such request takes the same steps, whatever the dialect: the model's backend either
takes the chat request as it is (its :class:`~llm_gateway.core.ports.Capabilities` say so) or
reads a prompt the model's template renders; the prompt's size is checked before any work;
the stop sequences are the client's, else the model's defaults, merged with the template's
(:func:`request_stops`); a fallback model renders the conversation with its own template; a
buffered answer is a stream collected within the request's deadline (:func:`collect`); the
answer names the model that served it (:func:`served_by`) and counts its tokens
(:class:`~llm_gateway.core.events.TokenUsage`). A dialect maps its request to turns and
parameters, calls :class:`Pipeline`, and encodes the events.

The core imports no template and no configuration: the composition root hands in the
:class:`Prompts` (the models' templates) and the size limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from llm_gateway.core.admission import CURRENT_CALLER
from llm_gateway.core.errors import deadline_error, request_error
from llm_gateway.core.events import Finish, StreamEvent
from llm_gateway.core.generation import GenerationService, PreparedRequest
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Capabilities, ModelTarget
from llm_gateway.core.stops import merge_stops
from llm_gateway.core.streaming import TokenStream
from llm_gateway.core.tokenizer import estimate_tokens


class Turn(Protocol):
    """One message of a conversation as a template reads it."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


class Prompts(Protocol):
    """The models' prompt templates (filled by the composition root)."""

    def render(self, model: str, turns: Sequence[Turn]) -> str:
        """The prompt ``model`` reads for ``turns`` (its template's format)."""
        ...

    def stops(self, model: str) -> tuple[str, ...]:
        """The default stop sequences of ``model``'s template."""
        ...


def request_stops(
    client: Iterable[str], model: ModelTarget, template: Iterable[str] = ()
) -> list[str]:
    """The stop sequences a request runs with: the client's, else the model's configured
    defaults, then the template's, within the model's ``max_stop_sequences``.

    >>> from llm_gateway.core.parameters import GenerateParameters, Limits
    >>> class M:
    ...     name, limits = "m", Limits(max_stop_sequences=3)
    ...     defaults = GenerateParameters(stop=["###"])
    >>> request_stops(["END"], M(), ["</s>"]), request_stops([], M(), ["</s>", "###"])
    (['END', '</s>'], ['###', '</s>'])
    """
    chosen = tuple(client)
    if not chosen and model.defaults is not None:
        chosen = tuple(model.defaults.stop or ())
    return merge_stops(chosen, template, model.limits.max_stop_sequences)


def served_by(requested: str) -> str:
    """The model that answered this request: a fallback's name when one did."""
    caller = CURRENT_CALLER.get()
    return caller.served_by if caller is not None and caller.served_by else requested


def stream_seconds(stream: TokenStream) -> float:
    """How long the upstream stream ran (so far, if it has not finished)."""
    return (stream.finished_at or time.perf_counter()) - stream.started_at


async def collect(stream: TokenStream, deadline: float | None) -> list[StreamEvent]:
    """Every event of a stream (a buffered answer built from a stream), within ``deadline``
    (a ``time.monotonic()`` value; past it, 504 ``timeout``). The stream is closed after."""
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


def prompt_count(prepared: PreparedRequest, finish: Finish | None) -> tuple[int, bool]:
    """The prompt's tokens and whether that is an estimate: the upstream's count
    (``input_length`` of the ``finish``), else the model's tokenizer, else an estimate."""
    if finish is not None and finish.input_length is not None:
        return finish.input_length, False
    if prepared.input_tokens is not None:
        return prepared.input_tokens, False
    return estimate_tokens(prepared.inputs), True


class Pipeline:
    """The steps every chat-shaped request shares, on top of the generation service."""

    def __init__(self, service: GenerationService, prompts: Prompts, max_input_chars: int) -> None:
        self.service = service
        self.prompts = prompts
        self.max_input_chars = max_input_chars

    def capabilities(self, model: ModelTarget) -> Capabilities:
        return self.service.backend(model).capabilities

    def takes_chat(self, model: ModelTarget) -> bool:
        """Whether ``model``'s backend takes chat requests as they are (no template)."""
        return self.capabilities(model).chat

    def check_size(self, text: str, *, param: str, status: int = 400) -> None:
        """Prompts beyond the gateway's character limit are refused before any work."""
        limit = self.max_input_chars
        if len(text) > limit:
            raise request_error(
                f"The prompt has {len(text)} characters; this gateway accepts at most {limit} "
                "characters",
                status=status,
                param=param,
            )

    def render(self, model: ModelTarget, turns: Sequence[Turn], *, param: str) -> str:
        """``model``'s prompt for ``turns``, its size checked (``param``: the field named)."""
        prompt = self.prompts.render(model.name, turns)
        self.check_size(prompt, param=param)
        return prompt

    def chat_stops(self, model: ModelTarget, client: Iterable[str]) -> list[str]:
        """The stops a chat backend's answer is cut at (no template: no template stops)."""
        return request_stops(client, model)

    def prepare(
        self,
        model: ModelTarget,
        prompt: str,
        parameters: GenerateParameters,
        client_stops: Iterable[str],
        turns: Sequence[Turn] | None = None,
    ) -> PreparedRequest:
        """A generation stream's request. With ``turns`` (``prompt`` was rendered from them)
        the template's stops join the client's and a fallback renders its own prompt; without,
        ``prompt`` is the client's own text (legacy completions). Errors name TGI's fields
        (``inputs``, ``max_new_tokens``, ``stop``): the dialect renames them."""
        template = self.prompts.stops(model.name) if turns is not None else ()
        stops = request_stops(client_stops, model, template)
        parameters = parameters.model_copy(update={"stop": stops or None})
        prompts = self.prompts

        def reprompt(other: ModelTarget) -> str:  # a fallback renders with its own template
            assert turns is not None
            return prompts.render(other.name, turns)

        return self.service.prepare(
            model,
            prompt,
            parameters,
            stream=True,
            reprompt=reprompt if turns is not None else None,
        )

    def stream(self, prepared: PreparedRequest, deadline: float | None) -> TokenStream:
        return self.service.stream(prepared, deadline)

    def chat(self, model: ModelTarget, body: dict[str, Any], deadline: float | None) -> TokenStream:
        return self.service.chat(model, body, deadline)
