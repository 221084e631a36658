"""OpenAI response shapes: completions, streamed chunks, usage, logprobs and errors.

``finish_reason`` is OpenAI's vocabulary: TGI's ``eos_token`` and ``stop_sequence`` are
``stop``; ``length`` stays ``length``. Text never contains a stop sequence or a special token.

>>> status, body = error_body(GatewayError("bad", status=422, error_type="validation",
...                                        kind=ErrorKind.CLIENT, param="max_new_tokens"))
>>> status, body["error"]["type"], body["error"]["param"]
(400, 'invalid_request_error', 'max_tokens')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.core.errors import ErrorKind, GatewayError
from llm_gateway.core.events import StreamEvent, TokenEvent
from llm_gateway.core.stops import StopFilter

DONE = b"data: [DONE]\n\n"
_dumps = orjson.dumps

# TGI parameter names in errors -> the OpenAI parameter the client sent.
_PARAMS = {"max_new_tokens": "max_tokens", "top_n_tokens": "top_logprobs", "inputs": "messages"}


def error_body(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """OpenAI's ``{"error": {message, type, param, code}}`` and its status."""
    # A budget refusal names OpenAI's own type and code (tokens/requests/insufficient_quota).
    openai_type = getattr(error, "openai_type", None)
    openai_code = getattr(error, "openai_code", None)
    if isinstance(openai_type, str) and isinstance(openai_code, str):
        body = {"message": error.message, "type": openai_type, "param": None, "code": openai_code}
        return error.status, {"error": body}
    if error.code in ("overloaded", "model_warming"):
        # The gateway's own capacity (or a model scaling up from zero): a server condition
        # that clears, answered as OpenAI's 503 (TGI's dialect keeps 429/503 with its type).
        body = {"message": error.message, "type": "server_error", "param": None, "code": error.code}
        return 503, {"error": body}
    status = error.status
    if status == 422:
        status = 400  # OpenAI reports every invalid request as 400
    elif status == 424 or (status >= 500 and status not in (502, 503, 504)):
        status = 502  # the model failed: a bad gateway, never a bare 500
    if error.kind is ErrorKind.AUTH:
        kind, code = "invalid_request_error", "invalid_api_key"
    elif status == 429:
        kind, code = "rate_limit_error", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", error.error_type
    else:
        kind = "invalid_request_error"
        code = error.error_type
        if error.error_type == "validation":
            code = (
                "context_length_exceeded" if _is_context_length(error.message) else "invalid_value"
            )
    param = _PARAMS.get(error.param or "", error.param)
    return status, {"error": {"message": error.message, "type": kind, "param": param, "code": code}}


def _is_context_length(message: str) -> bool:
    """TGI's two prompt-length messages (MaxTotalTokens, InputLength)."""
    return "`inputs` tokens + `max_new_tokens` must be" in message or (
        "`inputs` must have less than" in message
    )


def finish_reason(tgi_reason: str | None, stopped_here: bool) -> str:
    if stopped_here:
        return "stop"
    return "length" if tgi_reason == "length" else "stop"


def usage_body(prompt_tokens: int, completion_tokens: int, estimated: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if estimated:
        usage["prompt_tokens_estimated"] = True  # the endpoint did not report it; see README
    return usage


def chat_logprob(token: dict[str, Any], top: list[dict[str, Any]] | None) -> dict[str, Any]:
    text = token["text"]
    return {
        "token": text,
        "logprob": token["logprob"],
        "bytes": list(text.encode()),
        "top_logprobs": [
            {"token": t["text"], "logprob": t["logprob"], "bytes": list(t["text"].encode())}
            for t in top or ()
        ],
    }


def text_logprobs(
    entries: list[tuple[dict[str, Any], list[dict[str, Any]] | None]], offset: int
) -> dict[str, Any]:
    """Legacy completions logprobs: parallel lists."""
    tokens, logprobs, tops, offsets = [], [], [], []
    for token, top in entries:
        offsets.append(offset)
        offset += len(token["text"])
        tokens.append(token["text"])
        logprobs.append(token["logprob"])
        tops.append({t["text"]: t["logprob"] for t in top} if top else None)
    return {
        "tokens": tokens,
        "token_logprobs": logprobs,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


# Prompt-token count: (count, estimated) from the last event's details.
PromptTokens = Callable[[dict[str, Any] | None], tuple[int, bool]]


class OpenAIStreamEncoder:
    """One streamed choice as ``chat.completion.chunk`` or ``text_completion`` events.

    The first chat chunk carries the role; content follows with stop sequences held back and
    removed; then a finish chunk, the usage chunk when asked, and ``data: [DONE]``. A failure
    after the head is one ``{"error": {…}}`` event, then ``[DONE]``.
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
        self._pending_logprobs: list[tuple[dict[str, Any], list[dict[str, Any]] | None, int]] = []
        self._token_chars = 0  # generated text covered by the tokens seen so far
        self._shown = 0  # generated text sent so far (held-back stop prefixes excluded)
        self._started = False
        self._offset = 0
        self.completion_tokens = 0
        self.usage: dict[str, Any] | None = None
        self.finish: str | None = None

    def _chunk(
        self,
        text: str | None,
        finish: str | None = None,
        role: bool = False,
        generated: bool = True,
    ) -> bytes:
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
        return b"data: " + _dumps(chunk) + b"\n\n"

    def _shown_logprobs(
        self, *, final: bool
    ) -> list[tuple[dict[str, Any], list[dict[str, Any]] | None]]:
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

    def event(self, event: StreamEvent) -> bytes:
        assert isinstance(event, TokenEvent), "completion streams carry generate events"
        out = b""
        if not self._started:
            if self.chat:
                out += self._chunk("", role=True)
            elif self.echo:
                out += self._chunk(self.echo, generated=False)
        self._started = True
        self.completion_tokens += 1
        token = event.token
        if self.logprobs and not self.filter.stopped and not token["special"]:
            self._pending_logprobs.append((token, event.top_tokens, self._token_chars))
            self._token_chars += len(token["text"])
        text = "" if token["special"] else self.filter.push(token["text"])
        if text:
            out += self._chunk(text)
        if event.is_last:
            out += self._finish(event.details)
        return out

    def _finish(self, details: dict[str, Any] | None) -> bytes:
        out = b""
        tail = self.filter.flush()
        if tail:
            out += self._chunk(tail)
        reason = (details or {}).get("finish_reason")
        self.finish = finish_reason(reason, self.filter.stopped)
        out += self._chunk(None, self.finish)
        generated = (details or {}).get("generated_tokens", self.completion_tokens)
        prompt, estimated = self.prompt_tokens(details)
        self.usage = usage_body(prompt, generated, estimated)
        if self.include_usage:
            out += b"data: " + _dumps({**self.base, "choices": [], "usage": self.usage}) + b"\n\n"
        return out

    def answer_as(self, model: str) -> None:
        """A fallback model answered: name it in every chunk from now on."""
        self.base["model"] = model

    def error(self, error: GatewayError) -> bytes:
        return b"data: " + _dumps(error_body(error)[1]) + b"\n\n" + DONE

    def end(self) -> bytes:
        return DONE
