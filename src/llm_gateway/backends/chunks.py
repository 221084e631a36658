"""An upstream's ``chat.completion.chunk`` JSON as the core's typed
:class:`~llm_gateway.core.events.ChatChunk` (TGI's Messages API and the OpenAI servers share
the shape). Fields of the wrong type are read as absent; fields the gateway does not use
(a delta's ``refusal``, ``function_call`` or ``audio``, a choice's other fields) are not kept.

>>> c = chat_chunk({"id": "x", "choices": [{"index": 0, "delta": {"content": "Hi",
...     "tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}, "finish_reason": None}],
...     "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
>>> c.text, c.choices[0].tool_calls[0].arguments, c.usage.total_tokens
('Hi', '{', 4)
"""

from __future__ import annotations

from typing import Any

from llm_gateway.backends.values import as_int, as_number, as_str
from llm_gateway.core.events import (
    ChatChoice,
    ChatChunk,
    ChatLogprob,
    TokenUsage,
    ToolCallDelta,
    TopLogprob,
)


def _bytes(value: Any) -> tuple[int, ...] | None:
    return tuple(value) if isinstance(value, list) else None


def usage(obj: Any) -> TokenUsage | None:
    """The upstream's counts; ``None`` unless it counted the prompt (a missing completion
    count is marked, not guessed)."""
    if not isinstance(obj, dict):
        return None
    prompt = as_int(obj.get("prompt_tokens"))
    if prompt is None:
        return None
    completion = as_int(obj.get("completion_tokens"))
    return TokenUsage(
        prompt,
        completion or 0,
        reported_total=as_int(obj.get("total_tokens")),
        completion_counted=completion is not None,
    )


def _tool_call(obj: dict[str, Any]) -> ToolCallDelta:
    function = obj.get("function")
    if not isinstance(function, dict):
        function = {}
    return ToolCallDelta(
        as_int(obj.get("index")) or 0,
        as_str(obj.get("id")),
        as_str(obj.get("type")),
        as_str(function.get("name")),
        as_str(function.get("arguments")),
    )


def _logprob(obj: dict[str, Any]) -> ChatLogprob:
    top = obj.get("top_logprobs")
    return ChatLogprob(
        str(obj.get("token", "")),
        as_number(obj.get("logprob")),
        _bytes(obj.get("bytes")),
        tuple(
            TopLogprob(str(t.get("token", "")), as_number(t.get("logprob")), _bytes(t.get("bytes")))
            for t in top
            if isinstance(t, dict)
        )
        if isinstance(top, list)
        else (),
    )


def _logprobs(obj: Any) -> tuple[ChatLogprob, ...] | None:
    if not isinstance(obj, dict):
        return None
    content = obj.get("content")
    if not isinstance(content, list):
        return None
    return tuple(_logprob(e) for e in content if isinstance(e, dict))


def choice(obj: dict[str, Any]) -> ChatChoice:
    """One choice; the per-token path, so the common fields are read inline."""
    delta = obj.get("delta")
    if type(delta) is not dict:
        delta = {}
    get = delta.get
    index, content, calls = obj.get("index"), get("content"), get("tool_calls")
    role, reasoning_content, reasoning = get("role"), get("reasoning_content"), get("reasoning")
    finish, stop, logprobs = obj.get("finish_reason"), obj.get("stop_reason"), obj.get("logprobs")
    return ChatChoice(
        index if type(index) is int else 0,
        role if type(role) is str else None,
        content if type(content) is str else None,
        reasoning_content if type(reasoning_content) is str else None,
        reasoning if type(reasoning) is str else None,
        tuple(_tool_call(c) for c in calls if isinstance(c, dict)) if type(calls) is list else (),
        None if logprobs is None else _logprobs(logprobs),
        finish if type(finish) is str else None,
        stop if type(stop) is str else None,
    )


def chat_chunk(obj: dict[str, Any]) -> ChatChunk | None:
    """The chunk, or ``None`` when it has no ``choices`` list (not a chunk)."""
    choices = obj.get("choices")
    if type(choices) is not list:
        return None
    chunk_id, created, model = obj.get("id"), obj.get("created"), obj.get("model")
    fingerprint, counts = obj.get("system_fingerprint"), obj.get("usage")
    return ChatChunk(
        tuple([choice(c) for c in choices if type(c) is dict]),
        None if counts is None else usage(counts),
        chunk_id if type(chunk_id) is str else None,
        created if type(created) is int else None,
        model if type(model) is str else None,
        fingerprint if type(fingerprint) is str else None,
    )
