"""Rendering a :class:`GatewayError` in the dialect of the route it happened on.

Routes under ``/v1/`` speak OpenAI's dialect; everything else speaks TGI's
(``{"error": …, "error_type": …}``), which is also what API Gateway's own error bodies mimic.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from llm_gateway.core.decoding import DESERIALIZE_PREFIX
from llm_gateway.core.errors import ErrorKind, GatewayError, request_error
from llm_gateway.dialects.openai.encoding import error_body as openai_error_body
from llm_gateway.dialects.tgi.encoding import error_body
from llm_gateway.http.responses import JSONBytesResponse


def render_error(path: str, error: GatewayError) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    if error.kind is ErrorKind.AUTH:
        headers["www-authenticate"] = "Bearer"
    if path.startswith("/v1/"):
        status, body = openai_error_body(error)
        return JSONBytesResponse(orjson.dumps(body), status_code=status, headers=headers)
    return JSONBytesResponse(error_body(error), status_code=error.status, headers=headers)


def _http_error(exc: HTTPException) -> GatewayError:
    names = {404: "not_found", 405: "method_not_allowed"}
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    return GatewayError(
        detail,
        status=exc.status_code,
        error_type=names.get(exc.status_code, "http"),
        kind=ErrorKind.CLIENT,
    )


def install_error_handlers(app: FastAPI) -> None:
    def answer(request: Request, error: GatewayError) -> Response:
        record = request.scope.get("state", {}).get("record")
        if record is not None:
            record.fail(error)
        return render_error(request.url.path, error)

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return answer(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return answer(request, _http_error(exc))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(request, request_error(f"{DESERIALIZE_PREFIX}{where}: {first['msg']}"))

    async def unexpected(request: Request, exc: Exception) -> Response:
        # The trace goes to the server log (Starlette re-raises); the client gets JSON only.
        error = GatewayError(
            "Internal gateway error", status=500, error_type="internal", kind=ErrorKind.UPSTREAM
        )
        return answer(request, error)

    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
