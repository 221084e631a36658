"""API Gateway REQUEST authorizer: API keys for usage plans, and signed-in users' JWTs.

**API keys** arrive as ``x-api-key: <key>`` or ``Authorization: Bearer <key>`` (what the openai
SDK sends). The REST API's API key source is AUTHORIZER, so API Gateway takes the key from
``usageIdentifierKey`` and does the real check itself (unknown or disabled key: 403, plan
exhausted: 429); this function only extracts it.

**Signed-in users** (``GATEWAY_JWT_ISSUER`` set): a bearer value with exactly two dots is a
JWT, verified by ``gateway_identity`` — the gateway's own ``llm_gateway.identity`` package,
shipped here as is (``gateway_identity`` links to it; ``sam build`` copies its files), so the
authorizer and the app share one implementation. A valid token is allowed under the frontend's
own usage-plan key (``GATEWAY_FRONTEND_KEY_SECRET``: a Secrets Manager secret holding it, read
once per container), so usage plans throttle the frontend as a whole while budgets meter each
user in the app, which verifies the token again.

- No credentials, a malformed key or an invalid token: ``Unauthorized`` → API Gateway 401,
  and the gateway function is never invoked.
- The issuer's keys unreachable with none cached: :class:`IssuerUnavailable` is raised, which
  API Gateway answers as ``AUTHORIZER_FAILURE`` (mapped to 503 by the stack).
- ``x-api-key`` wins when both headers are present (it is API Gateway's own header).
- Keys and tokens never appear in logs, in ``principalId`` or in the context; the context
  carries ``principal`` (``user:<id>``) and ``tenant`` (when ``GATEWAY_JWT_TENANT_CLAIM`` names
  a claim the token has).
- The policy allows the whole stage (``…/<stage>/*/*``). Caching is off in the template, see
  ``template.yaml`` (KeyAuthorizer).

Environment: ``GATEWAY_JWT_ISSUER``, ``GATEWAY_JWT_AUDIENCE`` (comma-separated),
``GATEWAY_JWT_CLIENT_ID`` (also an accepted audience), ``GATEWAY_JWT_USER_CLAIM`` (default
``sub``), ``GATEWAY_JWT_TENANT_CLAIM``, ``GATEWAY_FRONTEND_KEY_SECRET``.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Any

from gateway_identity import IssuerUnavailable, TokenRejected
from gateway_identity.urls import is_allowed_url
from gateway_identity.verifier import Verifier

# API Gateway accepts key values of 20-128 characters; anything else can never match a key.
_KEY = re.compile(r"^[\x21-\x7e]{20,128}$")
# Well inside the function's timeout: a slow issuer must not turn into a timeout.
JWKS_TIMEOUT_SECONDS = 2.0

__all__ = ["IssuerUnavailable", "handler"]


def _header(event: dict[str, Any], name: str) -> str | None:
    """A header's value, case-insensitively (REST REQUEST events keep the client's casing)."""
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return values[0]
    return None


def credentials(event: dict[str, Any]) -> tuple[str, str]:
    """``(value, source)``: source is ``x-api-key``, ``bearer`` or ``none``."""
    key = (_header(event, "x-api-key") or "").strip()
    if key:
        return key, "x-api-key"
    scheme, _, token = (_header(event, "authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), "bearer"
    return "", "none"


def presented_key(event: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, source)`` with source ``x-api-key`` or ``bearer``, or None."""
    key, source = credentials(event)
    return (key, source) if _KEY.match(key) else None


def stage_arn(method_arn: str) -> str:
    """``arn:…:execute-api:region:account:api/stage/VERB/path`` → ``…:api/stage/*/*``."""
    prefix, _, resource = method_arn.partition(":execute-api:")
    parts = resource.split("/")
    return f"{prefix}:execute-api:{'/'.join(parts[:2])}/*/*"


@cache
def verifier() -> Verifier | None:
    """The issuer's verifier, once per container (its key set stays cached between calls)."""
    issuer = os.environ.get("GATEWAY_JWT_ISSUER", "").strip()
    if not issuer:
        return None
    if not is_allowed_url(issuer):
        raise RuntimeError("GATEWAY_JWT_ISSUER must be an https:// URL")
    names = os.environ.get("GATEWAY_JWT_AUDIENCE", "").split(",")
    names.append(os.environ.get("GATEWAY_JWT_CLIENT_ID", ""))
    return Verifier(
        issuer=issuer,
        audience=[n.strip() for n in names if n.strip()],
        user_claim=os.environ.get("GATEWAY_JWT_USER_CLAIM") or "sub",
        tenant_claim=os.environ.get("GATEWAY_JWT_TENANT_CLAIM") or None,
        timeout=JWKS_TIMEOUT_SECONDS,
    )


@cache
def frontend_key() -> str:
    """The frontend's usage-plan API key, from Secrets Manager, once per container."""
    secret = os.environ.get("GATEWAY_FRONTEND_KEY_SECRET", "").strip()
    if not secret:
        raise RuntimeError(
            "GATEWAY_FRONTEND_KEY_SECRET is not set: signed-in users cannot be metered"
        )
    import boto3  # in the Lambda runtime; only signed-in traffic needs it

    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
    return str(value).strip()


def _allow(
    event: dict[str, Any], principal: str, key: str, context: dict[str, str]
) -> dict[str, Any]:
    return {
        "principalId": principal,
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
        "context": context,
    }


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    value, source = credentials(event)
    checker = verifier()
    if source == "bearer" and checker is not None and value.count(".") == 2:
        try:
            identity = checker.verify(value)
        except TokenRejected as exc:
            # Why, for the operator; never the token.
            print(json.dumps({"message": "token refused", "reason": exc.reason}))
            raise Exception("Unauthorized") from None
        context_out = {"keySource": "jwt", "principal": identity.principal}
        if identity.tenant:
            context_out["tenant"] = identity.tenant
        return _allow(event, identity.principal, frontend_key(), context_out)
    found = presented_key(event)
    if found is None:
        # The exact message API Gateway maps to 401 UNAUTHORIZED (see GatewayResponses).
        raise Exception("Unauthorized")
    key, source = found
    return _allow(event, "api-key", key, {"keySource": source})
