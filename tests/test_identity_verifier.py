"""The verifier and its key cache on their own, against the real local issuer: the event loop is
never blocked by a key-set fetch, the configuration refuses what it must, and the identity
package stays importable on its own (the authorizer ships it)."""

from __future__ import annotations

import ast
import asyncio
import threading
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from llm_gateway.config.loader import ConfigError, load_config_text, with_jwt_env
from llm_gateway.config.schema import JwtConfig
from llm_gateway.http.auth import Authenticator
from llm_gateway.http.state import RequestState
from llm_gateway.identity import IssuerUnavailable, TokenRejected, jwks
from llm_gateway.identity.verifier import Identity, Verifier
from tests.issuer import AUDIENCE, Issuer, standard_issuer

PACKAGE = Path(__file__).parents[1] / "src" / "llm_gateway" / "identity"
MODELS = '{"models": [{"name": "m", "endpoint": "e"}]'


@pytest.fixture
def issuer():
    issuer = standard_issuer()
    yield issuer
    issuer.stop()


def verifier(issuer: Issuer, **kwargs) -> Verifier:
    return Verifier(issuer=issuer.url, audience=[AUDIENCE], leeway_seconds=30, **kwargs)


def test_claims_become_an_identity(issuer):
    v = verifier(issuer, tenant_claim="cognito:groups", models_claim="models")
    token = issuer.token(sub="u-1", **{"cognito:groups": ["acme", "beta"]}, models=["a", "b"])
    assert v.verify(token) == Identity("u-1", "acme", frozenset({"a", "b"}))
    assert v.verify(token).principal == "user:u-1"
    assert v.verify(issuer.token()) == Identity("alice", None, None)
    # another user claim (Cognito's username), numeric ids, a models claim of the wrong shape
    by_name = verifier(issuer, user_claim="username", models_claim="models")
    assert by_name.verify(issuer.token(username=42, models={"a": 1})) == Identity(
        "42", None, frozenset()
    )


def test_over_long_user_and_tenant_ids_are_refused(issuer):
    v = verifier(issuer, tenant_claim="org")
    assert v.verify(issuer.token(sub="u" * 256, org="t" * 256)).user == "u" * 256
    for claims, name in (({"sub": "u" * 257}, "sub"), ({"org": ["t" * 257]}, "org")):
        with pytest.raises(TokenRejected) as refused:
            v.verify(issuer.token(**claims))
        assert refused.value.description == (
            f"the token's `{name}` claim is longer than 256 characters"
        )


def test_leeway_applies_to_exp_and_nbf(issuer):
    import time

    now = int(time.time())
    v = verifier(issuer)
    assert v.verify(issuer.token(exp=now - 10)).user == "alice"  # within 30 s of leeway
    assert v.verify(issuer.token(nbf=now + 10)).user == "alice"
    with pytest.raises(TokenRejected) as refused:
        v.verify(issuer.token(exp=now - 45))
    assert refused.value.reason == "expired"


def test_a_fetch_never_runs_on_the_event_loop(issuer, monkeypatch):
    """The gateway's authenticator verifies a token whose key must be fetched on a thread:
    the issuer's answer is held until another task on the same loop releases it, which can
    only happen if the loop is free while the fetch waits (else the wait times out)."""
    config = JwtConfig(issuer=issuer.url, audience=[AUDIENCE])
    auth = Authenticator({}, config, on_lambda=False)
    token = issuer.token()
    assert auth.verifier is not None and not auth.verifier.ready(token)
    gate = threading.Event()
    original = jwks.fetch_json

    def held_fetch(url, timeout):
        assert gate.wait(10), "the event loop was blocked by the fetch"
        return original(url, timeout)

    monkeypatch.setattr(jwks, "fetch_json", held_fetch)
    scope = {"type": "http", "method": "GET", "path": "/v1/models", "headers": []}
    headers = Headers({"authorization": f"Bearer {token}"})
    state = RequestState()

    async def release() -> None:
        await asyncio.sleep(0.01)
        gate.set()

    async def scenario():
        return await asyncio.gather(auth.check(scope, headers, state), release())

    assert asyncio.run(scenario())[0] is None
    assert state.user == "alice" and state.record.principal == "user:alice"
    assert auth.verifier.ready(token)  # cached now: verified inline from here on


