"""A real OpenID Connect issuer for tests: discovery and JWKS served over HTTP on 127.0.0.1,
RSA and EC signing keys, rotation, and a count of every fetch it answered.

Tokens are minted with PyJWT from the issuer's own private keys; the bad ones (``alg: none``,
HS256 keyed with the RSA public key, tampered payloads, …) are built by hand, as an attacker
would, since PyJWT refuses to make some of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "gateway-api"
CLIENT_ID = "chat-page-client"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """``url`` is the issuer (``iss``); ``/.well-known/openid-configuration`` points to
    ``/jwks``. ``published`` lists the key ids the JWKS serves (rotation = changing it)."""

    def __init__(self, cache_control: str | None = None) -> None:
        self.keys: dict[str, tuple[Any, str]] = {}  # kid -> (private key, alg)
        self.published: list[str] = []
        self.cache_control = cache_control
        self.failing = False  # answer 500 to every fetch
        self.named_issuer: str | None = None  # what discovery says the issuer is (default: url)
        self.jwks_path = "/jwks"  # where discovery says the keys are
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Issuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- keys ------------------------------------------------------------------------------
    def add_key(self, kid: str, kind: str = "RSA", *, publish: bool = True) -> None:
        if kind == "RSA":
            self.keys[kid] = (
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
                "RS256",
            )
        else:
            self.keys[kid] = (ec.generate_private_key(ec.SECP256R1()), "ES256")
        if publish:
            self.published.append(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        private, alg = self.keys[kid]
        algorithm = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
        data = algorithm.to_jwk(private.public_key(), as_dict=True)
        return {**data, "kid": kid, "alg": alg, "use": "sig"}

    def public_pem(self, kid: str) -> bytes:
        private, _ = self.keys[kid]
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    # -- tokens ----------------------------------------------------------------------------
    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "rsa-1", *, alg: str | None = None, **claims: Any) -> str:
        private, key_alg = self.keys[kid]
        return jwt.encode(
            self.claims(**claims), private, algorithm=alg or key_alg, headers={"kid": kid}
        )

    def unsigned(self, header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
        """A token with any header and signature, as an attacker writes one."""
        head = b64(json.dumps(header).encode())
        body = b64(json.dumps(claims).encode())
        return f"{head}.{body}.{b64(signature)}"

    def hs256_with_public_key(self, kid: str = "rsa-1") -> str:
        """RFC 8725 §2.1: an HS256 token keyed with the RSA public key as the HMAC secret."""
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        head = b64(json.dumps(header).encode())
        body = b64(json.dumps(self.claims()).encode())
        mac = hmac.new(self.public_pem(kid), f"{head}.{body}".encode(), hashlib.sha256)
        return f"{head}.{body}.{b64(mac.digest())}"

    # -- HTTP ------------------------------------------------------------------------------
    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            if request.path == "/.well-known/openid-configuration":
                self.discovery_fetches += 1
                doc: Any = {
                    "issuer": self.named_issuer or self.url,
                    "jwks_uri": f"{self.url}{self.jwks_path}",
                }
            elif request.path == "/jwks":
                self.jwks_fetches += 1
                doc = {"keys": [self.jwk(kid) for kid in self.published]}
            else:
                doc = None
            failing = self.failing
        if doc is None or failing:
            request.send_response(404 if doc is None else 500)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        body = json.dumps(doc).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        if self.cache_control and request.path == "/jwks":
            request.send_header("Cache-Control", self.cache_control)
        request.end_headers()
        request.wfile.write(body)


BAD_TOKEN_NAMES = (
    "expired",
    "not yet valid",
    "wrong audience",
    "no audience",
    "wrong issuer",
    "alg none",
    "HS256 keyed with the RSA public key",
    "unknown kid",
    "tampered payload",
    "EC alg on an RSA key",
    "issued in the future",
    "no exp",
    "no sub",
    "garbage",
    "x.y.",
)


# What each bad token must be refused with: (name, token maker, error_description). Shared by
# the gateway's tests and the authorizer's, which run the same verification code.
def bad_tokens(issuer: Issuer) -> list[tuple[str, str, str]]:
    now = int(time.time())
    good = issuer.token()
    head, _, signature = good.split(".")
    forged_body = b64(json.dumps(issuer.claims(sub="mallory")).encode())
    return [
        (
            "expired",
            issuer.token(exp=now - 600, iat=now - 1200, nbf=now - 1200),
            "the token has expired",
        ),
        ("not yet valid", issuer.token(nbf=now + 600), "the token is not valid yet (nbf)"),
        (
            "wrong audience",
            issuer.token(aud="someone-else"),
            "the token is for another audience (aud)",
        ),
        (
            "no audience",
            issuer.token(aud=None),
            "the token names no accepted audience (aud/client_id)",
        ),
        (
            "wrong issuer",
            issuer.token(iss="https://evil.example"),
            "the token's issuer (iss) is not the configured one",
        ),
        (
            "alg none",
            issuer.unsigned({"alg": "none", "kid": "rsa-1"}, issuer.claims(), b""),
            "the token's algorithm none is not accepted (accepted: RS256, ES256)",
        ),
        (
            "HS256 keyed with the RSA public key",
            issuer.hs256_with_public_key("rsa-1"),
            "the token's algorithm HS256 is not accepted (accepted: RS256, ES256)",
        ),
        ("unknown kid", issuer.token("unpublished"), "the token's signing key (kid) is not known"),
        (
            "tampered payload",
            f"{head}.{forged_body}.{signature}",
            "the token's signature does not verify",
        ),
        (
            "EC alg on an RSA key",
            _ec_alg_on_rsa_key(issuer),
            "the token's algorithm ES256 does not match its signing key",
        ),
        (
            "issued in the future",
            issuer.token(iat=now + 600, nbf=None),
            "the token's iat is in the future",
        ),
        ("no exp", issuer.token(exp=None), "the token has no `exp` claim"),
        ("no sub", issuer.token(sub=None), "the token has no `sub` claim"),
        ("garbage", "abc.def.ghi", "the token is not a well-formed JWT"),
        ("x.y.", "x.y.", "the token is not a well-formed JWT"),
    ]


def _ec_alg_on_rsa_key(issuer: Issuer) -> str:
    """Signed ES256 by an EC key, but naming the issuer's RSA key: the key type must decide."""
    private, _ = issuer.keys["ec-1"]
    return jwt.encode(issuer.claims(), private, algorithm="ES256", headers={"kid": "rsa-1"})


def standard_issuer(**kwargs: Any) -> Issuer:
    """RSA ``rsa-1`` and EC ``ec-1`` published; ``unpublished`` (RSA) known only to the test."""
    issuer = Issuer(**kwargs)
    issuer.add_key("rsa-1", "RSA")
    issuer.add_key("ec-1", "EC")
    issuer.add_key("unpublished", "RSA", publish=False)
    return issuer.start()
