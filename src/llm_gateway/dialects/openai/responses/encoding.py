"""The ``response`` object and its typed event stream, from the core's stream events.

One :class:`ResponseEncoder` follows a generation (TGI token events, or an upstream's chat
chunks) and produces, in order, each with a ``sequence_number`` and as ``event: <type>`` +
``data: {json}``::

    response.created, response.in_progress,
    for each output item (the message, then each function call, as the model produces them):
      response.output_item.added, response.content_part.added (message),
      response.output_text.delta … | response.function_call_arguments.delta …,
      response.output_text.done, response.content_part.done | response.function_call_arguments.done,
      response.output_item.done,
    response.completed | response.incomplete (cut by max_output_tokens)

A failure after the head is one ``response.failed`` event whose ``response.error``
(:func:`.errors.response_error`) says what went wrong (every client — the openai SDKs,
LangChain, the AI SDK — reads it as the stream's error), and the stream ends. Each call returns
its events as frames. A buffered answer runs the same encoder without making frames and answers
its final ``response``, so both modes agree to the byte on text, status and usage.
Stop sequences never reach the client (held back as chat completions hold them back).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import StreamEvent, TokenEvent, TokenUsage, ToolCallDelta
from llm_gateway.core.stops import StopFilter
from llm_gateway.dialects.openai.encoding import PromptTokens, finish_reason
from llm_gateway.dialects.openai.responses.errors import response_error
from llm_gateway.dialects.openai.responses.items import OutputItem, OutputItems
from llm_gateway.http.dialect import EncoderBase
from llm_gateway.http.frames import Frame

Events = tuple[Frame, ...]  # the frames of one call (none for a buffered answer)


def response_usage(usage: TokenUsage) -> dict[str, Any]:
    """An answer's usage as the Responses API's ``usage`` object."""
    body: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }
    if usage.prompt_estimated:
        body["input_tokens_estimated"] = True  # the endpoint did not count it; see the README
    return body


class ResponseEncoder(EncoderBase):
    """One response, streamed (``wire=True``: each call returns its events' frames) or
    buffered (``wire=False``: nothing is serialised; read :attr:`final` at the end).

    ``echo`` holds the request fields a ``response`` object repeats (instructions, metadata,
    temperature, text, tools, …) in OpenAI's key order; ``prompt_tokens`` counts the prompt from
    the last event's details, as chat completions count it.
    """

    def __init__(
        self,
        *,
        request_id: str,
        echo: dict[str, Any],
        stops: list[str],
        prompt_tokens: PromptTokens,
        wire: bool = True,
    ) -> None:
        self.response_id = f"resp_{request_id}"
        self.items = OutputItems(request_id)
        self.echo = echo
        self.created_at = int(time.time())
        self.filter = StopFilter(stops)
        self.prompt_tokens = prompt_tokens
        self.wire = wire
        self.sequence = 0
        self.generated = 0  # tokens (or chat deltas) seen
        self.token_usage: TokenUsage | None = None  # for the request's record
        self.final: dict[str, Any] | None = None  # the last response object
        self._started = False
        self._reason: str | None = None  # a chat stream's upstream finish reason
        self._chat_usage: TokenUsage | None = None

    @property
    def text(self) -> str:
        """The answer's text (its message items')."""
        return self.items.text

    def answer_as(self, model: str) -> None:
        """A fallback model answered: name it in every response object from now on."""
        self.echo = {**self.echo, "model": model}

    # -- shapes -----------------------------------------------------------------------------

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete: bool = False,
    ) -> dict[str, Any]:
        echo = self.echo
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": echo.get("instructions"),
            "max_output_tokens": echo.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": echo["model"],
            "output": output,
            "parallel_tool_calls": echo.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "prompt_cache_key": None,
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": None,
            "service_tier": "default",
            "store": False,
            "temperature": echo.get("temperature"),
            "text": echo.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
            "tool_choice": echo.get("tool_choice", "auto"),
            "tools": echo.get("tools", []),
            "top_logprobs": 0,
            "top_p": echo.get("top_p"),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": echo.get("metadata") or {},
        }

    def _event(self, kind: str, **fields: Any) -> Events:
        self.sequence += 1
        if not self.wire:
            return ()
        data = {"type": kind, "sequence_number": self.sequence - 1, **fields}
        return (Frame(orjson.dumps(data), kind),)

    def _events(self, events: list[tuple[str, dict[str, Any]]]) -> Events:
        return tuple(f for kind, fields in events for f in self._event(kind, **fields))

    # -- the stream -------------------------------------------------------------------------

    def opening(self) -> Events:
        """What a client is owed as soon as the stream is committed, before any token (the
        model may be prefilling or waking): ``response.created`` and ``response.in_progress``."""
        return self._start()

    def _start(self) -> Events:
        if self._started:
            return ()
        self._started = True
        pending = self.response("in_progress", [])
        return self._event("response.created", response=pending) + self._event(
            "response.in_progress", response=pending
        )

    def _text(self, text: str) -> Events:
        """Answer text: into the open message item, else a new one."""
        if not text:
            return ()
        item = self.items.current
        events: list[tuple[str, dict[str, Any]]] = []
        if item is None or item.kind != "message":
            item, events = self.items.open("message")
        return self._events([*events, item.delta(text)])

    def _call(self, fragment: ToolCallDelta) -> Events:
        """One tool-call fragment of a chat chunk (``index``, ``id``, ``function.name``,
        ``function.arguments``): a new ``function_call`` item, or more of its arguments."""
        upstream, name, arguments = fragment.index, fragment.name, fragment.arguments
        item: OutputItem | None = self.items.call(upstream)
        events: list[tuple[str, dict[str, Any]]] = []
        if item is None:
            call_id = fragment.id
            if not call_id:
                call_id = f"call_{self.items.request_id}_{len(self.items.items)}"
            item, events = self.items.open(
                "function_call", call_id=call_id, name=name or "", upstream=upstream
            )
        elif isinstance(name, str) and name:
            item.name = name
        if isinstance(arguments, str) and arguments:
            if item.closed:  # a fragment after its call was closed: kept, not streamed
                item.text += arguments
            else:
                events.append(item.delta(arguments))
        return self._events(events)

    def event(self, event: StreamEvent) -> Events:
        out = self._start()
        if self.final is not None:
            return out
        if isinstance(event, TokenEvent):
            self.generated += 1
            out += self._text(self.filter.push(event.text))
            if event.is_last:
                finish = event.finish
                prompt, estimated = self.prompt_tokens(finish)
                generated = finish.generated_tokens
                if generated is None:
                    generated = self.generated
                out += self._finish(finish.reason, prompt, generated, estimated)
            return out
        if event.usage is not None:  # an upstream chat chunk
            self._chat_usage = event.usage
        for choice in event.choices:
            if choice.content is not None:
                self.generated += 1
                out += self._text(self.filter.push(choice.content))
            for fragment in choice.tool_calls:
                self.generated += 1
                out += self._call(fragment)
            self._reason = choice.finish_reason or self._reason
        return out

    def _finish(self, reason: str | None, prompt: int, generated: int, estimated: bool) -> Events:
        out = self._text(self.filter.flush())
        incomplete = finish_reason(reason, self.filter.stopped) == "length"
        self.token_usage = TokenUsage(prompt, generated, estimated)
        status = "incomplete" if incomplete else "completed"
        events: list[tuple[str, dict[str, Any]]] = []
        if not self.items.items:  # an empty answer is still one (empty) message
            _item, events = self.items.open("message")
        current = self.items.current
        if current is not None:
            events += current.close(status)
        self.final = self.response(
            status,
            self.items.output(),
            usage=response_usage(self.token_usage),
            incomplete=incomplete,
        )
        return out + self._events([*events, (f"response.{status}", {"response": self.final})])

    def error(self, error: GatewayError) -> Events:
        out = self._start()
        current = self.items.current
        if current is not None:
            current.status = "incomplete"
        self.final = self.response("failed", self.items.output(), error=response_error(error))
        return out + self._event("response.failed", response=self.final)

    def end(self) -> Events:
        """A chat stream finishes here: its usage chunk follows its finish reason."""
        if self.final is not None:
            return ()
        out = self._start()
        usage = self._chat_usage
        if usage is not None:
            prompt, estimated = usage.prompt_tokens, False
            generated = usage.completion_or(self.generated)
        else:
            (prompt, estimated), generated = self.prompt_tokens(None), self.generated
        return out + self._finish(self._reason, prompt, generated, estimated)
