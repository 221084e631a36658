"""Signed-in users: verifying an OpenID Connect issuer's JWTs and reading who they name.

Shared by the gateway (``llm_gateway.http.auth``) and the API Gateway authorizer
(``authorizer/``, which ships this package as is), so it imports nothing from the rest of
``llm_gateway`` — only relative imports, PyJWT and the standard library (import-linter keeps
it so). :mod:`.verifier` loads PyJWT and ``cryptography``; import it only when ``auth.jwt`` is
configured.
"""

from .errors import IssuerUnavailable, TokenRejected

__all__ = ["IssuerUnavailable", "TokenRejected"]
