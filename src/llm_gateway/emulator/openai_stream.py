"""The chunks of a streamed OpenAI answer, as vLLM and SGLang emit them.

vLLM (chat): one ``{"role": "assistant", "content": ""}`` chunk per choice, then one chunk per
token; the last token's chunk carries ``finish_reason`` and ``stop_reason``. A tool call streams
as a first delta with ``id``, ``type`` and the function ``name``, then ``arguments`` fragments.
SGLang: the role rides on the first content chunk, and a last ``delta: {}`` chunk carries
``finish_reason`` and ``matched_stop``. Choices of ``n > 1`` interleave token by token. With
``stream_options.include_usage`` a ``choices: []`` usage chunk ends the stream;
``continuous_usage_stats`` adds the running usage to every chunk.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.emulator.openai_body import (
    Answer,
    chat_logprob,
    completion_logprobs,
    finish_fields,
)
from llm_gateway.emulator.sampler import Choice


def _chunk(answer: Answer, choice: dict[str, Any], continuous: bool, done: int) -> dict[str, Any]:
    out = {**answer.head(chunk=True), "choices": [choice]}
    if continuous:
        out["usage"] = answer.usage(done)
    return out


def _delta(answer: Answer, choice: Choice, step: int, first: bool) -> dict[str, Any] | None:
    """What token ``step`` of ``choice`` adds to the message, None for nothing."""
    text = choice.deltas[step]
    call = choice.tool_call
    if call is None:
        if not text:
            return None
        return {"role": "assistant", "content": text} if first else {"content": text}
    if step == 0:  # the first delta names the function, with the first argument fragment
        function = {"name": call.name, "arguments": text}
        head = {"index": 0, "id": call.id, "type": "function", "function": function}
        return {"role": "assistant", "tool_calls": [head]} if first else {"tool_calls": [head]}
    fragment = {"index": 0, "function": {"arguments": text}}
    return {"tool_calls": [fragment]} if text else None


def stream_chunks(answer: Answer, *, include_usage: bool, continuous: bool) -> list[dict[str, Any]]:
    sglang = answer.flavour == "sglang"
    chunks: list[dict[str, Any]] = []
    counts = [0] * len(answer.choices)
    role_sent = [not sglang] * len(answer.choices)
    if answer.chat and not sglang:
        for choice in answer.choices:
            role = {"index": choice.index, "delta": {"role": "assistant", "content": ""}}
            role |= {"logprobs": None, "finish_reason": None}
            chunks.append(_chunk(answer, role, continuous, 0))
    longest = max((len(c.tokens) for c in answer.choices), default=0)
    for step in range(longest):
        for i, choice in enumerate(answer.choices):
            if step >= len(choice.tokens):
                continue
            counts[i] += 1
            last = step == len(choice.tokens) - 1
            token = choice.tokens[step]
            if not answer.chat:
                chunks.append(_completion_chunk(answer, choice, step, last, continuous, counts[i]))
                continue
            delta = _delta(answer, choice, step, not role_sent[i])
            if delta is not None or (last and not sglang):
                out: dict[str, Any] = {"index": choice.index, "delta": delta or {}}
                if delta is not None and "role" in delta:
                    role_sent[i] = True
                logprobs = chat_logprob(token, answer.top_logprobs) if answer.logprobs else None
                out["logprobs"] = {"content": [logprobs]} if logprobs else None
                if last and not sglang:
                    if choice.tool_call is None and delta is None:
                        out["delta"] = {"content": ""}
                    out |= finish_fields(answer, choice)
                else:
                    out["finish_reason"] = None
                    if sglang:
                        out["matched_stop"] = None
                chunks.append(_chunk(answer, out, continuous, counts[i]))
            if last and sglang:
                final = {"index": choice.index, "delta": {"role": "assistant"}}
                if role_sent[i]:
                    final["delta"] = {}
                final |= {"logprobs": None, **finish_fields(answer, choice)}
                chunks.append(_chunk(answer, final, continuous, counts[i]))
    if include_usage:
        chunks.append({**answer.head(chunk=True), "choices": [], "usage": answer.usage()})
    return chunks


def _completion_chunk(
    answer: Answer, choice: Choice, step: int, last: bool, continuous: bool, done: int
) -> dict[str, Any]:
    echo = answer.echo[choice.index] if answer.echo and step == 0 else ""
    offset = len(echo) + sum(len(d) for d in choice.deltas[:step])
    token = choice.tokens[step]
    out: dict[str, Any] = {
        "index": choice.index,
        "text": echo + choice.deltas[step],
        "logprobs": completion_logprobs([token], offset) if answer.logprobs else None,
        "finish_reason": None,
        "stop_reason": None,
    }
    if last:
        out |= finish_fields(answer, choice)
    return _chunk(answer, out, continuous, done)
