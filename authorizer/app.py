"""API Gateway REQUEST authorizer: hands the caller's API key to API Gateway's usage plans.

The key may arrive as ``x-api-key: <key>`` or ``Authorization: Bearer <key>`` (what the openai
SDK and most OpenAI-compatible frontends send). The REST API's API key source is AUTHORIZER, so
API Gateway takes the key from ``usageIdentifierKey`` and then does the real check itself: an
unknown, disabled or plan-less key gets 403, an exhausted plan 429. This function therefore
only extracts the key; it needs no AWS calls, no permissions and no dependencies.

- No key (or a malformed one): ``Unauthorized`` → API Gateway answers 401.
- ``x-api-key`` wins when both headers are present (it is API Gateway's own header).
- The key never appears in logs, in ``principalId`` or in the authorizer context.
- The policy allows the whole stage (``…/<stage>/*/*``), so a cached result would stay valid
  on every route. Caching is off in the template, see ``template.yaml`` (KeyAuthorizer).
"""

from __future__ import annotations

import re
from typing import Any

# API Gateway accepts key values of 20-128 characters; anything else can never match a key.
_KEY = re.compile(r"^[\x21-\x7e]{20,128}$")


def _header(event: dict[str, Any], name: str) -> str | None:
    """A header's value, case-insensitively (REST REQUEST events keep the client's casing)."""
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return values[0]
    return None


def presented_key(event: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, source)`` with source ``x-api-key`` or ``bearer``, or None."""
    key, source = (_header(event, "x-api-key") or "").strip(), "x-api-key"
    if not key:
        scheme, _, token = (_header(event, "authorization") or "").strip().partition(" ")
        key, source = (token.strip() if scheme.lower() == "bearer" else ""), "bearer"
    return (key, source) if _KEY.match(key) else None


def stage_arn(method_arn: str) -> str:
    """``arn:…:execute-api:region:account:api/stage/VERB/path`` → ``…:api/stage/*/*``."""
    prefix, _, resource = method_arn.partition(":execute-api:")
    parts = resource.split("/")
    return f"{prefix}:execute-api:{'/'.join(parts[:2])}/*/*"


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    found = presented_key(event)
    if found is None:
        # The exact message API Gateway maps to 401 UNAUTHORIZED (see GatewayResponses).
        raise Exception("Unauthorized")
    key, source = found
    return {
        "principalId": "api-key",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": stage_arn(event["methodArn"]),
                }
            ],
        },
        "usageIdentifierKey": key,
        "context": {"keySource": source},
    }
