"""Signed-in users over HTTP (SPEC §5.3): a real local issuer (discovery + JWKS on 127.0.0.1),
tokens minted with PyJWT, the gateway served by uvicorn, the model by the emulator through
boto3. "No model call" is counted at the emulator; JWKS fetches are counted at the issuer."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from llm_gateway.config import Settings
from llm_gateway.config.loader import parse_config
from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.identity import jwks
from tests.issuer import (
    AUDIENCE,
    BAD_TOKEN_NAMES,
    CLIENT_ID,
    Issuer,
    bad_tokens,
    standard_issuer,
)
from tests.processes import free_port

ENDPOINT = "identity-endpoint"
PARTNER_KEY = "sk-partner-0123456789abcdef"
CHAT = {"model": "id-a", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
GEN = {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}


def identity_config(issuer_url: str, **jwt: Any) -> Any:
    return parse_config(
        {
            "models": [
                {"name": "id-a", "endpoint": ENDPOINT, "template": "chatml"},
                {"name": "id-b", "endpoint": ENDPOINT, "template": "chatml"},
            ],
            "auth": {
                "jwt": {
                    "issuer": issuer_url,
                    "audience": [AUDIENCE],
                    "client_id": CLIENT_ID,
                    "leeway_seconds": 30,
                    "tenant_claim": "org",
                    "models_claim": "models",
                    **jwt,
                }
            },
        },
        "tests",
    )


@pytest.fixture(scope="module")
def endpoint(emulator: Emulator) -> Callable[[], int]:
    """The emulated endpoint behind both models; returns a reader of its invocation count."""
    emulator.set_endpoint(ENDPOINT, EndpointSpec.model_validate({"tgi_version": "3.x"}))
    return lambda: emulator.stats_for(ENDPOINT).requests


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = standard_issuer()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def gw(start_gateway: Callable[..., str], issuer: Issuer, endpoint: Any) -> str:
    """Tokens beside a partner's API key."""
    settings = Settings(api_keys=(f"partner:{PARTNER_KEY}",))
    return start_gateway(identity_config(issuer.url), settings)


@pytest.fixture(scope="module")
def tokens_only(start_gateway: Callable[..., str], issuer: Issuer, endpoint: Any) -> str:
    """``auth.jwt`` and no GATEWAY_API_KEYS: still nothing is anonymous."""
    return start_gateway(identity_config(issuer.url), Settings())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The key cache's clock, moved by hand: ``clock[0] += 31``."""
    now = [1_000_000.0]
    monkeypatch.setattr(jwks, "CLOCK", lambda: now[0])
    return now


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def challenge(description: str) -> str:
    return f'Bearer error="invalid_token", error_description="{description}"'


# -- the bad-token table -------------------------------------------------------------------


def test_the_table_is_complete(issuer):
    assert tuple(name for name, _, _ in bad_tokens(issuer)) == BAD_TOKEN_NAMES


@pytest.mark.parametrize("name", BAD_TOKEN_NAMES)
def test_a_bad_token_is_401_saying_why_and_never_reaches_the_model(gw, issuer, endpoint, name):
    _, token, description = next(t for t in bad_tokens(issuer) if t[0] == name)
    before = endpoint()
    with httpx.Client(base_url=gw, timeout=30) as client:
        openai = client.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        tgi = client.post("/generate", json=GEN, headers=bearer(token))
        stream = client.post("/generate_stream", json=GEN, headers=bearer(token))
    assert openai.status_code == tgi.status_code == stream.status_code == 401
    for response in (openai, tgi, stream):
        assert response.headers["www-authenticate"] == challenge(description)
        assert response.headers["content-type"] == "application/json"
        assert token not in response.text and token not in str(response.headers)
    assert openai.json() == {
        "error": {
            "message": f"Invalid token: {description}",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_token",
        }
    }
    assert (
        tgi.json()
        == stream.json()
        == {
            "error": f"Invalid token: {description}",
            "error_type": "authentication",
        }
    )
    assert endpoint() == before  # zero model calls


