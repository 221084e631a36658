"""The error bodies of OpenAI-style containers, in the core's terms.

Four shapes reach the gateway, before a stream (wrapped by SageMaker's ModelError, with the
container's status) or inside one (a ``data: {"error": …}`` event or JSON line, HTTP 200 already
sent):

- vLLM ≥ 0.10.1: ``{"error": {"message", "type", "param", "code"}}``;
- older vLLM and SGLang: flat ``{"object": "error", "message", "type", "param", "code"}``;
- LMI (DJL Serving): ``{"error": "Input parsing failed: …", "code": 424}``, and since v16 vLLM's
  nested error stringified into ``{"error": "error=ErrorInfo(message='…', …, code=400)",
  "code": 500}``;
- DJL Serving's own ``{"code": 503, "type": "…", "message": "…"}`` (queue full, bad request).

The container's ``code`` decides: 400/413/422 are the client's request (422 ``validation``, the
container's message kept), 429/503 are overload (429 ``overloaded``), 424 ``Input parsing
failed`` is a request LMI could not read (422). Other statuses before a stream are left to the
transport (``None``), which answers generically and logs the body: a 500's message may carry
internals. Inside a stream, a short one-line message is kept (as TGI's own error events are).

>>> container_error(400, '{"error":{"message":"bad top_p","type":"BadRequestError","param":null,"code":400}}')
GatewayError(422, 'validation', 'bad top_p')
>>> container_error(424, '{"error":"Input parsing failed: no prompt","code":424}')
GatewayError(422, 'validation', 'Input parsing failed: no prompt')
>>> container_error(500, '{"error":"error=ErrorInfo(message=\\'too long\\', type=\\'BadRequestError\\', param=None, code=400)","code":500}')
GatewayError(422, 'validation', 'too long')
>>> container_error(500, '{"object":"error","message":"Traceback …","type":"x","param":null,"code":500}') is None
True
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from llm_gateway.core.errors import ErrorKind, GatewayError, overloaded_error

_CLIENT_CODES = frozenset({400, 413, 422})
_OVERLOAD_CODES = frozenset({429, 503})
_MAX_MESSAGE = 300
# LMI v16+ formats vLLM's nested ErrorResponse with str(): ErrorInfo(message='…', …, code=400).
_ERROR_INFO = re.compile(
    r"""ErrorInfo\(message=(?P<q>['"])(?P<message>.*?)(?P=q),.*\bcode=(?P<code>\d+)\)""", re.S
)


def _fields(data: dict[str, Any], status: int | None) -> tuple[str, int | None, str | None] | None:
    """(message, code, param) of any of the shapes, or None when it is none of them."""
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return _described(error, status)
    if isinstance(error, str):  # LMI's {"error": "...", "code": N}
        code = data.get("code")
        match = _ERROR_INFO.search(error)
        if match:
            return match["message"], int(match["code"]), None
        return error, code if isinstance(code, int) else status, None
    if isinstance(data.get("message"), str) and ("code" in data or data.get("object") == "error"):
        return _described(data, status)
    return None


def _described(error: dict[str, Any], status: int | None) -> tuple[str, int | None, str | None]:
    """(message, code, param) of an object with ``message`` and optional ``code``/``param``:
    vLLM's nested ``error`` object and the flat vLLM/SGLang body alike."""
    code, param = error.get("code"), error.get("param")
    return (
        str(error["message"]),
        code if isinstance(code, int) else status,
        param if isinstance(param, str) else None,
    )


def _loads(text: str | bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _client(message: str, code: int | None, param: str | None) -> GatewayError | None:
    if code in _CLIENT_CODES or (code == 424 and message.startswith("Input parsing failed")):
        return GatewayError(
            message, status=422, error_type="validation", kind=ErrorKind.CLIENT, param=param
        )
    if code in _OVERLOAD_CODES:
        return overloaded_error(message)
    return None


def container_error(status: int | None, body: str) -> GatewayError | None:
    """A container's error body answered before any stream; ``None`` when it is not one of
    the shapes above, or when it is a server failure (the transport reports those)."""
    data = _loads(body.strip()) if body.lstrip().startswith("{") else None
    if data is None:
        return None
    fields = _fields(data, status)
    if fields is None:
        return None
    return _client(*fields)


def _one_line(message: str) -> str:
    message = message.strip()
    if "\n" in message or len(message) > _MAX_MESSAGE or not message:
        return "The model failed during generation"
    return message


def error_event(obj: dict[str, Any]) -> GatewayError:
    """An error inside a stream: the client's request (422), overload (429), or the model
    failing (424 ``generation``, as TGI reports it)."""
    fields = _fields(obj, None)
    if fields is None:
        return GatewayError(
            "The model failed during generation",
            status=424,
            error_type="generation",
            kind=ErrorKind.UPSTREAM,
        )
    message, code, param = fields
    known = _client(message, code, param)
    if known is not None:
        return known
    return GatewayError(
        _one_line(message), status=424, error_type="generation", kind=ErrorKind.UPSTREAM
    )
