"""Every :class:`GatewayError` on the Responses routes: OpenAI's table
(:mod:`llm_gateway.dialects.openai.errors`), with Responses parameter names.

Before the head, an error is chat completions' body naming the field the client sent
(``max_output_tokens``, ``input``). After it, the stream ends with ``response.failed`` whose
``response.error`` is :func:`response_error`: its ``code`` is from OpenAI's fixed list, read
off the same table (``rate_limit_exceeded`` where the table answers 429, else
``server_error``).

>>> from llm_gateway.core.errors import validation_error
>>> status, body = error_body(validation_error("bad", param="max_new_tokens"))
>>> status, orjson.loads(body)["error"]["param"]
(400, 'max_output_tokens')
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.errors import GatewayError
from llm_gateway.dialects.openai.errors import classify, client_param, error_object
from llm_gateway.dialects.openai.responses.mapping import rename_param


def error_body(error: GatewayError) -> tuple[int, bytes]:
    """The status and body of ``error`` on the Responses routes."""
    status, body = error_object(error, rename_param(client_param(error.param)))
    return status, orjson.dumps(body)


def response_error(error: GatewayError) -> dict[str, Any]:
    """``response.error`` of a failed response: OpenAI's code (its SDKs know a fixed list),
    the gateway's own type.

    >>> from llm_gateway.core.errors import overloaded_error, upstream_error
    >>> [response_error(e)["code"] for e in (overloaded_error("busy"), upstream_error("x"))]
    ['rate_limit_exceeded', 'server_error']
    """
    code = "rate_limit_exceeded" if classify(error)[0] == 429 else "server_error"
    return {"code": code, "message": error.message, "param": None, "type": error.error_type}
