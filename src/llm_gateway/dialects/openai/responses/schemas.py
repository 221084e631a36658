"""The Responses API request body, as far as a stateless gateway reads it.

Types are strict as OpenAI's are; unknown fields are ignored as OpenAI ignores them. ``input``
items are kept as plain objects here and read one by one in :mod:`.mapping`, so that each
problem is reported with OpenAI's ``param`` path (``input[2].content[0].type``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_gateway.dialects.openai.schemas import OPENAI_TYPES

# Field -> how OpenAI's errors name its JSON type (the chat fields' names included).
RESPONSES_TYPES: dict[str, str] = {
    **OPENAI_TYPES,
    "input": "a string or an array of input items",
    "instructions": "a string",
    "max_output_tokens": "an integer",
    "text": "an object",
    "format": "an object",
    "type": "a string",
    "name": "a string",
    "schema": "an object",
    "strict": "a boolean",
    "description": "a string",
    "store": "a boolean",
    "metadata": "a map of strings",
    "tools": "an array",
    "parallel_tool_calls": "a boolean",
    "background": "a boolean",
    "previous_response_id": "a string",
    "include": "an array of strings",
}


# Built on first use (defer_build): a cold start whose first request is not this dialect's
# does not pay for these schemas.
class _Lenient(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True, extra="ignore", populate_by_name=True)


class TextFormat(_Lenient):
    """``text.format``: ``{"type": "text"}`` or ``{"type": "json_schema", "name", "schema", …}``."""

    type: Literal["text", "json_schema", "json_object"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Lenient):
    format: TextFormat | None = None
    verbosity: str | None = None


class ResponsesRequest(_Lenient):
    """``POST /v1/responses``. The fields a stateless gateway cannot honour are read only to
    refuse them by name (400 with ``param``)."""

    model: str | None = None
    input: Any = None  # a string or a list of items: checked in mapping, by path
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: Any = None  # not in OpenAI's API, but vLLM's and TGI's clients send it
    text: TextConfig | None = None
    stream: bool | None = None
    store: bool | None = None  # accepted; nothing is stored (answered as store: false)
    metadata: dict[str, str] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    include: list[str] | None = None
    # Stateful features: refused when set.
    previous_response_id: Any = None
    conversation: Any = None
    background: bool | None = None
    prompt: Any = None
