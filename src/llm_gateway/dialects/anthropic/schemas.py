"""The Messages API request body, as the gateway reads it.

Types are strict and unknown fields refused, as Anthropic's API refuses them (400
``<field>: Extra inputs are not permitted``, the wording Claude Code's recovery looks for).
Content blocks stay plain objects here and are read one by one in :mod:`.mapping`, so each
problem is reported at its path (``messages.2.content.0.type``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Hints a model may not honour: accepted, ignored, listed in ``x-llm-gateway-ignored-params``.
HINTS = ("thinking", "context_management", "output_config", "cache_control", "service_tier")
# Fields of Anthropic's API that would change the answer and that no hosted model can honour.
REFUSED = ("container", "mcp_servers", "inference_geo", "speed", "fallbacks")


# Built on first use (defer_build): a cold start whose first request is not this dialect's
# does not pay for these schemas.
class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True, extra="forbid")


class Metadata(_Strict):
    user_id: str | None = None


class ToolChoice(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Tool(_Strict):
    """A custom (client) tool. Server tools (``web_search_…``) carry another ``type``."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    strict: bool | None = None
    cache_control: Any = None  # hint
    defer_loading: bool | None = None  # hint
    eager_input_streaming: bool | None = None  # arguments are streamed as they arrive anyway


class CountTokensRequest(_Strict):
    """``POST /v1/messages/count_tokens``: what a message would be, minus generation fields."""

    model: str
    messages: list[Any]
    system: str | list[Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice | None = None
    # hints, as on /v1/messages
    thinking: Any = None
    context_management: Any = None
    output_config: Any = None
    cache_control: Any = None
    service_tier: Any = None
    # refused by name when set
    container: Any = None
    mcp_servers: Any = None
    inference_geo: Any = None
    speed: Any = None
    fallbacks: Any = None


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages``."""

    max_tokens: int
    stop_sequences: list[str] | None = None
    temperature: float | int | None = None
    top_p: float | int | None = None
    top_k: int | None = None
    metadata: Metadata | None = None
    stream: bool | None = None


# Block fields: the types the gateway reads, per block type (others are refused by type).
class TextBlock(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True, extra="ignore")

    type: Literal["text"]
    text: str
    cache_control: Any = None


class ToolUseBlock(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True, extra="ignore")

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: Any = None


class ToolResultBlock(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True, extra="ignore")

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[Any] | None = None
    is_error: bool | None = None
    cache_control: Any = None
