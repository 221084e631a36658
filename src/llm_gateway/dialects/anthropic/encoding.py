"""The Messages API's answer and its event stream, from the core's stream events.

One :class:`MessageEncoder` follows a generation — TGI token events (a prompt template's
model) or an upstream's chat chunks (tool calls included) — and writes, as Anthropic does::

    event: message_start        (usage.input_tokens: counted, else estimated)
    event: content_block_start  (text, or tool_use with its id and name)
    event: content_block_delta  (text_delta, or input_json_delta as arguments arrive) …
    event: content_block_stop
    … one block after the other, indices 0, 1, 2, … never interleaved …
    event: message_delta        (stop_reason, stop_sequence, usage with the exact counts)
    event: message_stop

Each call returns its events as frames. ``ping`` keeps a silent stream alive (the relay's
heartbeat hook); a failure after the head is one ``event: error`` carrying the error body the
dialect answers before the head (:func:`.errors.error_body`). Buffered answers run the same
encoder without frames (``wire=False``) and answer :attr:`MessageEncoder.final`, so both agree.
Stop sequences never reach the client; the one that ended the answer is named.
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import ChatChunk, StreamEvent, TokenEvent, TokenUsage, ToolCallDelta
from llm_gateway.core.stops import StopFilter
from llm_gateway.dialects.anthropic.errors import error_body
from llm_gateway.http.dialect import EncoderBase
from llm_gateway.http.frames import Frame

Events = tuple[Frame, ...]  # the frames of one call (none for a buffered answer)
PING: Events = (Frame(orjson.dumps({"type": "ping"}), "ping"),)


def first_stop(text: str, stops: list[str]) -> str | None:
    """The stop sequence that completes first in ``text`` (where generation stopped).

    >>> first_stop("a END b STOP", ["STOP", "END"])
    'END'
    """
    best: tuple[int, int, str] | None = None
    for stop in stops:
        start = text.find(stop) if stop else -1
        if start >= 0 and (best is None or (start + len(stop), start) < best[:2]):
            best = (start + len(stop), start, stop)
    return None if best is None else best[2]


class MessageEncoder(EncoderBase):
    """One Messages answer, streamed (``wire=True``) or buffered (read :attr:`final`).

    ``stops`` are all the stop sequences the generation runs with (the client's, then a
    template's); ``client_stops`` those the client sent, which alone make ``stop_sequence``.
    """

    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        input_tokens: int,
        estimated: bool,
        stops: list[str],
        client_stops: list[str],
        wire: bool = True,
        rename: bool = True,
    ) -> None:
        self.id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.estimated = estimated  # no tokenizer counted the prompt: until the model reports it
        self.stops = stops
        self.client_stops = client_stops
        self.wire = wire
        self.rename = rename  # False when the client named an alias: keep answering with it
        self.filter = StopFilter(stops)
        self.raw = ""  # the generated text as it came, stop sequences included
        self.content: list[dict[str, Any]] = []
        self.open: int | None = None  # the index of the open block
        self.calls: dict[int, int] = {}  # upstream tool-call index -> block index
        self.arguments: dict[int, str] = {}  # block index -> the arguments' JSON so far
        self.output_tokens = 0
        self.started = False
        self.final: dict[str, Any] | None = None
        self.token_usage: TokenUsage | None = None  # for the request's record
        self._reason: str | None = None  # a chat stream's finish reason
        self._matched: str | None = None  # a chat stream's matched stop string (vLLM)
        self._chat_usage: TokenUsage | None = None

    # -- shapes -----------------------------------------------------------------------------

    def message(self, stop_reason: str | None, stop_sequence: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content if stop_reason else [],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": self._usage(),
        }

    def _usage(self) -> dict[str, Any]:
        """Anthropic's usage (no prompt cache here: its counters are always 0)."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": self.output_tokens,
        }

    def _event(self, kind: str, **fields: Any) -> Events:
        if not self.wire:
            return ()
        return (Frame(orjson.dumps({"type": kind, **fields}), kind),)

    # -- hooks of the relay -----------------------------------------------------------------

    def answer_as(self, model: str) -> None:
        """A fallback answered: name it from now on (unless the client asked by alias)."""
        if self.rename:
            self.model = model

    def opening(self) -> Events:
        """Owed before any token (a model prefilling or waking): ``message_start``."""
        return self._start()

    def heartbeat(self) -> Events:
        return PING if self.wire else ()

    # -- blocks -----------------------------------------------------------------------------

    def _start(self) -> Events:
        if self.started:
            return ()
        self.started = True
        return self._event("message_start", message=self.message(None, None))

    def _close(self) -> Events:
        if self.open is None:
            return ()
        index, self.open = self.open, None
        return self._event("content_block_stop", index=index)

    def _parse_inputs(self) -> None:
        """Each tool call's ``input`` from all its argument fragments, once the answer is
        complete: a fragment that arrived after its block was closed (calls interleaved by
        the upstream) still counts in the buffered answer."""
        for index, text in self.arguments.items():
            block = self.content[index]
            try:
                block["input"] = orjson.loads(text) if text.strip() else {}
            except orjson.JSONDecodeError:
                block["input"] = {}  # the model wrote broken JSON: the client sees the deltas

    def _open(self, block: dict[str, Any]) -> Events:
        out = self._close()
        self.content.append(block)
        self.open = len(self.content) - 1
        return out + self._event("content_block_start", index=self.open, content_block=dict(block))

    def _text(self, text: str) -> Events:
        if not text:
            return ()
        out: Events = ()
        if self.open is None or self.content[self.open]["type"] != "text":
            out += self._open({"type": "text", "text": ""})
        assert self.open is not None
        self.content[self.open]["text"] += text
        return out + self._event(
            "content_block_delta", index=self.open, delta={"type": "text_delta", "text": text}
        )

    def _tool(self, fragment: ToolCallDelta) -> Events:
        key = fragment.index
        out: Events = ()
        index = self.calls.get(key)
        if index is None:
            call_id = fragment.id or f"toolu_{self.id.removeprefix('msg_')}_{key}"
            out += self._open(
                {"type": "tool_use", "id": call_id, "name": fragment.name or "", "input": {}}
            )
            index = self.calls[key] = len(self.content) - 1  # the block just opened
        arguments = fragment.arguments
        if arguments:
            self.arguments[index] = self.arguments.get(index, "") + arguments
            if index == self.open:  # a late fragment of a closed block cannot be sent
                out += self._event(
                    "content_block_delta",
                    index=index,
                    delta={"type": "input_json_delta", "partial_json": arguments},
                )
        return out

    # -- events -----------------------------------------------------------------------------

    def event(self, event: StreamEvent) -> Events:
        out = self._start()
        if self.final is not None:
            return out
        if isinstance(event, TokenEvent):
            self.output_tokens += 1
            self.raw += event.text
            out += self._text(self.filter.push(event.text))
            if event.is_last:
                finish = event.finish
                if finish.input_length is not None:
                    self.input_tokens = finish.input_length  # TGI counted it: exact
                    self.estimated = False
                if finish.generated_tokens is not None:
                    self.output_tokens = finish.generated_tokens
                out += self._finish(finish.reason)
            return out
        return out + self._chunk(event)

    def _chunk(self, chunk: ChatChunk) -> Events:
        if chunk.usage is not None:
            self._chat_usage = chunk.usage
        out: Events = ()
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            content = choice.content
            if content:
                self.output_tokens += 1
                self.raw += content
                out += self._text(self.filter.push(content))
            for fragment in choice.tool_calls:
                out += self._tool(fragment)
            if choice.finish_reason:
                self._reason = choice.finish_reason
                self._matched = choice.stop_reason  # vLLM names the stop string it matched
        return out

    def _stop_reason(self, reason: str | None) -> tuple[str, str | None]:
        matched = first_stop(self.raw, self.stops) if self.filter.stopped else self._matched
        if matched is not None and matched in self.client_stops:
            return "stop_sequence", matched
        if reason == "length":
            return "max_tokens", None
        if reason in ("tool_calls", "function_call") or (
            reason is not None and self.calls and reason != "length"
        ):
            return "tool_use", None
        if reason == "content_filter":
            return "refusal", None
        return "end_turn", None

    def _finish(self, reason: str | None) -> Events:
        out = self._text(self.filter.flush()) + self._close()
        self._parse_inputs()
        stop_reason, stop_sequence = self._stop_reason(reason)
        self.final = self.message(stop_reason, stop_sequence)
        # An estimated prompt is not logged as a count.
        self.token_usage = TokenUsage(self.input_tokens, self.output_tokens, self.estimated)
        usage = self._usage()
        return (
            out
            + self._event(
                "message_delta",
                delta={"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                usage=usage,
            )
            + self._event("message_stop")
        )

    def error(self, error: GatewayError) -> Events:
        out = self._start()
        if self.wire:  # the error body as the error route answers it, as an ``error`` event
            out += (Frame(error_body(error)[1], "error"),)
        return out

    def end(self) -> Events:
        """A chat stream finishes here: its usage chunk follows its finish reason."""
        if self.final is not None:
            return ()
        out = self._start()
        usage = self._chat_usage
        if usage is not None:
            self.input_tokens, self.estimated = usage.prompt_tokens, False
            self.output_tokens = usage.completion_or(self.output_tokens)
        return out + self._finish(self._reason)
