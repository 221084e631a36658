"""Function tools on ``/v1/responses``: the request's ``tools`` and ``tool_choice`` checked and
restated in chat completions' terms, for models whose backend relays tools to an OpenAI server.

| Responses                                          | Chat completions (relayed)                     |
|----------------------------------------------------|------------------------------------------------|
| ``{type: function, name, description, parameters, strict}`` | ``{type: function, function: {name, …}}`` |
| ``tool_choice: auto / none / required``            | the same string                                |
| ``tool_choice: {type: function, name}``            | ``{type: function, function: {name}}``         |
| ``parallel_tool_calls``                            | ``parallel_tool_calls``                        |

Built-in tools (``web_search``, ``file_search``, ``mcp``, …) and the other ``tool_choice``
kinds are refused by ``param``; so are tools on a model whose prompt template cannot call them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_gateway.core.errors import GatewayError
from llm_gateway.dialects.openai.mapping import invalid
from llm_gateway.dialects.openai.responses.schemas import ResponsesRequest

_MODES = ("auto", "none", "required")
# A function tool's optional fields and the JSON type each must have.
_OPTIONAL: dict[str, tuple[type, str]] = {
    "description": (str, "a string"),
    "parameters": (dict, "an object"),
    "strict": (bool, "a boolean"),
}


@dataclass(frozen=True, slots=True)
class Tools:
    """The request's function tools as the response echoes them, and its ``tool_choice``."""

    functions: list[dict[str, Any]]
    choice: str | dict[str, Any]

    def chat_fields(self, parallel: bool | None) -> dict[str, Any]:
        """``tools``, ``tool_choice`` and ``parallel_tool_calls`` of the relayed chat request
        (nothing when the request has no tools)."""
        if not self.functions:
            return {}
        tools = [
            {"type": "function", "function": {k: v for k, v in f.items() if k != "type"}}
            for f in ({k: v for k, v in f.items() if v is not None} for f in self.functions)
        ]
        choice = self.choice
        if isinstance(choice, dict):
            choice = {"type": "function", "function": {"name": choice["name"]}}
        fields: dict[str, Any] = {"tools": tools, "tool_choice": choice}
        if parallel is not None:
            fields["parallel_tool_calls"] = parallel
        return fields


def _function(tool: Any, index: int) -> dict[str, Any]:
    where = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise invalid(f"Invalid type for '{where}': expected an object.", where)
    kind = tool.get("type")
    if kind != "function":
        raise invalid(
            f"Tools of type '{kind}' are not supported: this gateway serves function tools "
            "only (no built-in tools).",
            f"{where}.type",
        )
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"Missing required parameter: '{where}.name'.", f"{where}.name")
    for field, (kind_of, described) in _OPTIONAL.items():
        value = tool.get(field)
        if value is not None and not isinstance(value, kind_of):
            raise invalid(
                f"Invalid type for '{where}.{field}': expected {described}.", f"{where}.{field}"
            )
    # the key order OpenAI echoes a function tool in
    return {
        "type": "function",
        "description": tool.get("description"),
        "name": name,
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def _choice(value: Any, names: set[str]) -> str | dict[str, Any]:
    if value is None:
        return "auto"
    if isinstance(value, str):
        if value not in _MODES:
            raise invalid(
                f"Invalid value for 'tool_choice': '{value}'; use auto, none, required or "
                '{"type": "function", "name": …}.',
                "tool_choice",
            )
        if value == "required" and not names:
            raise invalid(
                "`tool_choice: required` needs at least one tool in `tools`.", "tool_choice"
            )
        return value
    if not isinstance(value, dict):
        raise invalid(
            "Invalid type for 'tool_choice': expected a string or an object.", "tool_choice"
        )
    if value.get("type") != "function":
        raise invalid(
            f"`tool_choice` of type '{value.get('type')}' is not supported: name a function "
            '({"type": "function", "name": …}) or use auto, none or required.',
            "tool_choice.type",
        )
    name = value.get("name")
    if not isinstance(name, str):
        raise invalid("Missing required parameter: 'tool_choice.name'.", "tool_choice.name")
    if name not in names:
        raise invalid(f"Tool choice '{name}' is not a function in `tools`.", "tool_choice.name")
    return {"type": "function", "name": name}


def read_tools(req: ResponsesRequest, model: str, relays_tools: bool) -> Tools:
    """The request's tools, checked; 400 by ``param`` for what cannot run on this model."""
    functions = [_function(tool, i) for i, tool in enumerate(req.tools or ())]
    if functions and not relays_tools:
        raise tools_unsupported(model, "tools")
    choice = _choice(req.tool_choice, {f["name"] for f in functions})
    return Tools(functions, choice)


def tools_unsupported(model: str, param: str) -> GatewayError:
    """Tools on a model whose prompt goes through the gateway's template (no tool calling)."""
    return invalid(
        f"Tools are not supported by model '{model}': its prompt template has no tool calling. "
        "Function tools need a model served by an OpenAI server (`backend: openai`: vLLM, "
        "SGLang, LMI).",
        param,
    )
