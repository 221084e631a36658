"""The signature algorithms a verifier may accept, and which key type each one needs.

Asymmetric only (RFC 8725 §3.1–3.2): ``none`` and the HMAC family are never accepted, whatever
the configuration says, because an HMAC "key" taken from a public key set is public.

>>> sorted(ASYMMETRIC)[:3]
['ES256', 'ES384', 'ES512']
>>> key_fits("ES256", {"kty": "RSA"}), key_fits("RS256", {"kty": "RSA"})
(False, True)
>>> key_fits("ES384", {"kty": "EC", "crv": "P-256"})
False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# alg -> (kty, crv or None)
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
ASYMMETRIC = frozenset(_KEY_TYPES)
DEFAULT_ALGORITHMS = ("RS256", "ES256")


def key_fits(alg: str, jwk: Mapping[str, Any]) -> bool:
    """Whether ``jwk`` can verify ``alg``: the key's type (and curve) match, and a key that
    names its own ``alg`` is used for that algorithm only (RFC 8725 §3.1)."""
    wanted = _KEY_TYPES.get(alg)
    if wanted is None:
        return False
    kty, crv = wanted
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        return False
    declared = jwk.get("alg")
    return declared is None or declared == alg