def test_requests_arriving_during_a_fetch_wait_for_it_instead_of_refusing(issuer, monkeypatch):
    """Rotation under load: the first request with a new ``kid`` fetches (held open here), the
    others arrive while it runs; all are accepted and the issuer sees one fetch."""
    now = [1_000_000.0]
    monkeypatch.setattr(jwks, "CLOCK", lambda: now[0])
    v = verifier(issuer)
    assert v.verify(issuer.token("rsa-1")).user == "alice" and issuer.jwks_fetches == 1
    issuer.add_key("rsa-2")
    now[0] += 31
    started, release = threading.Event(), threading.Event()
    original = jwks.fetch_json

    def held_fetch(url, timeout):
        started.set()
        assert release.wait(10)
        return original(url, timeout)

    monkeypatch.setattr(jwks, "fetch_json", held_fetch)
    token = issuer.token("rsa-2")
    results: list[object] = []

    def verify() -> None:
        try:
            results.append(v.verify(token).user)
        except Exception as exc:
            results.append(exc)

    first = threading.Thread(target=verify)
    first.start()
    assert started.wait(10)
    assert not v.ready(token)  # a request arriving now goes to a thread, never blocks a loop
    others = [threading.Thread(target=verify) for _ in range(10)]
    for thread in others:
        thread.start()
    release.set()
    for thread in (first, *others):
        thread.join(10)
    assert results == ["alice"] * 11
    assert issuer.jwks_fetches == 2


def test_unreachable_issuer_is_unavailable_not_rejected():
    v = Verifier(issuer="http://127.0.0.1:9", audience=["a"])
    issuer = standard_issuer()
    try:
        with pytest.raises(IssuerUnavailable):
            v.verify(issuer.token(iss="http://127.0.0.1:9"))
    finally:
        issuer.stop()


def test_redirects_are_not_followed_and_http_is_refused_off_loopback():
    with pytest.raises(IssuerUnavailable, match="https is required"):
        jwks.fetch_json("http://issuer.example/jwks", 1)
    assert not jwks.is_allowed_url("ftp://127.0.0.1/x") and jwks.is_allowed_url("https://x/")


def test_the_verifier_refuses_symmetric_algorithms_whatever_it_is_given():
    v = Verifier(issuer="https://i.example", audience=["a"], algorithms=["HS256", "RS256", "none"])
    assert v.algorithms == ("RS256",)
    with pytest.raises(ValueError, match="no asymmetric algorithm"):
        Verifier(issuer="https://i.example", audience=["a"], algorithms=["HS256"])


# -- configuration (SPEC §4) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwt", "message"),
    [
        (
            '{"issuer": "https://i.example", "audience": ["a"], "algorithms": ["HS256"]}',
            "field 'auth.jwt.algorithms': HS256 not accepted: asymmetric algorithms only",
        ),
        (
            '{"issuer": "https://i.example", "audience": ["a"], "algorithms": ["none"]}',
            "none not accepted",
        ),
        (
            '{"issuer": "http://issuer.example", "audience": ["a"]}',
            "field 'auth.jwt.issuer': 'http://issuer.example' must be an https:// URL",
        ),
        ('{"issuer": "https://i.example"}', "auth.jwt needs an audience (or a client_id)"),
        ('{"issuer": "https://i.example", "audience": "a", "leeway": 5}', "leeway"),
    ],
)
def test_bad_auth_configuration_fails_at_start_up(jwt, message):
    with pytest.raises(ConfigError, match=r"in f\.yaml") as failed:
        load_config_text(MODELS + f', "auth": {{"jwt": {jwt}}}}}', "f.yaml")
    assert message in str(failed.value)


def test_environment_sets_issuer_audience_and_client_id():
    config = load_config_text(MODELS + "}", "f")
    env = {
        "GATEWAY_JWT_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X",
        "GATEWAY_JWT_AUDIENCE": "client-1, client-2",
        "GATEWAY_JWT_CLIENT_ID": "chat",
    }
    jwt = with_jwt_env(config, env).auth.jwt
    assert jwt.issuer == env["GATEWAY_JWT_ISSUER"] and jwt.audience == ["client-1", "client-2"]
    assert jwt.audiences == ["client-1", "client-2", "chat"]
    assert jwt.algorithms == ["RS256", "ES256"] and jwt.leeway_seconds == 60
    assert with_jwt_env(config, {}) is config
    loopback = with_jwt_env(config, {**env, "GATEWAY_JWT_ISSUER": "http://localhost:9400"})
    assert loopback.auth.jwt.issuer == "http://localhost:9400"
    with pytest.raises(ConfigError, match="must be an https:// URL"):
        with_jwt_env(config, {**env, "GATEWAY_JWT_ISSUER": "http://idp.example"})


def test_the_identity_package_imports_only_itself_pyjwt_and_the_standard_library():
    """The authorizer ships this directory as is (tests/deploy/test_authorizer.py)."""
    allowed = {"jwt", "__future__"}
    for source in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                top = (node.module or "").split(".")[0]
                assert top in allowed or top in _stdlib(), f"{source.name}: {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top in allowed or top in _stdlib(), f"{source.name}: {alias.name}"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names)
