"""Which issuer and key-set URLs may be used (no network code here: the config imports it)."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_allowed_url(url: str) -> bool:
    """``https://`` anywhere; ``http://`` only on a loopback host (local runs and tests).

    >>> [is_allowed_url(u) for u in ("https://a.example", "http://127.0.0.1:9", "http://a.example")]
    [True, True, False]
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