def test_rsa_and_ec_tokens_reach_the_model(gw, issuer, endpoint):
    before = endpoint()
    with httpx.Client(base_url=gw, timeout=30) as client:
        for kid in ("rsa-1", "ec-1"):
            r = client.post("/v1/chat/completions", json=CHAT, headers=bearer(issuer.token(kid)))
            assert r.status_code == 200, r.text
            assert r.json()["object"] == "chat.completion"
            r = client.post("/generate", json=GEN, headers=bearer(issuer.token(kid)))
            assert r.status_code == 200 and "generated_text" in r.json()
    assert endpoint() == before + 4
    assert "gateway" in r.headers["server-timing"]  # Server-Timing unaffected


def test_token_shapes_of_real_issuers_are_accepted(gw, issuer):
    """A Cognito access token (no ``aud``, a ``client_id``); an ID token for the chat page's
    client (``aud`` = client id, as a list, the way oidc-provider-mock writes it); a token
    without ``kid`` checked against the one key of its type (oidc-provider-mock 0.3.4)."""
    cognito_access = issuer.token(aud=None, client_id=AUDIENCE, token_use="access")
    id_token = issuer.token(aud=[CLIENT_ID])
    private, _ = issuer.keys["rsa-1"]
    import jwt as pyjwt

    no_kid = pyjwt.encode(issuer.claims(), private, algorithm="RS256")
    foreign_client = issuer.token(aud=None, client_id="another-app")
    with httpx.Client(base_url=gw, timeout=30) as client:
        for token in (cognito_access, id_token, no_kid):
            assert client.get("/v1/models", headers=bearer(token)).status_code == 200
        refused = client.get("/v1/models", headers=bearer(foreign_client))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == challenge(
        "the token names no accepted audience (aud/client_id)"
    )


# -- API keys beside tokens; nothing anonymous ----------------------------------------------


def test_api_keys_and_tokens_side_by_side_concurrently(gw, issuer, endpoint):
    """Twenty requests at once, half with a partner key (both headers), half with tokens."""
    before = endpoint()

    def call(i: int) -> int:
        if i % 4 == 0:
            headers = {"x-api-key": PARTNER_KEY}
        elif i % 4 == 1:
            headers = bearer(PARTNER_KEY)
        else:
            headers = bearer(issuer.token("rsa-1" if i % 2 else "ec-1", sub=f"user-{i}"))
        with httpx.Client(base_url=gw, timeout=30) as client:
            return client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(call, range(20))) == [200] * 20
    assert endpoint() == before + 20


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "sk-not-a-partner-key"}, {"authorization": "Bearer sk-not-a-key"}],
)
def test_without_a_valid_key_or_token_it_is_401(gw, tokens_only, endpoint, headers):
    before = endpoint()
    message = (
        "Missing or invalid credentials: send a signed-in user's token as `Authorization: "
        "Bearer <token>`, or an API key as `x-api-key` or `Authorization: Bearer <key>`"
    )
    for url in (gw, tokens_only):  # with GATEWAY_API_KEYS and without
        r = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["message"] == message
        r = httpx.post(f"{url}/generate", json=GEN, headers=headers, timeout=30)
        assert r.json() == {"error": message, "error_type": "authentication"}
    assert endpoint() == before


def test_health_stays_open_and_tokens_work_without_api_keys(tokens_only, issuer):
    assert httpx.get(f"{tokens_only}/health").status_code == 200
    r = httpx.post(
        f"{tokens_only}/v1/chat/completions", json=CHAT, headers=bearer(issuer.token()), timeout=30
    )
    assert r.status_code == 200


# -- identity everywhere ---------------------------------------------------------------------


def test_models_claim_limits_models_with_403_and_filters_the_list(gw, issuer, endpoint):
    limited = bearer(issuer.token(models=["id-a"]))
    before = endpoint()
    with httpx.Client(base_url=gw, timeout=30) as client:
        listed = client.get("/v1/models", headers=limited).json()
        assert [m["id"] for m in listed["data"]] == ["id-a"]
        unlimited = client.get("/v1/models", headers=bearer(issuer.token())).json()
        assert [m["id"] for m in unlimited["data"]] == ["id-a", "id-b"]
        assert client.post("/v1/chat/completions", json=CHAT, headers=limited).status_code == 200
        openai = client.post(
            "/v1/chat/completions", json={**CHAT, "model": "id-b"}, headers=limited
        )
        tgi = client.post("/models/id-b/generate", json=GEN, headers=limited)
        card = client.get("/v1/models/id-b", headers=limited)
        # a space-separated string claim works too; the default model counts as named
        spaced = bearer(issuer.token(models="id-b other"))
        default = client.post("/generate", json=GEN, headers=spaced)
    message = "You are not allowed to use the model 'id-b'"
    assert openai.status_code == tgi.status_code == card.status_code == 403
    assert (
        openai.json()
        == card.json()
        == {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "model",
                "code": "permission_denied",
            }
        }
    )
    assert tgi.json() == {"error": message, "error_type": "permission"}
    assert default.status_code == 403
    assert default.json() == {
        "error": "You are not allowed to use the model 'id-a'",
        "error_type": "permission",
    }
    assert endpoint() == before + 1  # only the allowed call reached the model


