"""``llm-gateway serve --sign-in`` (issue #20 item 6): an OpenID Connect TEST provider
(oidc-provider-mock) on loopback, ``auth.jwt`` pointed at it, and the chat page told how to sign
in. Run as a user runs it (a subprocess), the tokens got over HTTP exactly as the page gets
them: authorization code with PKCE, public client, no secret."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.processes import serving

BANNER = re.compile(
    r"Sign-in: TEST OpenID Connect provider .* at (?P<issuer>http://127\.0\.0\.1:\d+)\n"
    r"  auth\.jwt: issuer (?P=issuer), audience and client_id (?P<client>[0-9a-f-]{36})\n"
)


def sign_in(issuer: str, client_id: str, redirect_uri: str, user: str) -> dict[str, str]:
    """The page's flow, by hand: discovery, the authorization request with a PKCE challenge,
    the provider's form answered as ``user``, then the code exchanged with the verifier."""
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    authorize = httpx.post(
        discovery["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": "s",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
        data={"sub": user},
    )
    assert authorize.status_code == 302, authorize.text
    location = authorize.headers["location"]
    assert location.startswith(redirect_uri + "?")
    code = parse_qs(urlsplit(location).query)["code"][0]
    origin = redirect_uri.removesuffix("/ui/")
    token = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,  # a public client: no secret
            "code_verifier": verifier,
        },
        headers={"Origin": origin},
    )
    assert token.status_code == 200, token.text
    # The page is another origin: the browser lets it read the answer only with CORS.
    assert token.headers["access-control-allow-origin"] == origin
    body: dict[str, str] = token.json()
    return body


def test_serve_sign_in_runs_a_test_provider_and_points_auth_jwt_at_it(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with serving("--sign-in", "--no-metrics", "--log-level", "warning", env=env, log=log) as url:
        banner = log.read_text()
        match = BANNER.search(banner)
        assert match, banner
        issuer, client_id = match["issuer"], match["client"]
        assert "never for real users" in banner
        assert f"Open {url}/ui/, press Sign in" in banner

        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration")
        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == issuer
        assert discovery.headers["access-control-allow-origin"] == url  # for the page only

        config = httpx.get(f"{url}/ui/config.json")
        assert config.json() == {
            "sign_in": {"issuer": issuer, "client_id": client_id, "scope": "openid profile email"}
        }
        page = httpx.get(f"{url}/ui/")
        assert f"connect-src 'self' {issuer};" in page.headers["content-security-policy"]

        # auth.jwt is on: nothing is anonymous any more...
        assert httpx.get(f"{url}/v1/models").status_code == 401
        # ...and the provider's ID token (its access tokens are opaque) is accepted.
        tokens = sign_in(issuer, client_id, f"{url}/ui/", "alice")
        assert tokens["id_token"].count(".") == 2 and tokens["access_token"].count(".") != 2
        bearer = {"Authorization": f"Bearer {tokens['id_token']}"}
        models = httpx.get(f"{url}/v1/models", headers=bearer)
        assert models.status_code == 200, models.text
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "oasst-pythia-12b", "messages": [{"role": "user", "content": "Hi"}]},
            headers=bearer,
            timeout=30,
        )
        assert chat.status_code == 200, chat.text
        # The demo gives each user a budget (in the embedded store): its headers tell the page
        # what is left.
        assert "Each user may use 20,000 tokens a minute and 200,000 a day" in banner
        assert int(chat.headers["x-ratelimit-remaining-tokens"]) < int(
            chat.headers["x-ratelimit-limit-tokens"]
        )
        # The opaque access token is not a JWT: the gateway takes it for an API key, and
        # there are no keys here.
        opaque = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert httpx.get(f"{url}/v1/models", headers=opaque).status_code == 401


def test_a_redirect_uri_other_than_the_page_is_refused(tmp_path: Path) -> None:
    """The page's client is registered with the page as its only redirect URI."""
    log = tmp_path / "serve.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with serving("--sign-in", "--no-metrics", "--log-level", "warning", env=env, log=log):
        match = BANNER.search(log.read_text())
        assert match
        with pytest.raises(AssertionError):
            sign_in(match["issuer"], match["client"], "http://127.0.0.1:1/elsewhere/", "mallory")


def test_serve_without_sign_in_offers_none(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with serving("--no-metrics", "--log-level", "warning", env=env, log=log) as url:
        assert "Sign-in" not in log.read_text()
        assert httpx.get(f"{url}/ui/config.json").json() == {"sign_in": None}
        assert httpx.get(f"{url}/v1/models").status_code == 200  # no keys, no auth.jwt: open


def test_sign_in_without_the_test_provider_installed_says_what_to_install(
    tmp_path: Path,
) -> None:
    """The provider is an optional dependency (the ``sign-in`` extra): without it, a clear
    message and exit status 2, no traceback, no server."""
    shadow = tmp_path / "shadow" / "oidc_provider_mock"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError('not installed', name='oidc_provider_mock')\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(shadow.parent), *sys.path]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "llm_gateway", "serve", "--sign-in", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "llm-gateway: --sign-in needs the test provider (oidc_provider_mock is missing): "
        "pip install 'llm-gateway[sign-in]'"
    )
    assert "Traceback" not in done.stderr and "listening" not in done.stdout
