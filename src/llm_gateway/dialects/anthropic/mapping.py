"""A Messages request to what the core takes: a conversation for a prompt template, or an
OpenAI chat request for backends that take one (``backend: openai``, ``tgi-messages``).

| Anthropic                                 | prompt template (TGI)      | chat backend (vLLM, SGLang, LMI)        |
|-------------------------------------------|----------------------------|-----------------------------------------|
| ``system`` (string or text blocks)        | a first ``system`` message | a first ``system`` message              |
| ``role: "system"`` inside ``messages``    | folded into that system text, in order                               |
| text blocks of one message                | joined with a blank line   | joined with a blank line                |
| consecutive turns of one role             | one turn (Anthropic combines them)                                   |
| ``tool_use`` / ``tool_result`` / ``tools``| 400 (no tool format)       | ``tool_calls`` / ``tool`` messages / functions |
| ``tool_result.is_error: true``            | —                          | content prefixed with ``Error: ``       |
| ``tool_choice`` auto / any / tool / none  | 400 with tools             | auto / required / the function / none   |
| ``disable_parallel_tool_use``             | —                          | ``parallel_tool_calls: false``          |
| ``max_tokens``                            | ``max_new_tokens``, clamped to the model's limits                    |
| ``stop_sequences``                        | ``stop`` (+ template stops)| ``stop``                                |
| ``temperature`` 0 / ``top_p`` 0           | greedy                     | as sent                                 |
| neither                                   | sampling (Anthropic's default temperature is 1.0) | the container's default |
| ``temperature``, ``top_p``, ``top_k``     | the same TGI parameters    | the same fields (vLLM and SGLang read ``top_k``) |
| ``thinking`` blocks in history            | dropped (Anthropic drops earlier turns' thinking too)                |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from llm_gateway.core.decoding import loads
from llm_gateway.core.errors import GatewayError, request_error
from llm_gateway.core.parameters import I32_MAX, GenerateParameters, Limits
from llm_gateway.dialects.anthropic.schemas import (
    HINTS,
    REFUSED,
    CountTokensRequest,
    MessagesRequest,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from llm_gateway.templates import Message

# Blocks that carry what a text model cannot read (images, documents) or that only Anthropic's
# own servers produce (server tools): refused by type.
_BLOCKS: dict[str, type[TextBlock | ToolUseBlock | ToolResultBlock]] = {
    "text": TextBlock,
    "tool_use": ToolUseBlock,
    "tool_result": ToolResultBlock,
}
_DROPPED = frozenset({"thinking", "redacted_thinking"})
JOIN = "\n\n"
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=CountTokensRequest)


def invalid(message: str, param: str | None = None) -> GatewayError:
    return request_error(message, status=400, param=param)


def _where(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and "[" in p))


def _validated(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = _where(first["loc"])
        path = f"{prefix}.{where}" if prefix and where else prefix or where
        raise invalid(f"{path}: {first['msg']}" if path else first["msg"], path or None) from None


def parse(model: type[R], body: bytes) -> R:
    """The request, or 400 naming the first wrong field by its path (Anthropic's wording)."""
    data = loads(body)
    if not isinstance(data, dict):
        raise invalid("Input should be a valid dictionary or object to extract fields from")
    req = _validated(model, data)
    for name in REFUSED:
        if getattr(req, name) is not None:
            raise invalid(f"{name}: not supported by this gateway's models", name)
    return req


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    text: str
    is_error: bool


Part = str | ToolCall | ToolResult


@dataclass(slots=True)
class Turn:
    role: str  # user | assistant
    parts: list[Part] = field(default_factory=list)

    @property
    def text(self) -> str:
        return JOIN.join(p for p in self.parts if isinstance(p, str))


@dataclass(slots=True)
class Conversation:
    """The request's conversation, read once: what both backends' mappings start from."""

    system: str
    turns: list[Turn]
    tools: list[Tool]
    hints: list[str]  # the hints the request carried, in order

    @property
    def has_tools(self) -> bool:
        return bool(self.tools) or any(
            not isinstance(p, str) for turn in self.turns for p in turn.parts
        )

    def text(self) -> str:
        """Everything the model reads, for size checks and estimates."""
        pieces = [self.system]
        for turn in self.turns:
            for part in turn.parts:
                if isinstance(part, str):
                    pieces.append(part)
                elif isinstance(part, ToolCall):
                    pieces.append(part.name + orjson.dumps(part.input).decode())
                else:
                    pieces.append(part.text)
        pieces += [orjson.dumps(t.model_dump(exclude_none=True)).decode() for t in self.tools]
        return " ".join(p for p in pieces if p)


def _hint(hints: list[str], name: str) -> None:
    if name not in hints:
        hints.append(name)


def _text_blocks(value: Any, where: str, hints: list[str]) -> str:
    """``system`` or a ``tool_result``'s content: a string or text blocks."""
    if isinstance(value, str):
        return value
    texts = []
    for index, block in enumerate(value or ()):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind != "text":
            raise invalid(
                f"{where}.{index}.type: content blocks of type '{kind}' are not supported here; "
                "use text blocks",
                f"{where}.{index}.type",
            )
        text = _validated(TextBlock, block, f"{where}.{index}")
        if text.cache_control is not None:
            _hint(hints, "cache_control")
        texts.append(text.text)
    return JOIN.join(texts)


def _part(block: Any, where: str, role: str, hints: list[str]) -> Part | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind in _DROPPED:
        return None
    model = _BLOCKS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise invalid(
            f"{where}.type: content blocks of type '{kind}' are not supported by this "
            "gateway's models (text, tool_use and tool_result are)",
            f"{where}.type",
        )
    parsed: TextBlock | ToolUseBlock | ToolResultBlock = _validated(model, block, where)
    if parsed.cache_control is not None:
        _hint(hints, "cache_control")
    if isinstance(parsed, TextBlock):
        if not parsed.text and role != "assistant":
            raise invalid(f"{where}: text content blocks must be non-empty", f"{where}.text")
        return parsed.text
    if isinstance(parsed, ToolUseBlock):
        if role != "assistant":
            raise invalid(f"{where}: tool_use blocks belong to assistant messages", where)
        return ToolCall(parsed.id, parsed.name, parsed.input)
    if role != "user":
        raise invalid(f"{where}: tool_result blocks belong to user messages", where)
    text = _text_blocks(parsed.content, f"{where}.content", hints)
    return ToolResult(parsed.tool_use_id, text, bool(parsed.is_error))


def conversation(req: CountTokensRequest, max_messages: int) -> Conversation:
    """The request's system text, turns and tools; 400 at the first block that cannot be read."""
    hints = [name for name in HINTS if getattr(req, name) is not None]
    systems = [_text_blocks(req.system, "system", hints)] if req.system else []
    if len(req.messages) > max_messages:
        raise invalid(
            f"messages: this gateway accepts at most {max_messages} messages; "
            f"got {len(req.messages)}",
            "messages",
        )
    turns: list[Turn] = []
    for index, message in enumerate(req.messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise invalid(f"{where}: Input should be a valid dictionary", where)
        role, content = message.get("role"), message.get("content")
        extra = set(message) - {"role", "content"}
        if extra:
            name = sorted(extra)[0]
            raise invalid(f"{where}.{name}: Extra inputs are not permitted", f"{where}.{name}")
        if role not in ("user", "assistant", "system"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'", f"{where}.role")
        if not isinstance(content, str | list):
            raise invalid(f"{where}.content: Input should be a valid string or list", where)
        if role == "system":  # Claude Code's mid-conversation system text: folded in, in order
            systems.append(_text_blocks(content, f"{where}.content", hints))
            continue
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        parts = [
            part
            for block_index, block in enumerate(blocks)
            if (part := _part(block, f"{where}.content.{block_index}", role, hints)) is not None
        ]
        if turns and turns[-1].role == role:
            turns[-1].parts += parts  # Anthropic combines consecutive turns of one role
        else:
            turns.append(Turn(role, parts))
    if not turns:
        raise invalid("messages: at least one message is required", "messages")
    if turns[-1].role == "assistant":
        raise invalid(
            "messages: a final assistant message (prefill) is not supported by this gateway's "
            "models; end with a user message",
            "messages",
        )
    tools = []
    for index, raw in enumerate(req.tools or ()):
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in (None, "custom"):
            raise invalid(
                f"tools.{index}.type: server tools ('{kind}') run on Anthropic's servers and "
                "are not available here; declare client tools with input_schema",
                f"tools.{index}.type",
            )
        tool = _validated(Tool, raw, f"tools.{index}")
        if tool.cache_control is not None:
            _hint(hints, "cache_control")
        if tool.defer_loading is not None:
            _hint(hints, "defer_loading")
        tools.append(tool)
    choice = req.tool_choice
    if choice is not None and choice.type == "tool":
        if not choice.name or choice.name not in {t.name for t in tools}:
            raise invalid(
                f"tool_choice.name: '{choice.name}' is not one of the request's tools",
                "tool_choice.name",
            )
    return Conversation(JOIN.join(s for s in systems if s), turns, tools, hints)


# -- prompt templates (TGI) ---------------------------------------------------------------


def template_messages(conv: Conversation, model: str) -> list[Message]:
    if conv.has_tools:
        raise invalid(
            f"tools: model '{model}' renders a prompt template, which has no tool format; "
            "tools need a model with `backend: openai`",
            "tools",
        )
    head = [Message("system", conv.system)] if conv.system else []
    return head + [Message(turn.role, turn.text) for turn in conv.turns]


def stop_sequences(req: MessagesRequest, limits: Limits) -> tuple[str, ...]:
    stops = tuple(req.stop_sequences or ())
    if len(stops) > limits.max_stop_sequences:
        raise invalid(
            f"stop_sequences: this model accepts at most {limits.max_stop_sequences} "
            f"stop sequences; got {len(stops)}",
            "stop_sequences",
        )
    if any(not s for s in stops):
        raise invalid("stop_sequences: stop sequences must be non-empty", "stop_sequences")
    return stops


def check_sampling(req: MessagesRequest) -> None:
    """Anthropic's ranges (temperature 0–1, top_p 0–1, top_k ≥ 1, max_tokens ≥ 1)."""
    if req.max_tokens < 1:
        raise invalid("max_tokens: Input should be greater than or equal to 1", "max_tokens")
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is not None and not 0 <= value <= 1:
            raise invalid(f"{name}: Input should be between 0 and 1", name)
    if req.top_k is not None and req.top_k < 1:
        raise invalid("top_k: Input should be greater than or equal to 1", "top_k")
    if req.top_k is not None and req.top_k > I32_MAX:  # TGI reads it as an i32
        raise invalid(f"top_k: Input should be less than or equal to {I32_MAX}", "top_k")


def clamp(max_tokens: int, prompt_tokens: int, limits: Limits) -> int:
    """``max_tokens`` within what the model's limits leave after the prompt (at least 1).

    >>> clamp(32000, 48, Limits(max_input_tokens=1024, max_total_tokens=2048))
    2000
    >>> clamp(100, 48, Limits())
    100
    """
    return max(1, min(max_tokens, limits.max_total_tokens - prompt_tokens))


def generate_parameters(
    req: MessagesRequest, max_new_tokens: int, stops: list[str]
) -> GenerateParameters:
    greedy = req.temperature == 0 or req.top_p == 0
    return GenerateParameters(
        max_new_tokens=max_new_tokens,
        temperature=None if greedy else req.temperature,
        top_p=None if greedy or req.top_p in (None, 1) else req.top_p,
        top_k=None if greedy else req.top_k,
        do_sample=not greedy,  # Anthropic samples by default (temperature 1.0)
        stop=stops or None,
        details=True,
    )


# -- chat backends (OpenAI's chat completions) ---------------------------------------------


def _chat_messages(conv: Conversation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": conv.system}] if conv.system else []
    for turn in conv.turns:
        if turn.role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
            calls = [p for p in turn.parts if isinstance(p, ToolCall)]
            if calls:
                message["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": orjson.dumps(c.input).decode()},
                    }
                    for c in calls
                ]
            out.append(message)
            continue
        # Tool results come first, as OpenAI wants them right after the assistant's calls.
        for part in turn.parts:
            if isinstance(part, ToolResult):
                text = f"Error: {part.text}" if part.is_error else part.text
                out.append({"role": "tool", "tool_call_id": part.tool_use_id, "content": text})
        if turn.text:
            out.append({"role": "user", "content": turn.text})
    return out


def _tool_choice(req: CountTokensRequest) -> Any:
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.type == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def chat_body(req: MessagesRequest, conv: Conversation, max_tokens: int) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": _chat_messages(conv), "max_tokens": max_tokens}
    for name in ("temperature", "top_p", "top_k"):
        if getattr(req, name) is not None:
            body[name] = getattr(req, name)
    if req.stop_sequences:
        body["stop"] = list(req.stop_sequences)
    if conv.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.input_schema,
                    **({"strict": t.strict} if t.strict is not None else {}),
                },
            }
            for t in conv.tools
        ]
        choice = _tool_choice(req)
        if choice is not None:
            body["tool_choice"] = choice
        if req.tool_choice is not None and req.tool_choice.disable_parallel_tool_use:
            body["parallel_tool_calls"] = False
    return body