def test_the_log_line_and_metrics_name_the_user_and_tenant_never_the_token(gw, issuer, out):
    token = issuer.token(sub="bob", org=["acme", "other-group"])
    r = httpx.post(f"{gw}/v1/chat/completions", json=CHAT, headers=bearer(token), timeout=30)
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    log = out.log(rid)
    assert log["principal"] == "user:bob" and log["tenant"] == "tenant:acme"
    assert "api_key_id" not in log
    emf = out.emf(rid)
    assert emf["principal"] == "user:bob" and emf["principal_kind"] == "user"
    assert emf["tenant"] == "tenant:acme"
    keyed = httpx.post(
        f"{gw}/v1/chat/completions", json=CHAT, headers={"x-api-key": PARTNER_KEY}, timeout=30
    )
    assert out.log(keyed.headers["x-request-id"])["principal"] == "key:partner"
    refused = httpx.post(f"{gw}/generate", json=GEN, headers=bearer(token + "x"), timeout=30)
    assert out.log(refused.headers["x-request-id"])["status"] == 401
    captured = out.text()
    for secret in (token, token.split(".")[1], token.split(".")[2], PARTNER_KEY):
        assert secret not in captured


# -- the key set: rotation, bounded fetches, issuer down -------------------------------------


@pytest.fixture
def fresh(start_gateway: Callable[..., str], endpoint: Any) -> Iterator[Callable[..., Any]]:
    """A new issuer and a gateway of its own (a cold key cache) per test."""
    issuers: list[Issuer] = []

    def make(**kwargs: Any) -> tuple[Issuer, str]:
        issuer = standard_issuer(**kwargs)
        issuers.append(issuer)
        return issuer, start_gateway(identity_config(issuer.url), Settings())

    yield make
    for issuer in issuers:
        issuer.stop()


def status(url: str, token: str) -> int:
    return httpx.get(f"{url}/v1/models", headers=bearer(token), timeout=30).status_code


def test_rotation_is_accepted_with_bounded_fetches(fresh, clock):
    issuer, url = fresh()
    assert status(url, issuer.token("rsa-1")) == 200
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)
    # The issuer rotates: a new key replaces rsa-1.
    issuer.add_key("rsa-2", "RSA")
    issuer.published.remove("rsa-1")
    # Within 30 s of the last fetch an unknown kid is refused without asking the issuer.
    assert status(url, issuer.token("rsa-2")) == 401
    assert issuer.jwks_fetches == 1
    clock[0] += 31
    # Twenty requests at once with the new key: one fetch, all accepted.
    with ThreadPoolExecutor(20) as pool:
        assert set(pool.map(lambda _: status(url, issuer.token("rsa-2")), range(20))) == {200}
    assert issuer.jwks_fetches == 2
    # Made-up kids, at once and later: at most one fetch per 30 s.
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda i: status(url, issuer.token("unpublished")), range(20)))
    assert set(codes) == {401} and issuer.jwks_fetches == 2
    clock[0] += 31
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda i: status(url, issuer.token("unpublished")), range(20)))
    assert set(codes) == {401} and issuer.jwks_fetches == 3
    assert issuer.discovery_fetches == 1  # discovery happens once per process


