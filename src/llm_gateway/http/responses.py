"""JSON responses encoded with orjson (compact, UTF-8, like serde_json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class JSONBytesResponse(Response):
    media_type = "application/json"


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONBytesResponse(orjson.dumps(content), status_code=status_code, headers=headers)
