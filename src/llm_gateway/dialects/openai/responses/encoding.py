"""The ``response`` object and its typed event stream, from the core's stream events.

One :class:`ResponseEncoder` follows a generation (TGI token events, or an upstream's chat
chunks) and produces, in order, each with a ``sequence_number`` and as ``event: <type>`` +
``data: {json}``::

    response.created, response.in_progress, response.output_item.added,
    response.content_part.added, response.output_text.delta …, response.output_text.done,
    response.content_part.done, response.output_item.done,
    response.completed | response.incomplete (cut by max_output_tokens)

A failure after the head is one ``response.failed`` event whose ``response.error`` says what
went wrong (every client — the openai SDKs, LangChain, the AI SDK — reads it as the stream's
error), and the stream ends. A buffered answer runs the same encoder without writing events and
answers its final ``response``, so both modes agree to the byte on text, status and usage.
Stop sequences never reach the client (held back as chat completions hold them back).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import StreamEvent, TokenEvent
from llm_gateway.core.stops import StopFilter
from llm_gateway.dialects.openai.encoding import PromptTokens, finish_reason, usage_body


def response_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Chat completions' usage (TGI's counts) as the Responses API's ``usage`` object."""
    body: dict[str, Any] = {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage["total_tokens"],
    }
    if usage.get("prompt_tokens_estimated"):
        body["input_tokens_estimated"] = True  # the endpoint did not count it; see the README
    return body


def error_object(error: GatewayError) -> dict[str, Any]:
    """``response.error``: OpenAI's code (its SDKs know a fixed list), the gateway's type."""
    code = "rate_limit_exceeded" if error.status == 429 else "server_error"
    return {"code": code, "message": error.message, "param": None, "type": error.error_type}


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ResponseEncoder:
    """One response, streamed (``wire=True``: each call returns its events' bytes) or buffered
    (``wire=False``: nothing is serialised; read :attr:`final` at the end).

    ``echo`` holds the request fields a ``response`` object repeats (instructions, metadata,
    temperature, text, …) in OpenAI's key order; ``prompt_tokens`` counts the prompt from the
    last event's details, as chat completions count it.
    """

    def __init__(
        self,
        *,
        response_id: str,
        item_id: str,
        echo: dict[str, Any],
        stops: list[str],
        prompt_tokens: PromptTokens,
        wire: bool = True,
    ) -> None:
        self.response_id = response_id
        self.item_id = item_id
        self.echo = echo
        self.created_at = int(time.time())
        self.filter = StopFilter(stops)
        self.prompt_tokens = prompt_tokens
        self.wire = wire
        self.sequence = 0
        self.text = ""
        self.generated = 0  # tokens (or chat content deltas) seen
        self.usage: dict[str, Any] | None = None  # chat-style, for the request's metrics
        self.final: dict[str, Any] | None = None  # the last response object
        self._started = False
        self._reason: str | None = None  # a chat stream's upstream finish reason
        self._chat_usage: dict[str, Any] | None = None

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
            "tools": [],
            "top_logprobs": 0,
            "top_p": echo.get("top_p"),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": echo.get("metadata") or {},
        }

    def part(self) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": self.text}

    def item(self, status: str, content: bool = True) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "type": "message",
            "status": status,
            "content": [self.part()] if content else [],
            "role": "assistant",
        }

    def _event(self, kind: str, **fields: Any) -> bytes:
        self.sequence += 1
        if not self.wire:
            return b""
        return _sse(kind, {"type": kind, "sequence_number": self.sequence - 1, **fields})

    def _at(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}

    # -- the stream -------------------------------------------------------------------------

    def opening(self) -> bytes:
        """What a client is owed as soon as the stream is committed, before any token (the
        model may be prefilling or waking): ``response.created`` and ``response.in_progress``."""
        return self._start()

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        pending = self.response("in_progress", [])
        return b"".join(
            [
                self._event("response.created", response=pending),
                self._event("response.in_progress", response=pending),
                self._event(
                    "response.output_item.added",
                    output_index=0,
                    item=self.item("in_progress", content=False),
                ),
                self._event(
                    "response.content_part.added",
                    **self._at(),
                    part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
                ),
            ]
        )

    def _delta(self, text: str) -> bytes:
        if not text:
            return b""
        self.text += text
        return self._event("response.output_text.delta", **self._at(), delta=text, logprobs=[])

    def event(self, event: StreamEvent) -> bytes:
        out = self._start()
        if self.final is not None:
            return out
        if isinstance(event, TokenEvent):
            self.generated += 1
            out += self._delta(self.filter.push(event.text))
            if event.is_last:
                details = event.details or {}
                prompt, estimated = self.prompt_tokens(event.details)
                generated = details.get("generated_tokens", self.generated)
                out += self._finish(details.get("finish_reason"), prompt, generated, estimated)
            return out
        data = event.data  # an upstream chat chunk
        if isinstance(data.get("usage"), dict):
            self._chat_usage = data["usage"]
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            if delta.get("content") is not None:
                self.generated += 1
                out += self._delta(self.filter.push(delta["content"]))
            self._reason = choice.get("finish_reason") or self._reason
        return out

    def _finish(self, reason: str | None, prompt: int, generated: int, estimated: bool) -> bytes:
        out = self._delta(self.filter.flush())
        incomplete = finish_reason(reason, self.filter.stopped) == "length"
        self.usage = usage_body(prompt, generated, estimated)
        status = "incomplete" if incomplete else "completed"
        item = self.item(status)
        self.final = self.response(
            status, [item], usage=response_usage(self.usage), incomplete=incomplete
        )
        return out + b"".join(
            [
                self._event("response.output_text.done", **self._at(), text=self.text, logprobs=[]),
                self._event("response.content_part.done", **self._at(), part=self.part()),
                self._event("response.output_item.done", output_index=0, item=item),
                self._event(f"response.{status}", response=self.final),
            ]
        )

    def error(self, error: GatewayError) -> bytes:
        out = self._start()
        self.final = self.response(
            "failed", [self.item("incomplete")] if self.text else [], error=error_object(error)
        )
        return out + self._event("response.failed", response=self.final)

    def end(self) -> bytes:
        """A chat stream finishes here: its usage chunk follows its finish reason."""
        if self.final is not None:
            return b""
        out = self._start()
        usage = self._chat_usage
        if usage and isinstance(usage.get("prompt_tokens"), int):
            prompt, estimated = usage["prompt_tokens"], False
            generated = int(usage.get("completion_tokens", self.generated))
        else:
            (prompt, estimated), generated = self.prompt_tokens(None), self.generated
        return out + self._finish(self._reason, prompt, generated, estimated)