def test_the_key_set_is_kept_for_its_max_age_and_stale_keys_survive_an_outage(fresh, clock):
    issuer, url = fresh(cache_control="public, max-age=120")
    assert status(url, issuer.token()) == 200 and issuer.jwks_fetches == 1
    clock[0] += 100
    assert status(url, issuer.token()) == 200 and issuer.jwks_fetches == 1
    clock[0] += 21  # past max-age: fetched again
    assert status(url, issuer.token()) == 200 and issuer.jwks_fetches == 2
    issuer.failing = True
    clock[0] += 121
    assert status(url, issuer.token()) == 200  # the refresh failed; the cached key still works
    assert issuer.jwks_fetches == 3
    assert status(url, issuer.token("unpublished")) == 503  # a new key cannot be ruled out


def test_issuer_down_with_no_cached_key_is_503_in_the_dialects_shape(
    start_gateway, issuer, endpoint
):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    url = start_gateway(identity_config(down), Settings())
    before = endpoint()
    token = issuer.token(iss=down)
    openai = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(token), timeout=30)
    tgi = httpx.post(f"{url}/generate", json=GEN, headers=bearer(token), timeout=30)
    message = "The token issuer's signing keys cannot be fetched right now; try again shortly"
    assert openai.status_code == tgi.status_code == 503
    assert openai.json() == {
        "error": {"message": message, "type": "server_error", "param": None, "code": "unavailable"}
    }
    assert tgi.json() == {"error": message, "error_type": "unavailable"}
    assert openai.headers["retry-after"] == "5" and "www-authenticate" not in openai.headers
    assert endpoint() == before
    assert token not in openai.text + tgi.text + json.dumps(dict(openai.headers))


def test_a_discovery_document_naming_another_issuer_is_never_trusted(start_gateway, endpoint):
    """JWKS poisoning through discovery (OpenID Connect Discovery §4.3): a document that names
    another issuer cannot say where this issuer's keys are, so no token of it verifies."""
    hostile = standard_issuer()
    try:
        hostile.named_issuer = "https://login.example.com"
        url = start_gateway(identity_config(hostile.url), Settings())
        before = endpoint()
        r = httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers=bearer(hostile.token()), timeout=30
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
        assert hostile.jwks_fetches == 0  # the keys it pointed to were never fetched
        assert endpoint() == before
    finally:
        hostile.stop()


def test_a_signed_in_user_is_a_metrics_dimension_when_asked_for(start_gateway, issuer, out):
    url = start_gateway(identity_config(issuer.url), Settings(metrics_key_dimension=True))
    token = issuer.token(sub="dana")
    r = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(token), timeout=30)
    doc = out.emf(r.headers["x-request-id"])
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert [sorted(d) for d in directive["Dimensions"]] == [
        ["model", "principal", "service"],
        ["service"],
    ]
    assert doc["principal"] == "user:dana"


def test_a_forged_api_gateway_context_is_no_credential_outside_lambda(tokens_only, endpoint):
    """Only inside Lambda does API Gateway's own context (its checked key's id) count."""
    forged = json.dumps({"requestId": "x", "identity": {"apiKeyId": "k1a2b3c4d5"}})
    r = httpx.post(
        f"{tokens_only}/v1/chat/completions",
        json=CHAT,
        headers={"x-amzn-request-context": forged},
        timeout=30,
    )
    assert r.status_code == 401


