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

import json
import math
import re
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from llm_gateway.core.errors import GatewayError, request_error
from llm_gateway.core.parameters import RUST_TYPES

M = TypeVar("M", bound=BaseModel)

DESERIALIZE_PREFIX = "Failed to deserialize the JSON body into the target type: "


PARSE_PREFIX = "Failed to parse the request body as JSON: "
# serde_json's recursion limit: the 128th nested array or object is refused.
MAX_DEPTH = 128
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len({key for key, _ in pairs}) != len(pairs):
        raise _Duplicate
    return None  # the values are orjson's: this pass only looks for repeated keys


def _shape(data: Any) -> tuple[int, int, int]:
    """``(keys, colons, depth)`` of parsed JSON: how many keys its objects hold, how many
    colons its strings (keys and values) hold, and how deep its arrays and objects nest."""
    keys = colons = deepest = 0
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > deepest:
            deepest = depth
        if type(value) is dict:  # orjson makes exactly dict, list and str
            keys += len(value)
            colons += "".join(value).count(":")
            value = value.values()
        for child in value:
            kind = type(child)
            if kind is str:
                colons += child.count(":")
            elif kind is dict or kind is list:
                pending.append((child, depth + 1))
    return keys, colons, deepest


def _repeats_a_key(body: bytes, keys: int, colons: int) -> bool:
    """Whether an object in ``body`` repeats a key (parsing kept only the last value).

    Each key in a body is followed by one colon and every other colon lies in a string, so the
    body's colons minus its strings' colons count the keys as written; a repeated key makes
    that more than the parsed objects hold. Only a body that writes a colon as an escape
    (``\\u003a``: a colon in the parsed string, not in the bytes) is parsed again, keys in
    order, to look."""
    if b"\\u003a" not in body and b"\\u003A" not in body:
        return body.count(b":") - colons != keys
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except _Duplicate:
        return True
    return False


def loads(body: bytes) -> Any:
    """Parse a JSON body as strictly as TGI's serde_json: invalid JSON or UTF-8 and nesting at
    its recursion limit are TGI's 400; a key repeated in one object is the 422 serde gives for
    a repeated field. Both extra checks come from one walk of the parsed value (no second
    parse); the one that finds the place runs only on a refusal.

    >>> loads(b'{"inputs": "a", "inputs": "b"}')
    Traceback (most recent call last):
    ...
    llm_gateway.core.errors.GatewayError: Failed to deserialize the JSON body into the target type: duplicate field `inputs` at line 1 column 24
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):  # orjson's own limit (1024) is serde's too
            raise _refusal(body.decode(errors="replace")) from None
        raise request_error(f"{PARSE_PREFIX}{exc}", status=400) from None
    if not isinstance(data, dict | list):
        return data
    keys, colons, depth = _shape(data)
    if depth >= MAX_DEPTH or _repeats_a_key(body, keys, colons):
        raise _refusal(body.decode())
    return data


def _refusal(text: str) -> GatewayError:
    """The error for the first repeated key or over-deep level in ``text``, placed as serde_json
    places it (line and column of the offending bracket, or of a repeated key's closing quote)."""
    # Per open container: "{" or "[", the keys seen (objects), the current key or index.
    stack: list[tuple[str, set[str], list[str | int]]] = []
    expect_key = False
    line, line_start, i, n = 1, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            match = _STRING.match(text, i)
            end = match.end() if match else n
            if expect_key and stack:
                kind, keys, current = stack[-1]
                key = str(orjson.loads(text[i:end]))
                if key in keys:
                    path = ".".join(str(entry[2][0]) for entry in stack[:-1])
                    where = f"{path}: " if path else ""
                    return request_error(
                        f"{DESERIALIZE_PREFIX}{where}duplicate field `{key}` at line {line} "
                        f"column {end - line_start}",
                        status=422,
                        param=key,
                    )
                keys.add(key)
                current[0] = key
                expect_key = False
            i = end
            continue
        if c in "[{":
            if len(stack) + 1 >= MAX_DEPTH:
                return request_error(
                    f"{PARSE_PREFIX}recursion limit exceeded at line {line} column "
                    f"{i - line_start + 1}",
                    status=400,
                )
            stack.append((c, set(), [0]))
            expect_key = c == "{"
        elif c in "]}":
            stack.pop()
            expect_key = False
        elif c == "," and stack:
            kind, _, current = stack[-1]
            if kind == "{":
                expect_key = True
            else:
                current[0] = int(current[0]) + 1
        elif c == "\n":
            line, line_start = line + 1, i + 1
        i += 1
    return request_error(f"{PARSE_PREFIX}the body repeats a key or nests too deeply", status=400)


def rust_float(value: float) -> str:
    """A float as serde prints it (Rust's shortest digits, never an exponent, always a point).

    >>> rust_float(2.0**64), rust_float(1e-7), rust_float(0.5)
    ('18446744073709552000.0', '0.0000001', '0.5')
    """
    if not math.isfinite(value):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else f"{text}.0"


def describe(value: Any) -> str:
    """A JSON value as serde names it in ``invalid type`` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{rust_float(value)}`"
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
