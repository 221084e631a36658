"""Who is asking (SPEC §5.3): an API key, a signed-in user's JWT, or nobody.

- ``x-api-key`` is always an API key. A bearer value with exactly two dots is a JWT when
  ``auth.jwt`` is configured (so ``x.y.`` is a broken token, never a key); anything else is an
  API key.
- API keys: ``GATEWAY_API_KEYS`` (compared in constant time); on Lambda, with no such list, a
  key API Gateway has already checked (its ``apiKeyId`` in the request context).
- Tokens: verified by :mod:`llm_gateway.identity` (the authorizer runs the same code). A key
  set fetch never runs on the event loop: only a lookup that may fetch goes to a thread.
- With ``auth.jwt`` configured nothing is anonymous; without it and without keys, as before,
  the gateway is open (local runs behind API Gateway or a private network).

Failures are :class:`GatewayError`\\ s rendered in the route's dialect: 401 with
``WWW-Authenticate: Bearer error="invalid_token", error_description="…"`` (never the token),
503 when the issuer's keys cannot be had.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import Scope

from llm_gateway.config.schema import JwtConfig
from llm_gateway.core.errors import (
    GatewayError,
    invalid_token,
    issuer_unavailable,
    unauthenticated,
)
from llm_gateway.http.state import RequestState
from llm_gateway.identity import IssuerUnavailable, TokenRejected

if TYPE_CHECKING:
    from llm_gateway.identity.verifier import Verifier

# The models the current request's user may call (None: any), set by the route for
# GatewayContext.model and /v1/models.
ALLOWED_MODELS: ContextVar[frozenset[str] | None] = ContextVar(
    "llm_gateway_allowed_models", default=None
)


def missing_credentials(signed_in: bool) -> GatewayError:
    return unauthenticated(
        "Missing or invalid credentials: send a signed-in user's token as `Authorization: "
        "Bearer <token>`, or an API key as `x-api-key` or `Authorization: Bearer <key>`"
        if signed_in
        else "Missing or invalid API key: send it as `x-api-key` or `Authorization: Bearer <key>`"
    )


def make_verifier(config: JwtConfig) -> Verifier:
    from llm_gateway.identity.verifier import Verifier  # PyJWT + cryptography: only when used

    return Verifier(
        issuer=config.issuer,
        audience=config.audiences,
        algorithms=config.algorithms,
        leeway_seconds=config.leeway_seconds,
        jwks_uri=config.jwks_uri,
        user_claim=config.user_claim,
        tenant_claim=config.tenant_claim,
        models_claim=config.models_claim,
    )


def matching_key_id(key: str | None, ids_by_key: Mapping[str, str]) -> str | None:
    """The id of the allowed key ``key`` equals, compared in constant time against all."""
    if key is None:
        return None
    candidate = key.encode()
    found: str | None = None
    for allowed_key, identity in ids_by_key.items():
        if hmac.compare_digest(candidate, allowed_key.encode()):
            found = identity
    return found


def credentials(headers: Headers) -> tuple[str | None, str | None]:
    """``(x-api-key, bearer value)`` as sent, stripped; either may be None."""
    key = (headers.get("x-api-key") or "").strip() or None
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return key, bearer


class Authenticator:
    """Decides who a request is, filling its :class:`RequestState` (ids only, never secrets)."""

    def __init__(
        self,
        ids_by_key: Mapping[str, str],
        jwt: JwtConfig | None,
        *,
        on_lambda: bool | None = None,
    ) -> None:
        self.ids_by_key = ids_by_key
        self.verifier = make_verifier(jwt) if jwt is not None else None
        # Inside Lambda every request came through API Gateway, which checked its key.
        self.on_lambda = (
            bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) if on_lambda is None else on_lambda
        )

    @property
    def required(self) -> bool:
        return bool(self.ids_by_key) or self.verifier is not None

    def open(self, state: RequestState) -> None:
        """No credentials are checked here; API Gateway may still have checked a key."""
        if state.record.api_key_id:
            state.record.principal = f"key:{state.record.api_key_id}"

    async def check(
        self, scope: Scope, headers: Headers, state: RequestState
    ) -> GatewayError | None:
        if not self.required:
            self.open(state)
            return None
        key, bearer = credentials(headers)
        if key is None and bearer is not None:
            if self.verifier is not None and bearer.count(".") == 2:
                return await self._token(bearer, state)
            key = bearer
        return self._key(key, scope, state)

    def _key(self, key: str | None, scope: Scope, state: RequestState) -> GatewayError | None:
        if self.ids_by_key:
            identity = matching_key_id(key, self.ids_by_key)
            if identity is None:
                return missing_credentials(self.verifier is not None)
            state.key_id = identity
            if state.record.api_key_id is None:  # API Gateway's key id wins when present
                state.record.api_key_id = identity
        elif not (state.record.api_key_id and (self.on_lambda or "aws.event" in scope)):
            return missing_credentials(True)  # signed-in mode, and no key was checked anywhere
        state.record.principal = f"key:{state.key_id or state.record.api_key_id}"
        return None

    async def _token(self, token: str, state: RequestState) -> GatewayError | None:
        verifier = self.verifier
        assert verifier is not None
        try:
            if verifier.ready(token):
                identity = verifier.verify(token)
            else:  # the key set must be fetched: never on the event loop
                identity = await anyio.to_thread.run_sync(verifier.verify, token)
        except TokenRejected as exc:
            return invalid_token(exc.description)
        except IssuerUnavailable:
            return issuer_unavailable()
        state.user, state.tenant, state.models = identity.user, identity.tenant, identity.models
        state.record.principal = identity.principal
        state.record.tenant = f"tenant:{identity.tenant}" if identity.tenant else None
        # A signed-in request is the user's, not the frontend's usage-plan key's.
        state.key_id = None
        return None
