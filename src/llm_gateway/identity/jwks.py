"""The issuer's signing keys: discovered, fetched, cached and refetched sparingly.

- The key set's URL is the configured ``jwks_uri``, else the ``jwks_uri`` of
  ``{issuer}/.well-known/openid-configuration`` (OpenID Connect Discovery §4).
- A fetched set is kept for its ``Cache-Control: max-age`` (clamped to 30 s … 24 h), else
  10 minutes. Past that it is fetched again; if that fails the old keys stay in use.
- A token naming a key the set lacks (rotation, OIDC Core §10.1.1) triggers one refetch, at
  most once per :data:`REFETCH_INTERVAL` seconds, so made-up ``kid`` values cannot turn the
  gateway into a load generator against the issuer.
- One fetch at a time (a lock): a burst of requests with a new ``kid`` makes one fetch and the
  others use its result. :meth:`KeySet.ready` tells an async caller whether a lookup could
  touch the network, so it can move only those lookups to a thread.
- Only the configured URLs are fetched (never a token's ``jku``/``x5u``), redirects are not
  followed, answers are capped at 1 MiB, and plain ``http`` is refused except on loopback.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .errors import IssuerUnavailable
from .urls import is_allowed_url as is_allowed_url  # re-exported (ui.sign_in uses it)

log = logging.getLogger(__name__)

REFETCH_INTERVAL = 30.0  # seconds between fetches caused by unknown key ids
RETRY_AFTER_FAILURE = 5.0  # seconds before a failed fetch is tried again
DEFAULT_MAX_AGE = 600.0  # without Cache-Control
MIN_MAX_AGE, MAX_MAX_AGE = 30.0, 86400.0
MAX_BYTES = 1024 * 1024
USER_AGENT = "llm-gateway-identity/1"  # some WAF-fronted JWKS URLs refuse urllib's default

# Monotonic seconds; a module attribute so tests can drive the cache's clock.
CLOCK: Callable[[], float] = time.monotonic

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


def max_age(cache_control: str | None) -> float:
    """Seconds a key set may be kept, from its ``Cache-Control``.

    >>> max_age("public, max-age=3600, must-revalidate"), max_age(None), max_age("max-age=1")
    (3600.0, 600.0, 30.0)
    """
    if not cache_control:
        return DEFAULT_MAX_AGE
    found = _MAX_AGE.search(cache_control)
    if found is None:
        return DEFAULT_MAX_AGE
    return min(max(float(found.group(1)), MIN_MAX_AGE), MAX_MAX_AGE)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx becomes an HTTPError: the configured URL or nothing


_OPENER = urllib.request.build_opener(_NoRedirect())


def fetch_json(url: str, timeout: float) -> tuple[Any, str | None]:
    """GET ``url`` as JSON; returns the document and its ``Cache-Control``."""
    if not is_allowed_url(url):
        raise IssuerUnavailable(f"refusing to fetch {url}: https is required")
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            cache_control = response.headers.get("Cache-Control")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IssuerUnavailable(f"cannot fetch {url}: {exc}") from None
    if len(body) > MAX_BYTES:
        raise IssuerUnavailable(f"{url} answered more than {MAX_BYTES} bytes")
    try:
        return json.loads(body), cache_control
    except ValueError:
        raise IssuerUnavailable(f"{url} did not answer JSON") from None


def _same_issuer(named: object, issuer: str) -> bool:
    """Whether a discovery document's ``issuer`` is the configured one (a trailing slash
    aside: some providers' configuration pages show it, some not).

    >>> _same_issuer("https://a.example/", "https://a.example"), _same_issuer("https://b", "https://a")
    (True, False)
    """
    return isinstance(named, str) and named.rstrip("/") == issuer.rstrip("/")


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery: the issuer without a trailing slash, then the well-known path.

    >>> discovery_url("https://tenant.auth0.com/")
    'https://tenant.auth0.com/.well-known/openid-configuration'
    """
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _signing_keys(document: Any) -> list[dict[str, Any]]:
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise IssuerUnavailable("the key set has no `keys` list")
    return [
        key
        for key in keys
        if isinstance(key, dict)
        and isinstance(key.get("kty"), str)
        and key.get("use", "sig") == "sig"
        and (not isinstance(key.get("key_ops"), list) or "verify" in key["key_ops"])
    ]


