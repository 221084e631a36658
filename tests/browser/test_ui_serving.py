"""How the gateway serves the chat page: headers, the API-key guard, on/off switches."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from llm_gateway import ui
from llm_gateway.config import Settings
from llm_gateway.local import BackgroundServer
from llm_gateway.ui import CONTENT_SECURITY_POLICY
from tests.processes import serving

from .conftest import API_KEY, Served


def test_banner_names_the_chat_page(served: Served) -> None:
    assert f"Chat UI: {served.url}/ui/" in served.banner


def test_page_and_assets_carry_the_strict_csp(http: httpx.Client) -> None:
    for path, media_type in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/signin.js", "text/javascript"),
        ("/ui/config.json", "application/json"),
        ("/ui/style.css", "text/css"),
        ("/ui/vendor/markdown-it.min.js", "text/javascript"),
        ("/ui/vendor/purify.min.js", "text/javascript"),
        ("/ui/vendor/oidc-client-ts.min.js", "text/javascript"),
    ]:
        r = http.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(media_type)
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self';" in CONTENT_SECURITY_POLICY
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-cache"
        # Revalidation is cheap: the same ETag answers 304 without a body.
        again = http.get(path, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_page_has_no_inline_script_or_style(http: httpx.Client) -> None:
    html = http.get("/ui/").text
    assert '<script src="app.js" defer></script>' in html
    assert "<style" not in html and "style=" not in html and "onclick" not in html.lower()
    # Every script is one of the page's own files: nothing from a CDN.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == [
        '<script src="vendor/markdown-it.min.js" defer>',
        '<script src="vendor/purify.min.js" defer>',
        '<script src="signin.js" defer>',
        '<script src="app.js" defer>',
    ]
    assert "http://" not in html and "https://" not in html


def test_vendored_libraries_are_the_ones_recorded(http: httpx.Client) -> None:
    """vendor/VERSIONS records the sha256 of each file as npm published it (written by
    scripts/vendor_ui.sh): a hand edit, or a re-vendor without updating it, fails here. The
    licences travel with them."""
    vendor = Path(ui.__file__).parent / "static" / "vendor"
    recorded = dict(
        re.findall(
            r"file:\s+(\S+) = npm .*\n\s+sha256:\s+([0-9a-f]{64})",
            (vendor / "VERSIONS").read_text(),
        )
    )
    assert set(recorded) == {"markdown-it.min.js", "purify.min.js", "oidc-client-ts.min.js"}
    for name, digest in recorded.items():
        served = http.get(f"/ui/vendor/{name}").content
        assert hashlib.sha256(served).hexdigest() == digest, name
        assert b"eval(" not in served and b"new Function(" not in served, name
    licences = {p.name for p in (vendor / "licenses").iterdir()}
    assert {
        "markdown-it.LICENSE",
        "dompurify.LICENSE",
        "oidc-client-ts.LICENSE",
        "jwt-decode.LICENSE",
    } <= licences


def test_without_sign_in_the_page_config_offers_none(http: httpx.Client) -> None:
    """No ``auth.jwt.client_id``: config.json says so (the page shows no Sign in, loads no
    OpenID Connect library) and the CSP lets the page connect to its own origin only."""
    r = http.get("/ui/config.json")
    assert r.status_code == 200
    assert r.content == b'{"sign_in":null}'
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_bare_ui_redirects_relatively_so_stage_prefixes_survive(http: httpx.Client) -> None:
    r = http.get("/ui")
    assert r.status_code == 308
    assert r.headers["location"] == "ui/"


def test_key_guard_lets_the_page_through_but_not_the_api(http: httpx.Client) -> None:
    assert http.get("/ui/").status_code == 200  # no key: the user types it into the page
    assert http.get("/v1/models").status_code == 401
    assert http.get("/v1/models", headers={"x-api-key": API_KEY}).status_code == 200
    # Only /ui and /ui/...: a path that merely starts with "/ui" is not open.
    assert http.get("/uix").status_code == 401
    assert http.get("/ui/no-such-file").status_code == 404  # only the page's own files


def test_ui_is_off_unless_turned_on(start_gateway: Callable[..., str]) -> None:
    off = start_gateway(settings=Settings())
    assert httpx.get(f"{off}/ui/").status_code == 404
    on = start_gateway(settings=Settings(ui=True))
    assert httpx.get(f"{on}/ui/").status_code == 200
    # The page is not part of the API description.
    assert not any(p.startswith("/ui") for p in httpx.get(f"{on}/openapi.json").json()["paths"])


def test_serve_no_ui_turns_the_page_off(tmp_path) -> None:
    log = tmp_path / "serve.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with serving("--no-ui", "--no-metrics", "--log-level", "warning", env=env, log=log) as url:
        assert "Chat UI" not in log.read_text()
        assert httpx.get(f"{url}/ui/").status_code == 404


def test_the_csp_names_the_issuer_and_its_token_endpoints_origin() -> None:
    """Cognito's token endpoint is on the user pool's domain, not the issuer's: the page's
    ``connect-src`` adds the origins of the endpoints oidc-client-ts fetches, read once from
    the issuer's discovery document; only https (or loopback) origins, nothing that could
    widen the policy, and never the navigation-only endpoints."""
    fetched: list[str] = []
    pool = "https://example-pool.auth.us-east-1.amazoncognito.com"

    async def discovery(request: StarletteRequest) -> JSONResponse:
        fetched.append(request.url.path)
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": "https://navigation-only.example/authorize",
                "token_endpoint": f"{pool}/oauth2/token",
                "userinfo_endpoint": "http://plain-http.example/userInfo",
                "revocation_endpoint": "https://x.example; script-src *",
            }
        )

    server = BackgroundServer(
        Starlette(routes=[Route("/pool/.well-known/openid-configuration", discovery)])
    ).start()
    try:
        issuer = f"{server.url}/pool"
        app = FastAPI()
        ui.mount_ui(app, ui.SignIn(issuer, "page-client"))
        with TestClient(app) as client:
            first = client.get("/ui/").headers["content-security-policy"]
            again = client.get("/ui/").headers["content-security-policy"]
            config = client.get("/ui/config.json").json()
    finally:
        server.stop()
    expected = CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'", f"connect-src 'self' {server.url} {pool}"
    )
    assert first == again == expected
    assert fetched == ["/pool/.well-known/openid-configuration"]  # once, then remembered
    assert config == {
        "sign_in": {"issuer": issuer, "client_id": "page-client", "scope": "openid profile email"}
    }


def test_an_unreachable_issuer_leaves_its_own_origin_and_the_page_served() -> None:
    app = FastAPI()
    ui.mount_ui(app, ui.SignIn("http://127.0.0.1:9/issuer", "page-client"))
    with TestClient(app) as client:
        page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'", "connect-src 'self' http://127.0.0.1:9"
    )
