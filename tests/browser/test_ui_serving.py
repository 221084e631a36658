"""How the gateway serves the chat page: headers, the API-key guard, on/off switches."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from llm_gateway import ui
from llm_gateway.config import Settings
from llm_gateway.ui import CONTENT_SECURITY_POLICY
from tests.processes import serving

from .conftest import API_KEY, Served


def test_banner_names_the_chat_page(served: Served) -> None:
    assert f"Chat UI: {served.url}/ui/" in served.banner


def test_page_and_assets_carry_the_strict_csp(http: httpx.Client) -> None:
    for path, media_type in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/vendor/markdown-it.min.js", "text/javascript"),
        ("/ui/vendor/purify.min.js", "text/javascript"),
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
    assert set(recorded) == {"markdown-it.min.js", "purify.min.js"}
    for name, digest in recorded.items():
        served = http.get(f"/ui/vendor/{name}").content
        assert hashlib.sha256(served).hexdigest() == digest, name
        assert b"eval(" not in served and b"new Function(" not in served, name
    licences = {p.name for p in (vendor / "licenses").iterdir()}
    assert {"markdown-it.LICENSE", "dompurify.LICENSE"} <= licences


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