class KeySet:
    """One issuer's public keys (JWK dicts), thread-safe."""

    def __init__(self, issuer: str, jwks_uri: str | None = None, timeout: float = 3.0) -> None:
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.timeout = timeout
        self.fetches = 0  # key-set fetches attempted (discovery excluded), for tests and logs
        self._keys: list[dict[str, Any]] | None = None
        self._expires = 0.0
        self._last_attempt: float | None = None
        self._last_failed = False
        self._fetch_lock = threading.Lock()

    # -- lookups ---------------------------------------------------------------------------
    def ready(self, kid: str | None) -> bool:
        """Whether :meth:`candidates` for ``kid`` answers at once: the set is fresh and holds
        ``kid``. (An unknown ``kid`` may have to wait for a fetch another request started.)"""
        return not self._needs_fetch(kid) and self._knows(kid)

    def candidates(self, kid: str | None) -> list[dict[str, Any]]:
        """The keys a token naming ``kid`` may be checked against (all keys when the token
        names none), fetching the set first when it is missing, stale, or lacks ``kid``.
        Raises :class:`IssuerUnavailable` when no key could ever be had."""
        if self._needs_fetch(kid) or not self._knows(kid):
            # One fetch at a time: a request that finds the key missing while another fetches
            # waits for that fetch and uses its result rather than refusing the key.
            with self._fetch_lock:
                if self._needs_fetch(kid):
                    self._refresh()
        keys = self._keys
        if keys is None:
            raise IssuerUnavailable("the issuer's key set could not be fetched")
        found = [k for k in keys if kid is None or k.get("kid") == kid]
        if not found and self._last_failed:
            # The key may be new and the issuer is down: that is not the client's fault.
            raise IssuerUnavailable("the issuer's key set could not be refreshed")
        return found

    def _knows(self, kid: str | None) -> bool:
        keys = self._keys
        return keys is not None and (kid is None or any(k.get("kid") == kid for k in keys))

    def _needs_fetch(self, kid: str | None) -> bool:
        now = CLOCK()
        last = self._last_attempt
        if last is not None and self._last_failed and now - last < RETRY_AFTER_FAILURE:
            return False  # failed just now: answer from what is cached (or 503) for a while
        if self._keys is None or now >= self._expires:
            return True
        if kid is not None and not any(k.get("kid") == kid for k in self._keys):
            return last is None or now - last >= REFETCH_INTERVAL
        return False

    # -- fetching --------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._last_attempt = CLOCK()
        self.fetches += 1
        try:
            document, cache_control = fetch_json(self._jwks_uri(), self.timeout)
            keys = _signing_keys(document)
        except IssuerUnavailable as exc:
            self._last_failed = True
            log.warning("JWKS fetch for %s failed: %s", self.issuer, exc)
            return
        self._keys = keys
        self._expires = CLOCK() + max_age(cache_control)
        self._last_failed = False

    def _jwks_uri(self) -> str:
        if self.jwks_uri is None:
            document, _ = fetch_json(discovery_url(self.issuer), self.timeout)
            if not isinstance(document, Mapping) or not _same_issuer(
                document.get("issuer"), self.issuer
            ):
                # Discovery §4.3: the document must name the issuer it was fetched for; one
                # that names another cannot say where this issuer's keys are.
                raise IssuerUnavailable("the discovery document names another issuer")
            uri = document.get("jwks_uri")
            if not isinstance(uri, str) or not is_allowed_url(uri):
                raise IssuerUnavailable("the discovery document has no usable `jwks_uri`")
            self.jwks_uri = uri  # discovered once per process
        return self.jwks_uri
