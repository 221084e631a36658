"""Security by default: CORS from an allow-list, constant-time key checks, nothing secret logged."""

from __future__ import annotations

import httpx

from llm_gateway.config import Settings
from llm_gateway.http.middleware import key_matches, presented_key
from tests.conftest import gateway_config


def test_cors_only_for_allowed_origins(start_gateway):
    url = start_gateway(
        gateway_config(), Settings(cors_origins=("https://app.example",), api_keys=("k",))
    )
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os",
    }
    with httpx.Client(base_url=url) as c:
        ok = c.options(
            "/v1/chat/completions", headers={"origin": "https://app.example", **preflight}
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        allowed = ok.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "x-stainless-os" in allowed  # SDK headers pass
        bad = c.options(
            "/v1/chat/completions", headers={"origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in bad.headers
        # a real request from the allowed origin can read the answer and its timing headers,
        # even when it is an error (browsers then see the JSON, not an opaque failure)
        r = c.post("/generate", json={"inputs": "x"}, headers={"origin": "https://app.example"})
        assert (
            r.status_code == 401
            and r.headers["access-control-allow-origin"] == "https://app.example"
        )
        exposed = [h.strip() for h in r.headers["access-control-expose-headers"].split(",")]
        # a browser app can read the budget left and what the gateway did, not only the id
        for name in (
            "x-request-id",
            "retry-after",
            "x-ratelimit-remaining-tokens",
            "x-llm-gateway-served-by",
            "x-llm-gateway-dropped-params",
            "www-authenticate",
        ):
            assert name in exposed
        r = c.post("/generate", json={"inputs": "x"}, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_no_cors_headers_without_an_allow_list(client):
    r = client.options(
        "/generate",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_key_extraction_and_comparison():
    from starlette.datastructures import Headers

    assert presented_key(Headers({"x-api-key": " k1 "})) == "k1"
    assert presented_key(Headers({"authorization": "bearer k2"})) == "k2"
    assert presented_key(Headers({"authorization": "Basic abc"})) is None
    assert key_matches("k2", ("k1", "k2")) and not key_matches("k3", ("k1", "k2"))
    assert not key_matches(None, ("k1",)) and not key_matches("", ("k1",))


def test_key_comparison_is_constant_time_against_every_key(monkeypatch):
    """Every allowed key is compared with ``hmac.compare_digest`` (constant time per pair),
    and the loop never stops at a match: where a key sits in the list cannot be timed."""
    import hmac

    real = hmac.compare_digest
    compared: list[tuple[bytes, bytes]] = []

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    allowed = tuple(f"sk-key-number-{i:02d}-xxxxxxxx" for i in range(6))
    for presented in (allowed[0], allowed[3], allowed[-1], "sk-not-a-key", ""):
        compared.clear()
        assert key_matches(presented, allowed) is (presented in allowed)
        assert len(compared) == len(allowed)  # no early exit, whatever matched
        assert {b for _, b in compared} == {k.encode() for k in allowed}
