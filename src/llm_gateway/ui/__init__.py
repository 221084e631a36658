"""The chat page at ``/ui/``: one static HTML page, its scripts, its style sheet and three
vendored libraries (markdown-it, DOMPurify, oidc-client-ts: ``static/vendor/``, re-vendored from
npm by ``scripts/vendor_ui.sh``), shipped in the package (no build step) and served by the
gateway itself when ``GATEWAY_UI`` is true.

The page is the reference browser client of the OpenAI dialect: it lists ``/v1/models`` and
streams ``/v1/chat/completions``. Its URLs are relative (``../v1/...``), so it also works under
an API Gateway stage prefix such as ``/prod/ui/``.

Only the known files are served (no path from the request reaches the filesystem), each with a
strict Content-Security-Policy: scripts only from this origin, no inline script or style, no
eval, no request to any other origin but the sign-in issuer's. Model answers are rendered as
Markdown with raw HTML disabled and the result sanitized by DOMPurify before it reaches the
page; the CSP is the second line of defence.

Sign-in (``auth.jwt.client_id`` set): the page reads ``config.json`` (the issuer and the public
client id, never a secret) and signs in with the authorization code flow and PKCE
(``signin.js``); the issuer's origin (and its token endpoint's, see :mod:`.sign_in`) are then
the only other origins the CSP lets it connect to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from llm_gateway.ui.sign_in import ConnectSources, SignIn, page_config

__all__ = ["CONTENT_SECURITY_POLICY", "SignIn", "mount_ui"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Same headers on every UI response; the assets are small and unversioned, so browsers keep
# them but revalidate each time (a cheap 304 thanks to the ETag) and never show a stale page
# after an upgrade.
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "signin.js": ("signin.js", "text/javascript; charset=utf-8"),
    "style.css": ("style.css", "text/css; charset=utf-8"),
    "vendor/markdown-it.min.js": ("vendor/markdown-it.min.js", "text/javascript; charset=utf-8"),
    "vendor/purify.min.js": ("vendor/purify.min.js", "text/javascript; charset=utf-8"),
    "vendor/oidc-client-ts.min.js": (
        "vendor/oidc-client-ts.min.js",
        "text/javascript; charset=utf-8",
    ),
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Read the static files once (at app start-up), keyed by their URL name under ``/ui/``."""
    static = resources.files(__name__) / "static"
    assets: dict[str, Asset] = {}
    for name, (filename, media_type) in FILES.items():
        try:
            body = static.joinpath(*filename.split("/")).read_bytes()
        except FileNotFoundError as exc:
            # A package built without ui/static/vendor/ in its package data.
            raise RuntimeError(
                f"the chat page's file {filename} is missing from the installed package; "
                "reinstall it, or run with GATEWAY_UI=false (llm-gateway serve --no-ui)"
            ) from exc
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[name] = Asset(body, media_type, etag)
    return assets


def mount_ui(app: FastAPI, sign_in: SignIn | None = None) -> None:
    """Serve the chat page at ``/ui/`` (``/ui`` redirects there), its assets and its
    ``config.json`` under it; ``sign_in`` turns on the page's "Sign in"."""
    assets = load_assets()
    config = page_config(sign_in)
    assets["config.json"] = Asset(
        config, "application/json", '"' + hashlib.sha256(config).hexdigest()[:32] + '"'
    )
    sources = ConnectSources(CONTENT_SECURITY_POLICY, sign_in)

    def headers_for_all() -> dict[str, str]:
        return {**SECURITY_HEADERS, "content-security-policy": sources.policy()}

    @app.get("/ui", include_in_schema=False)
    async def ui_redirect(request: Request) -> Response:
        # Relative, so the redirect keeps an API Gateway stage prefix (/prod/ui -> /prod/ui/).
        return RedirectResponse("ui/", status_code=308, headers=headers_for_all())

    @app.get("/ui/{name:path}", include_in_schema=False)
    async def ui_file(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response(
                "Not found", status_code=404, media_type="text/plain", headers=headers_for_all()
            )
        headers = {**headers_for_all(), "etag": asset.etag}
        if asset.media_type.startswith("text/html"):  # the policy that governs the page
            headers["content-security-policy"] = await sources.discovered_policy()
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
