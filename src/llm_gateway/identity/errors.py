"""Why a token was refused, in words a client may read.

Two outcomes besides success, kept apart because clients must treat them differently:
:class:`TokenRejected` (the token is wrong: HTTP 401, ask the user to sign in again) and
:class:`IssuerUnavailable` (the issuer's keys cannot be had: HTTP 503, try again later).
Neither message ever contains the token or any part of it.
"""

from __future__ import annotations


class TokenRejected(Exception):
    """The token is not acceptable. ``reason`` is a short machine-readable word
    (``expired``, ``audience``, ``signature``, …); ``description`` says what was wrong, for
    ``WWW-Authenticate: Bearer error="invalid_token", error_description="…"``."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


class IssuerUnavailable(Exception):
    """The issuer's key set could not be fetched and no usable key is cached."""
