"""Every :class:`GatewayError` in TGI's error shape.

TGI's ``ErrorResponse`` is ``{"error": message, "error_type": type}`` with the router's status.
The TGI dialect's table is the error itself: the core carries TGI's words on every error (its
``status`` and ``error_type``: ``validation``, ``overloaded``, ``generation``, …), which a TGI
container's own errors keep when they pass through, so no code is mapped here. The same body
is the stream's one error event.

>>> from llm_gateway.core.errors import gateway_overloaded
>>> error_body(gateway_overloaded())
(429, b'{"error":"Model is overloaded","error_type":"overloaded"}')
"""

from __future__ import annotations

import orjson

from llm_gateway.core.errors import GatewayError


def error_body(error: GatewayError) -> tuple[int, bytes]:
    """TGI's status and ``ErrorResponse`` (compact, not ASCII-escaped, like ``serde_json``)."""
    return error.status, orjson.dumps({"error": error.message, "error_type": error.error_type})