def test_lambda_streaming_mode_trusts_the_web_adapters_context(
    start_gateway, issuer, endpoint, monkeypatch
):
    """Behind the Lambda Web Adapter (uvicorn inside Lambda) API Gateway's context arrives in
    ``x-amzn-request-context``: there, and only there, its checked key id counts."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "llm-gateway")
    url = start_gateway(identity_config(issuer.url), Settings())
    context = json.dumps({"requestId": "r-1", "identity": {"apiKeyId": "k1a2b3c4d5"}})
    keyed = httpx.post(
        f"{url}/v1/chat/completions",
        json=CHAT,
        headers={"x-amzn-request-context": context, "x-api-key": PARTNER_KEY},
        timeout=30,
    )
    assert keyed.status_code == 200
    bare = json.dumps({"requestId": "r-2", "identity": {"apiKeyId": None}})
    refused = httpx.post(
        f"{url}/v1/chat/completions",
        json=CHAT,
        headers={"x-amzn-request-context": bare},
        timeout=30,
    )
    assert refused.status_code == 401


# -- buffered Lambda mode (Mangum): the same verification -------------------------------------

EVENTS = Path(__file__).resolve().parent.parent / "events"


class LambdaContext:
    """What Lambda passes as ``context`` (the attributes Powertools reads)."""

    function_name = "llm-gateway"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:llm-gateway"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def lambda_handler(issuer, emulator, monkeypatch) -> Iterator[Callable[..., Any]]:
    config = {"models": [{"name": "id-a", "endpoint": ENDPOINT, "template": "chatml"}]}
    monkeypatch.setenv("GATEWAY_CONFIG_JSON", json.dumps(config))
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", issuer.url)  # as the stack sets them
    monkeypatch.setenv("GATEWAY_JWT_AUDIENCE", f"other,{AUDIENCE}")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "llm-gateway")
    for name in ("llm_gateway.handler", "llm_gateway.asgi"):
        sys.modules.pop(name, None)
    module = importlib.import_module("llm_gateway.handler")

    def invoke(headers: dict[str, str], api_key_id: str | None) -> dict[str, Any]:
        event = json.loads((EVENTS / "models.json").read_text())
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["requestContext"]["identity"]["apiKeyId"] = api_key_id
        response = module.handler(event, LambdaContext())
        response["headers"] = {k.lower(): v for k, v in response["headers"].items()}
        return response

    yield invoke
    for name in ("llm_gateway.handler", "llm_gateway.asgi"):
        sys.modules.pop(name, None)


def test_lambda_buffered_mode_verifies_tokens_and_trusts_api_gateways_keys(lambda_handler, issuer):
    # A partner's key, already checked by API Gateway (its id in the request context).
    assert lambda_handler({"x-api-key": PARTNER_KEY}, "k1a2b3c4d5")["statusCode"] == 200
    # A signed-in user: metered under the frontend's key by API Gateway, verified again here.
    limited = issuer.token(models=["id-a"])
    ok = lambda_handler(bearer(limited), "frontend-key-id")
    assert ok["statusCode"] == 200 and '"id-a"' in ok["body"]
    bad = lambda_handler(bearer(issuer.token(aud="other-api")), "frontend-key-id")
    assert bad["statusCode"] == 401
    assert bad["headers"]["www-authenticate"] == challenge(
        "the token is for another audience (aud)"
    )
    # Nothing is anonymous: no key checked by API Gateway and no token.
    assert lambda_handler({}, None)["statusCode"] == 401


# -- the test provider of `serve --sign-in` ---------------------------------------------------


def sign_in_with_oidc_provider_mock(issuer: str, client_id: str, sub: str) -> dict[str, Any]:
    """The authorization code flow with PKCE against oidc-provider-mock, as the chat page runs
    it (the user is picked by posting ``sub`` to the authorize endpoint)."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    params = {
        "client_id": client_id,
        "redirect_uri": "http://127.0.0.1:1/ui/",
        "response_type": "code",
        "scope": "openid",
        "state": "s",
        "nonce": "n",
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    authorize = f"{discovery['authorization_endpoint']}?{urlencode(params)}"
    redirect = httpx.post(authorize, data={"sub": sub}).headers["location"]
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    answer = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "client_id": client_id,
            "client_secret": "unused",  # 0.3.4 refuses a client that sends none
            "code_verifier": verifier,
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_id_tokens_of_the_local_test_provider_sign_in(start_gateway, endpoint):
    """oidc-provider-mock issues opaque access tokens, so the chat page sends the ID token
    (``aud`` = the client id, no ``kid`` in 0.3.4): accepted with ``client_id`` configured."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=0) as server:
        issuer = f"http://localhost:{server.server_port}"
        config = identity_config(issuer, audience=[], client_id="chat-page")
        url = start_gateway(config, Settings())
        tokens = sign_in_with_oidc_provider_mock(issuer, "chat-page", "erin")
        before = endpoint()
        ok = httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers=bearer(tokens["id_token"]), timeout=30
        )
        opaque = httpx.post(
            f"{url}/v1/chat/completions",
            json=CHAT,
            headers=bearer(tokens["access_token"]),
            timeout=30,
        )
    assert ok.status_code == 200, ok.text
    assert opaque.status_code == 401  # not a JWT, so an API key, and not a valid one
    assert endpoint() == before + 1
