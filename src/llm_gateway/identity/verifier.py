"""Verifying an issuer's JWTs (PyJWT with ``cryptography``) and reading who they name.

The rules (RFC 7519, RFC 8725, OpenID Connect Core), in the order they are applied:

1. The header must parse and name an algorithm from the configured list; that list is
   asymmetric-only (``none`` and HS* never pass, whatever is configured).
2. The key comes from the issuer's key set by ``kid`` (a token without ``kid`` is checked
   against the set's keys of the right type), and its type must fit the algorithm: an RSA key
   never checks an ES256 token, nor serves as an HMAC secret.
3. The signature, then ``exp`` (required), ``nbf`` and ``iat`` with the leeway, and ``iss``
   exactly as configured — claims are looked at only once the signature holds.
4. The audience: ``aud`` must name an accepted audience; a token without ``aud`` passes only on
   a ``client_id`` that is one (Cognito's access tokens carry no ``aud``).
5. The user claim must be there; the tenant and models claims are read when configured.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from .algorithms import ASYMMETRIC, DEFAULT_ALGORITHMS, key_fits
from .errors import TokenRejected
from .jwks import KeySet

log = logging.getLogger(__name__)

_MAX_KID = 256  # a key id longer than this names no real key (RFC 8725 §3.10: sanitise it)
_MAX_ID = 256  # user and tenant ids longer than this are refused


def looks_like_jwt(credential: str) -> bool:
    """A bearer value with exactly two dots is a JWT (so ``x.y.`` is a broken token, never an
    API key); anything else is an API key.

    >>> looks_like_jwt("a.b.c"), looks_like_jwt("x.y."), looks_like_jwt("sk-123")
    (True, True, False)
    """
    return credential.count(".") == 2


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token names: ids without their ``user:``/``tenant:`` prefixes."""

    user: str
    tenant: str | None = None
    models: frozenset[str] | None = None  # None: the token does not limit models

    @property
    def principal(self) -> str:
        return f"user:{self.user}"


def _text(value: Any) -> str | None:
    """A claim as an id: a non-empty string or number; a list gives its first value."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def _names(value: Any) -> frozenset[str] | None:
    """A models claim: a list of names, or one string of names separated by spaces/commas."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, list):
        return frozenset(str(v) for v in value if isinstance(v, str | int) and str(v))
    return frozenset()  # a claim of another shape grants nothing


_CLAIM_ERRORS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.InvalidIssuedAtError, "malformed", "the token's iat is not a number"),
    (jwt.InvalidIssuerError, "issuer", "the token's issuer (iss) is not the configured one"),
    (jwt.InvalidSignatureError, "signature", "the token's signature does not verify"),
)


class Verifier:
    """One issuer's tokens. Thread-safe; built once per process (its key set is cached)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: Iterable[str],
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway_seconds: float = 60,
        jwks_uri: str | None = None,
        user_claim: str = "sub",
        tenant_claim: str | None = None,
        models_claim: str | None = None,
        timeout: float = 3.0,
    ) -> None:
        self.issuer = issuer
        self.audience = frozenset(audience)
        # Whatever is configured, only asymmetric algorithms are ever accepted.
        self.algorithms = tuple(a for a in algorithms if a in ASYMMETRIC)
        if not self.algorithms:
            raise ValueError("no asymmetric algorithm configured (none and HS* are refused)")
        if not self.audience:
            raise ValueError("at least one accepted audience is required")
        self.leeway = leeway_seconds
        self.user_claim = user_claim
        self.tenant_claim = tenant_claim
        self.models_claim = models_claim
        self.keys = KeySet(issuer, jwks_uri, timeout)

    def ready(self, token: str) -> bool:
        """Whether :meth:`verify` can run without a network call (the key is cached, or a
        refetch is not due). A malformed token is always ready: it fails without one."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return True
        return self.keys.ready(kid if isinstance(kid, str) else None)

    def verify(self, token: str) -> Identity:
        """The token's :class:`Identity`, or :class:`TokenRejected` saying what was wrong, or
        :class:`IssuerUnavailable` when the issuer's keys cannot be had. May fetch the key
        set (blocking): async callers use :meth:`ready` to decide on a thread."""
        header = self._header(token)
        alg = header["alg"]
        kid = header.get("kid")
        named = self.keys.candidates(kid)
        if not named:
            raise TokenRejected("unknown_key", "the token's signing key (kid) is not known")
        keys = [k for k in named if key_fits(alg, k)]
        if not keys:
            raise TokenRejected(
                "algorithm", f"the token's algorithm {alg} does not match its signing key"
            )
        if kid is None and len(keys) > 1:
            raise TokenRejected("unknown_key", "the token names no signing key (kid)")
        claims = self._decode(token, keys[0], alg)
        self._check_audience(claims)
        return self._identity(claims)

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed", "the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            shown = alg if isinstance(alg, str) and alg.isalnum() and len(alg) <= 16 else "?"
            raise TokenRejected(
                "algorithm",
                f"the token's algorithm {shown} is not accepted (accepted: "
                f"{', '.join(self.algorithms)})",
            )
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID):
            raise TokenRejected("unknown_key", "the token's signing key (kid) is not known")
        return header

    def _decode(self, token: str, jwk: dict[str, Any], alg: str) -> dict[str, Any]:
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            log.warning("the issuer's key %r cannot be used for %s", jwk.get("kid"), alg)
            raise TokenRejected(
                "algorithm", f"the token's algorithm {alg} does not match its signing key"
            ) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": False,  # checked below, with Cognito's client_id rule
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected("missing_claim", f"the token has no `{exc.claim}` claim") from None
        except jwt.ImmatureSignatureError as exc:  # PyJWT raises it for nbf and for iat
            if "(iat)" in str(exc):
                raise TokenRejected(
                    "issued_in_future", "the token's iat is in the future"
                ) from None
            raise TokenRejected("not_yet_valid", "the token is not valid yet (nbf)") from None
        except jwt.PyJWTError as exc:
            for kind, reason, description in _CLAIM_ERRORS:
                if isinstance(exc, kind):
                    raise TokenRejected(reason, description) from None
            raise TokenRejected("malformed", "the token is not a well-formed JWT") from None
        return claims

    def _check_audience(self, claims: dict[str, Any]) -> None:
        aud = claims.get("aud")
        if aud is not None:
            named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(isinstance(a, str) and a in self.audience for a in named):
                raise TokenRejected("audience", "the token is for another audience (aud)")
            return
        client_id = claims.get("client_id")  # Cognito access tokens: no aud, a client_id
        if isinstance(client_id, str) and client_id in self.audience:
            return
        raise TokenRejected("audience", "the token names no accepted audience (aud/client_id)")

    def _identity(self, claims: dict[str, Any]) -> Identity:
        user = _text(claims.get(self.user_claim))
        if user is None:
            raise TokenRejected("missing_claim", f"the token has no `{self.user_claim}` claim")
        tenant = _text(claims.get(self.tenant_claim)) if self.tenant_claim else None
        for claim, value in ((self.user_claim, user), (self.tenant_claim, tenant)):
            if value is not None and len(value) > _MAX_ID:  # ids become keys in logs and budgets
                raise TokenRejected(
                    "claim", f"the token's `{claim}` claim is longer than {_MAX_ID} characters"
                )
        models = _names(claims.get(self.models_claim)) if self.models_claim else None
        return Identity(user, tenant, models)
