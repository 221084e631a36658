"""Request bodies to typed requests, with errors phrased as TGI's JSON extractor phrases them.

TGI rejects unreadable bodies before its own code runs: a syntax error is 400
``Failed to parse the request body as JSON: …`` and a wrong type is 422 ``Failed to deserialize
the JSON body into the target type: <path>: <serde message>``. The gateway keeps those statuses
and phrases, but answers JSON with an ``error`` key (clients read ``payload["error"]``).

>>> from llm_gateway.core.parameters import GenerateRequest
>>> decode(GenerateRequest, {"inputs": "x", "parameters": {"top_k": "5"}})
Traceback (most recent call last):
...
llm_gateway.core.errors.GatewayError: Failed to deserialize the JSON body into the target type: parameters.top_k: invalid type: string "5", expected i32
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from llm_gateway.core.errors import GatewayError, request_error
from llm_gateway.core.parameters import RUST_TYPES

M = TypeVar("M", bound=BaseModel)

DESERIALIZE_PREFIX = "Failed to deserialize the JSON body into the target type: "


def loads(body: bytes) -> Any:
    """Parse a JSON body; invalid JSON or UTF-8 is TGI's 400."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise request_error(
            f"Failed to parse the request body as JSON: {exc}", status=400
        ) from None


def describe(value: Any) -> str:
    """A JSON value as serde names it in ``invalid type`` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {orjson.dumps(value).decode()}"
    if isinstance(value, list):
        return "a sequence"
    return "a map"


def _phrase(error: dict[str, Any], type_names: dict[str, str]) -> tuple[str, str]:
    """One pydantic error as ``(path, serde-like message)``."""
    loc = [str(part) for part in error["loc"]]
    # Drop pydantic's union/branch markers such as "function-after[...]".
    loc = [part for part in loc if "[" not in part]
    path = ".".join(loc)
    field = next((part for part in reversed(loc) if not part.isdigit()), "")
    expected = type_names.get(field, "a valid value")
    value = error.get("input")
    kind = error["type"]
    if kind == "missing":
        return path, f"missing field `{field}`"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return path, f"invalid value: {describe(value)}, expected {expected}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return path, f"invalid type: {describe(value)}, expected {expected}"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "int_from_float":
        return path, f"invalid type: {describe(value)}, expected {expected}"
    if kind == "literal_error":
        return path, f"unknown variant {describe(value)}, {error['msg'].lower()}"
    return path, error["msg"]


def decode(model: type[M], data: Any, *, type_names: dict[str, str] | None = None) -> M:
    """Validate parsed JSON into ``model``; the first problem becomes TGI's 422 message."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise deserialize_error(exc, type_names or RUST_TYPES) from None


def deserialize_error(exc: PydanticValidationError, type_names: dict[str, str]) -> GatewayError:
    first = exc.errors(include_url=False)[0]
    path, message = _phrase(dict(first), type_names)
    text = f"{path}: {message}" if path else message
    param = path.split(".")[-1] if path else None
    return request_error(DESERIALIZE_PREFIX + text, status=422, param=param)
