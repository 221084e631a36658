"""OpenAI response objects as vLLM and SGLang write them, from simulated choices.

Key order and the set of keys follow the reference's examples (``chat.completion`` with vLLM's
``stop_reason`` or SGLang's ``matched_stop``; chunks as pydantic ``exclude_unset`` leaves them;
the usage chunk with ``choices: []``). Token counts are exact: ``prompt_tokens`` from the
simulated tokenizer over the simulated chat template, ``completion_tokens`` every generated
token including EOS.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_gateway.emulator.sampler import Choice, Token

Flavour = Literal["vllm", "sglang"]


@dataclass
class Answer:
    """The generated choices of one request, and what the body needs to describe them."""

    flavour: Flavour
    model: str
    prompt_tokens: int
    choices: list[Choice]
    chat: bool
    logprobs: bool = False
    top_logprobs: int = 0
    echo: list[str] = field(default_factory=list)  # completions: prompt per choice
    tool_content: str | None = None  # message content beside a tool call ("" or None)
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.id:
            hex_id = uuid.uuid4().hex
            prefix = "" if self.flavour == "sglang" else ("chatcmpl-" if self.chat else "cmpl-")
            self.id = prefix + hex_id

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.tokens) for c in self.choices)

    def usage(self, completion: int | None = None) -> dict[str, int]:
        done = self.completion_tokens if completion is None else completion
        return {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + done,
            "completion_tokens": done,
        }

    def head(self, *, chunk: bool) -> dict[str, Any]:
        kind = "chat.completion" if self.chat else "text_completion"
        return {
            "id": self.id,
            "object": kind + (".chunk" if chunk and self.chat else ""),
            "created": self.created,
            "model": self.model,
        }


def _bytes(text: str) -> list[int]:
    return list(text.encode())


def chat_logprob(token: Token, top: int) -> dict[str, Any]:
    return {
        "token": token.text,
        "logprob": token.logprob,
        "bytes": _bytes(token.text),
        "top_logprobs": [
            {"token": text, "logprob": lp, "bytes": _bytes(text)} for _, text, lp in token.top[:top]
        ],
    }


def completion_logprobs(tokens: list[Token], offset: int) -> dict[str, Any]:
    offsets, position = [], offset
    for token in tokens:
        offsets.append(position)
        position += 0 if token.special else len(token.text)
    return {
        "text_offset": offsets,
        "token_logprobs": [t.logprob for t in tokens],
        "tokens": [t.text for t in tokens],
        "top_logprobs": [
            {text: lp for _, text, lp in (t.top or [(t.id, t.text, t.logprob)])} for t in tokens
        ],
    }


def finish_fields(answer: Answer, choice: Choice) -> dict[str, Any]:
    if answer.flavour == "sglang":
        matched = choice.stop_reason
        if choice.finish_reason == "stop" and matched is None:
            matched = choice.tokens[-1].id  # EOS: SGLang names the token id
        return {"finish_reason": choice.finish_reason, "matched_stop": matched}
    return {"finish_reason": choice.finish_reason, "stop_reason": choice.stop_reason}


def _tool_calls(choice: Choice) -> list[dict[str, Any]]:
    call = choice.tool_call
    if call is None:
        return []
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
    ]


def response(answer: Answer) -> dict[str, Any]:
    """The non-stream ``chat.completion`` / ``text_completion`` object."""
    choices = []
    for choice in answer.choices:
        out: dict[str, Any] = {"index": choice.index}
        if answer.chat:
            calls = _tool_calls(choice)
            content = answer.tool_content if calls else choice.text
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if answer.flavour == "sglang":
                message["reasoning_content"] = None
                message["tool_calls"] = calls or None
            else:
                message["tool_calls"] = calls
            out["message"] = message
            out["logprobs"] = (
                {"content": [chat_logprob(t, answer.top_logprobs) for t in choice.tokens]}
                if answer.logprobs
                else None
            )
        else:
            echo = answer.echo[choice.index] if answer.echo else ""
            out["text"] = echo + choice.text
            out["logprobs"] = (
                completion_logprobs(choice.tokens, len(echo)) if answer.logprobs else None
            )
        choices.append({**out, **finish_fields(answer, choice)})
    return {**answer.head(chunk=False), "choices": choices, "usage": answer.usage()}
