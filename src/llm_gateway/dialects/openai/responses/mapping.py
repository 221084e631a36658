"""A Responses request to what the chat path already knows: template messages and ``Sampling``.

| Responses                                   | TGI                                                |
|---------------------------------------------|----------------------------------------------------|
| ``instructions``                            | a first ``system`` message of the model's template |
| ``input`` (string)                          | one ``user`` message                               |
| ``input`` (message items)                   | messages; ``developer`` is ``system``              |
| ``max_output_tokens``                       | ``max_new_tokens``                                 |
| ``temperature``, ``top_p``, ``stop``        | as for chat completions (greedy at 0, …)           |
| ``text.format: json_schema``                | ``grammar: {type: json, value: schema}``           |
| ``function_call`` / ``function_call_output`` items | assistant ``tool_calls`` / ``tool`` messages (models that take tools) |

The sampling rules are chat completions' own: the request is restated as a
:class:`ChatCompletionRequest` and mapped by :func:`chat_sampling`, so both APIs validate and
map the same way. Stateful features are refused here, each by its ``param``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from llm_gateway.core.decoding import deserialize_error, loads
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.parameters import Limits
from llm_gateway.dialects.openai.mapping import Sampling, chat_sampling, invalid
from llm_gateway.dialects.openai.responses.schemas import RESPONSES_TYPES, ResponsesRequest
from llm_gateway.dialects.openai.schemas import ChatCompletionRequest, ResponseFormat
from llm_gateway.templates import Message

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# Content part types whose text is read, by role.
TEXT_PARTS = {"input_text"}
ASSISTANT_TEXT_PARTS = {"input_text", "output_text"}

# Chat-completions parameter names (in errors of the shared rules) -> the Responses name.
PARAMS = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "max_new_tokens": "max_output_tokens",
    "messages": "input",
    "inputs": "input",
    "response_format": "text.format",
    "grammar": "text.format",
}


def param_path(loc: Sequence[str | int]) -> str:
    """Pydantic's location as OpenAI writes a ``param``.

    >>> param_path(("input", 2, "content", 0, "type"))
    'input[2].content[0].type'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" not in part:  # pydantic's union branch markers
            out += f".{part}" if out else part
    return out


def parse(body: bytes) -> ResponsesRequest:
    """The request, or 400 naming the first wrong field by its full path."""
    data = loads(body)
    try:
        return ResponsesRequest.model_validate(data)
    except ValidationError as exc:
        error = deserialize_error(exc, RESPONSES_TYPES)
        first = exc.errors(include_url=False)[0]
        error.param = param_path(first["loc"]) or None
        raise error from None


def _unsupported(param: str, what: str) -> GatewayError:
    return invalid(f"{what} is not supported by this gateway (it is stateless).", param)


def refuse_stateful(req: ResponsesRequest) -> None:
    """Features that need stored state, built-in tools or background work: 400 by ``param``."""
    if req.previous_response_id is not None:
        raise _unsupported(
            "previous_response_id",
            "`previous_response_id` (nothing is stored: send the whole conversation in `input`)",
        )
    if req.conversation is not None:
        raise _unsupported("conversation", "`conversation`")
    if req.background:
        raise _unsupported("background", "`background: true`")
    if req.prompt is not None:
        raise _unsupported("prompt", "`prompt` (stored prompt templates)")
    if req.include and "message.output_text.logprobs" in req.include:
        raise invalid("Log probabilities are not supported on /v1/responses.", "include")


def _text_of(content: Any, role: str, where: str, field: str = "content") -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(
            f"Invalid type for '{where}.{field}': expected a string or an array of content parts.",
            f"{where}.{field}",
        )
    allowed = ASSISTANT_TEXT_PARTS if role == "assistant" else TEXT_PARTS
    texts = []
    for index, part in enumerate(content):
        param = f"{where}.{field}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise invalid(
                f"Content parts of type '{kind}' are not supported; "
                f"use {' or '.join(sorted(allowed))}.",
                f"{param}.type",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise invalid(f"Invalid type for '{param}.text': expected a string.", f"{param}.text")
        texts.append(text)
    return "".join(texts)


