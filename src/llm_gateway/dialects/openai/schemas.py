"""OpenAI request bodies. Types are strict as OpenAI's API is; unknown fields are ignored as
OpenAI ignores them. Two extensions that TGI-style clients send are read too: ``top_k`` and
``repetition_penalty``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Field -> how OpenAI's errors name its JSON type.
OPENAI_TYPES: dict[str, str] = {
    "model": "a string",
    "messages": "an array",
    "role": "a string",
    "content": "a string or an array of content parts",
    "prompt": "a string or an array of strings",
    "max_tokens": "an integer",
    "max_completion_tokens": "an integer",
    "temperature": "a number",
    "top_p": "a number",
    "n": "an integer",
    "stream": "a boolean",
    "stream_options": "an object",
    "include_usage": "a boolean",
    "stop": "a string or an array of strings",
    "seed": "an integer",
    "frequency_penalty": "a number",
    "presence_penalty": "a number",
    "repetition_penalty": "a number",
    "top_k": "an integer",
    "logprobs": "a boolean",
    "top_logprobs": "an integer",
    "echo": "a boolean",
    "best_of": "an integer",
    "response_format": "an object",
    "": "an object",
}


# Built on first use (defer_build): a cold start whose first request is not this dialect's
# does not pay for these schemas.
class _Lenient(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True, extra="ignore")


class ContentPart(_Lenient):
    type: str
    text: str | None = None


class ChatMessage(_Lenient):
    role: str
    content: str | list[ContentPart] | None = None
    tool_calls: list[Any] | None = None


class StreamOptions(_Lenient):
    include_usage: bool | None = None


class ResponseFormat(_Lenient):
    """OpenAI's ``text``/``json_object``/``json_schema`` and TGI's own grammar shape
    ``{"type": "json_object" | "json" | "regex", "value": …}`` (huggingface_hub sends it);
    which combinations make sense is checked by the mapping, naming ``response_format``."""

    type: str
    json_schema: dict[str, Any] | None = None
    value: Any = None


class SamplingFields(_Lenient):
    """What chat and completion requests share."""

    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    # extensions sent by TGI/vLLM-style clients
    top_k: int | None = None
    repetition_penalty: float | None = None


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = None  # legacy completions: how many top tokens, 0-5
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = None
