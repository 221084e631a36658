"""What the chat page needs to sign users in (``auth.jwt.client_id``), and what its CSP lets it
reach for that.

The page learns the issuer and its public client id from ``/ui/config.json`` (public values; a
public client has no secret). oidc-client-ts then fetches the issuer's discovery document and
calls its token endpoint (and, on renewal, again). Those are the only other origins the page's
``connect-src`` names: the issuer's, plus the origins of the token, userinfo and revocation
endpoints its discovery document lists (Cognito's live on the user pool's own domain, not on the
issuer's). The document is fetched once, off the event loop, with a short timeout; until it has
been read the issuer's origin alone is allowed, and a failed fetch is tried again a minute later.
Sign-in redirects are navigations, which ``connect-src`` does not govern.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread

from llm_gateway.identity import IssuerUnavailable
from llm_gateway.identity.jwks import discovery_url, fetch_json, is_allowed_url

# What the page asks the issuer for: who signed in (profile: name; email) besides the token.
SIGN_IN_SCOPE = "openid profile email"
# The endpoints oidc-client-ts fetches (the authorization and end-session endpoints are
# navigations).
FETCHED_ENDPOINTS = ("token_endpoint", "userinfo_endpoint", "revocation_endpoint")
DISCOVERY_TIMEOUT = 3.0  # seconds
RETRY_AFTER = 60.0  # seconds after a failed discovery fetch
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an https (or loopback http) URL; None for anything else,
    and for anything that could end a CSP directive or add a source to it.

    >>> origin_of("https://a.auth.us-east-1.amazoncognito.com/oauth2/token")
    'https://a.auth.us-east-1.amazoncognito.com'
    >>> [origin_of(u) for u in ("http://evil.example/t", "https://x;y/", "javascript:1")]
    [None, None, None]
    """
    if not isinstance(url, str) or not is_allowed_url(url):
        return None
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _ORIGIN.match(origin) else None


@dataclass(frozen=True)
class SignIn:
    """The page's sign-in: the issuer (``auth.jwt.issuer``) and the page's public client id
    (``auth.jwt.client_id``)."""

    issuer: str
    client_id: str

    @property
    def origin(self) -> str:
        origin = origin_of(self.issuer)
        if origin is None:
            raise ValueError(f"auth.jwt.issuer {self.issuer!r} has no usable origin")
        return origin


def page_config(sign_in: SignIn | None) -> bytes:
    """``/ui/config.json``: what the page needs to offer sign-in (``sign_in: null`` without)."""
    body = None
    if sign_in is not None:
        body = {"issuer": sign_in.issuer, "client_id": sign_in.client_id, "scope": SIGN_IN_SCOPE}
    return json.dumps({"sign_in": body}, separators=(",", ":")).encode()


class ConnectSources:
    """The page's CSP: ``base`` with the sign-in origins added to ``connect-src``."""

    def __init__(
        self,
        base: str,
        sign_in: SignIn | None,
        fetch: Callable[[str, float], tuple[Any, str | None]] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base
        self._sign_in = sign_in
        self._fetch = fetch
        self._clock = clock
        self._origins: list[str] = [sign_in.origin] if sign_in else []
        self._discovered = sign_in is None
        self._next_try = 0.0

    def policy(self) -> str:
        """The CSP with what is known now (no network)."""
        if not self._origins:
            return self._base
        sources = " ".join(["'self'", *self._origins])
        return self._base.replace("connect-src 'self'", f"connect-src {sources}", 1)

    async def discovered_policy(self) -> str:
        """The CSP, after reading the issuer's discovery document if that is still due."""
        if not self._discovered and self._clock() >= self._next_try:
            await anyio.to_thread.run_sync(self._discover)
        return self.policy()

    def _discover(self) -> None:
        assert self._sign_in is not None
        try:
            document, _ = self._fetch(discovery_url(self._sign_in.issuer), DISCOVERY_TIMEOUT)
        except IssuerUnavailable:  # unreachable or not JSON: the issuer's origin only, for now
            self._next_try = self._clock() + RETRY_AFTER
            return
        found = document if isinstance(document, dict) else {}
        for name in FETCHED_ENDPOINTS:
            origin = origin_of(found.get(name, ""))
            if origin is not None and origin not in self._origins:
                self._origins.append(origin)
        self._discovered = True