def to_messages(req: ResponsesRequest, max_messages: int, tools: bool) -> list[dict[str, Any]]:
    """``instructions`` then ``input`` as chat messages. ``tools``: the model takes tool
    calls, so ``function_call`` items (the client's copy of an earlier answer's calls) become
    an assistant message's ``tool_calls`` and ``function_call_output`` items ``tool`` messages;
    otherwise those items are refused."""
    if req.input is None:
        raise invalid("Missing required parameter: 'input'.", "input")
    messages = [{"role": "system", "content": req.instructions}] if req.instructions else []
    if isinstance(req.input, str):
        return [*messages, {"role": "user", "content": req.input}]
    if not isinstance(req.input, list):
        raise invalid(
            "Invalid type for 'input': expected a string or an array of input items.", "input"
        )
    if not req.input:
        raise invalid("`input` must not be an empty array.", "input")
    if len(req.input) > max_messages:
        raise invalid(
            f"This gateway accepts at most {max_messages} input items per request; "
            f"got {len(req.input)}.",
            "input",
        )
    for index, item in enumerate(req.input):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid type for '{where}': expected an input item object.", where)
        kind = item.get("type", "message")
        if tools and kind == "function_call":
            call_message(messages, function_call(item, where))
        elif tools and kind == "function_call_output":
            messages.append(tool_result(item, where))
        elif kind != "message" or "role" not in item:
            takes = "message, function_call and function_call_output" if tools else "message"
            raise invalid(
                f"Input items of type '{kind}' are not supported: this gateway takes {takes} "
                "items only" + ("." if tools else " (tool items need a model that takes tools)."),
                f"{where}.type" if kind != "message" else f"{where}.role",
            )
        else:
            role = ROLES.get(item["role"]) if isinstance(item["role"], str) else None
            if role is None:
                raise invalid(
                    f"Invalid value for '{where}.role': {item['role']!r}; "
                    "use user, assistant, system or developer.",
                    f"{where}.role",
                )
            messages.append({"role": role, "content": _text_of(item.get("content"), role, where)})
    return messages


def _string(item: dict[str, Any], field: str, where: str) -> str:
    value = item.get(field)
    if not isinstance(value, str):
        raise invalid(
            f"Missing required parameter: '{where}.{field}' (a string).", f"{where}.{field}"
        )
    return value


def function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    """A ``function_call`` input item as a chat tool call (its ``call_id`` is the call's id)."""
    return {
        "id": _string(item, "call_id", where),
        "type": "function",
        "function": {
            "name": _string(item, "name", where),
            "arguments": _string(item, "arguments", where),
        },
    }


def call_message(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """Calls made in one turn are one assistant message: a call joins the assistant message
    just before it (its text, or the turn's earlier calls)."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last["content"]:
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def tool_result(item: dict[str, Any], where: str) -> dict[str, Any]:
    """A ``function_call_output`` item as a ``tool`` message; ``output`` a string or text parts."""
    call_id = _string(item, "call_id", where)
    output = item.get("output")
    if isinstance(output, list):
        output = _text_of(output, "tool", where, field="output")
    elif not isinstance(output, str):
        raise invalid(
            f"Invalid type for '{where}.output': expected a string or an array of input_text "
            "parts.",
            f"{where}.output",
        )
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def template_messages(messages: list[dict[str, Any]]) -> list[Message]:
    """Chat messages without tool calls (``to_messages`` with ``tools=False``) for a template."""
    return [Message(m["role"], m["content"]) for m in messages]


def _response_format(req: ResponsesRequest) -> ResponseFormat | None:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        raise invalid(
            "`text.format: json_object` is not supported; use `json_schema` with a schema.",
            "text.format",
        )
    if not fmt.name:
        raise invalid("Missing required parameter: 'text.format.name'.", "text.format.name")
    if fmt.schema_ is None:
        raise invalid("Missing required parameter: 'text.format.schema'.", "text.format.schema")
    return ResponseFormat(type="json_schema", json_schema={"name": fmt.name, "schema": fmt.schema_})


def _stop(value: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise invalid("Invalid type for 'stop': expected a string or an array of strings.", "stop")


def as_chat(req: ResponsesRequest) -> ChatCompletionRequest:
    """The request restated in chat completions' terms (messages aside)."""
    if req.max_output_tokens is not None and req.max_output_tokens < 1:
        raise invalid(
            f"Invalid 'max_output_tokens': {req.max_output_tokens} must be at least 1.",
            "max_output_tokens",
        )
    return ChatCompletionRequest.model_construct(
        model=req.model,
        messages=[],
        max_completion_tokens=req.max_output_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        stop=_stop(req.stop),
        stream=req.stream,
        response_format=_response_format(req),
    )


def rename_param(param: str | None) -> str | None:
    """A chat completions (or TGI) parameter name as the Responses API names it."""
    return PARAMS.get(param or "", param)


def sampling(req: ResponsesRequest, limits: Limits) -> Sampling:
    """Chat completions' mapping and range checks; errors name the Responses parameter."""
    chat = as_chat(req)
    try:
        return chat_sampling(chat, limits)
    except GatewayError as error:
        error.param = rename_param(error.param)
        raise


def chat_body(
    req: ResponsesRequest, messages: list[dict[str, Any]], tools: dict[str, Any]
) -> dict[str, Any]:
    """The chat request for backends that take one as it is (``backend.chat``); ``tools``:
    its ``tools``/``tool_choice``/``parallel_tool_calls`` (:meth:`.tools.Tools.chat_fields`)."""
    chat = as_chat(req)
    body: dict[str, Any] = {"model": req.model, "messages": messages, **tools}
    fields = chat.model_dump(
        include={"max_completion_tokens", "temperature", "top_p", "stop"}, exclude_none=True
    )
    if "max_completion_tokens" in fields:
        body["max_tokens"] = fields.pop("max_completion_tokens")
    body.update(fields)
    if chat.response_format is not None:
        body["response_format"] = chat.response_format.model_dump(exclude_none=True)
    return body
