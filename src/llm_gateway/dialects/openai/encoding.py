"""OpenAI response shapes: completions, streamed chunks, usage and logprobs (errors:
:mod:`.errors`).

``finish_reason`` is OpenAI's vocabulary: TGI's ``eos_token`` and ``stop_sequence`` are
``stop``; ``length`` stays ``length``. Text never contains a stop sequence or a special token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import Finish, StreamEvent, Token, TokenEvent, TokenUsage
from llm_gateway.core.stops import StopFilter
from llm_gateway.dialects.openai.errors import error_body
from llm_gateway.http.dialect import EncoderBase
from llm_gateway.http.frames import Frame

DONE = Frame(b"[DONE]")
_dumps = orjson.dumps

# OpenAI's finish reasons an upstream may give that are kept as they are.
_KEPT_REASONS = frozenset({"length", "tool_calls", "content_filter", "function_call"})


def finish_reason(reason: str | None, stopped_here: bool) -> str:
    """OpenAI's finish reason from the upstream's: TGI's ``eos_token`` and ``stop_sequence``
    (and ``abort``, anything unknown) are ``stop``; ``length`` and an OpenAI server's
    ``tool_calls`` are kept.

    >>> [finish_reason(r, False) for r in ("eos_token", "stop_sequence", "length", "tool_calls")]
    ['stop', 'stop', 'length', 'tool_calls']
    >>> finish_reason("length", True)  # the gateway cut a stop sequence out itself
    'stop'
    """
    if stopped_here:
        return "stop"
    return reason if reason in _KEPT_REASONS else "stop"


def usage_body(prompt_tokens: int, completion_tokens: int, estimated: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if estimated:
        usage["prompt_tokens_estimated"] = True  # the endpoint did not report it; see README
    return usage


def usage_json(usage: TokenUsage) -> dict[str, Any]:
    """OpenAI's ``usage`` object of a :class:`TokenUsage` (the upstream's own total kept)."""
    body = usage_body(usage.prompt_tokens, usage.completion_tokens, usage.prompt_estimated)
    body["total_tokens"] = usage.total_tokens
    return body


def chat_logprob(token: Token, top: tuple[Token, ...] | None) -> dict[str, Any]:
    text = token.text
    return {
        "token": text,
        "logprob": token.logprob,
        "bytes": list(text.encode()),
        "top_logprobs": [
            {"token": t.text, "logprob": t.logprob, "bytes": list(t.text.encode())}
            for t in top or ()
        ],
    }


def text_logprobs(
    entries: list[tuple[Token, tuple[Token, ...] | None]], offset: int
) -> dict[str, Any]:
    """Legacy completions logprobs: parallel lists."""
    tokens, logprobs, tops, offsets = [], [], [], []
    for token, top in entries:
        offsets.append(offset)
        offset += len(token.text)
        tokens.append(token.text)
        logprobs.append(token.logprob)
        tops.append({t.text: t.logprob for t in top} if top else None)
    return {
        "tokens": tokens,
        "token_logprobs": logprobs,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


# Prompt-token count: (count, estimated) from how the generation ended (None: it did not say).
PromptTokens = Callable[[Finish | None], tuple[int, bool]]


class OpenAIStreamEncoder(EncoderBase):
    """One streamed choice as ``chat.completion.chunk`` or ``text_completion`` events.

    The first chat chunk carries the role; content follows with stop sequences held back and
    removed; then a finish chunk, the usage chunk when asked, and ``[DONE]``. A failure
    after the head is one event of :func:`~llm_gateway.dialects.openai.errors.error_body`,
    then ``[DONE]``.
    """

    def __init__(
        self,
        *,
        chat: bool,
        completion_id: str,
        model: str,
        created: int,
        stops: list[str],
        include_usage: bool,
        logprobs: bool,
        prompt_tokens: PromptTokens,
        echo: str = "",
    ) -> None:
        self.chat = chat
        self.echo = echo  # legacy completions' `echo`: the prompt goes out first
        self.base = {
            "id": completion_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        self.filter = StopFilter(stops)
        self.include_usage = include_usage
        self.logprobs = logprobs
        self.prompt_tokens = prompt_tokens
        # Logprobs wait until their token's text is shown: (token, top tokens, where the
        # token's text starts in the generated text).
        self._pending_logprobs: list[tuple[Token, tuple[Token, ...] | None, int]] = []
        self._token_chars = 0  # generated text covered by the tokens seen so far
        self._shown = 0  # generated text sent so far (held-back stop prefixes excluded)
        self._started = False
        self._offset = 0
        self.completion_tokens = 0
        self.token_usage: TokenUsage | None = None  # for the request's record
        self.usage: dict[str, Any] | None = None  # the same, as OpenAI's usage object
        self.finish: str | None = None

    def _chunk(
        self,
        text: str | None,
        finish: str | None = None,
        role: bool = False,
        generated: bool = True,
    ) -> Frame:
        logprobs = None
        if generated:
            self._shown += len(text or "")
        entries = self._shown_logprobs(final=finish is not None) if text or finish else []
        if entries:
            if self.chat:
                logprobs = {"content": [chat_logprob(t, top) for t, top in entries]}
            else:
                logprobs = text_logprobs(entries, self._offset)
        if self.chat:
            delta: dict[str, Any] = (
                {"role": "assistant", "content": text or ""}
                if role
                else ({"content": text} if text else {})
            )
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": logprobs,
                "finish_reason": finish,
            }
        else:
            choice = {"index": 0, "text": text or "", "logprobs": logprobs, "finish_reason": finish}
        self._offset += len(text or "")
        chunk = {**self.base, "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return Frame(_dumps(chunk))

    def _shown_logprobs(self, *, final: bool) -> list[tuple[Token, tuple[Token, ...] | None]]:
        """The pending logprobs whose token's text starts inside what has been shown, as the
        buffered answer lists them; at the end, the rest (text a stop sequence withheld) is
        dropped."""
        if not self.logprobs or not self._pending_logprobs:
            return []
        shown = [(t, top) for t, top, start in self._pending_logprobs if start < self._shown]
        self._pending_logprobs = (
            [] if final else [e for e in self._pending_logprobs if e[2] >= self._shown]
        )
        return shown

    def event(self, event: StreamEvent) -> list[Frame]:
        assert isinstance(event, TokenEvent), "completion streams carry generate events"
        out: list[Frame] = []
        if not self._started:
            if self.chat:
                out.append(self._chunk("", role=True))
            elif self.echo:
                out.append(self._chunk(self.echo, generated=False))
        self._started = True
        self.completion_tokens += 1
        token = event.token
        if self.logprobs and not self.filter.stopped and not token.special:
            self._pending_logprobs.append((token, event.top_tokens, self._token_chars))
            self._token_chars += len(token.text)
        text = "" if token.special else self.filter.push(token.text)
        if text:
            out.append(self._chunk(text))
        if event.is_last:
            out += self._finish(event.finish)
        return out

    def _finish(self, finish: Finish) -> list[Frame]:
        out: list[Frame] = []
        tail = self.filter.flush()
        if tail:
            out.append(self._chunk(tail))
        self.finish = finish_reason(finish.reason, self.filter.stopped)
        out.append(self._chunk(None, self.finish))
        generated = finish.generated_tokens
        if generated is None:
            generated = self.completion_tokens
        prompt, estimated = self.prompt_tokens(finish)
        self.token_usage = TokenUsage(prompt, generated, estimated)
        self.usage = usage_json(self.token_usage)
        if self.include_usage:
            out.append(Frame(_dumps({**self.base, "choices": [], "usage": self.usage})))
        return out

    def answer_as(self, model: str) -> None:
        """A fallback model answered: name it in every chunk from now on."""
        self.base["model"] = model

    def error(self, error: GatewayError) -> tuple[Frame, Frame]:
        return Frame(error_body(error)[1]), DONE

    def end(self) -> tuple[Frame, ...]:
        return (DONE,)
