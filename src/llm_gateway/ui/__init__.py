"""The chat page at ``/ui/``: one static HTML page, its script, its style sheet and two
vendored libraries (markdown-it, DOMPurify: ``static/vendor/``, re-vendored from npm by
``scripts/vendor_ui.sh``), shipped in the package (no build step) and served by the gateway
itself when ``GATEWAY_UI`` is true.

The page is the reference browser client of the OpenAI dialect: it lists ``/v1/models`` and
streams ``/v1/chat/completions``. Its URLs are relative (``../v1/...``), so it also works under
an API Gateway stage prefix such as ``/prod/ui/``.

Only the known files are served (no path from the request reaches the filesystem), each with a
strict Content-Security-Policy: scripts only from this origin, no inline script or style, no
eval, no request to any other origin. Model answers are rendered as Markdown with raw HTML
disabled and the result sanitized by DOMPurify before it reaches the page; the CSP is the
second line of defence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

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
    "style.css": ("style.css", "text/css; charset=utf-8"),
    "vendor/markdown-it.min.js": ("vendor/markdown-it.min.js", "text/javascript; charset=utf-8"),
    "vendor/purify.min.js": ("vendor/purify.min.js", "text/javascript; charset=utf-8"),
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


def mount_ui(app: FastAPI) -> None:
    """Serve the chat page at ``/ui/`` (``/ui`` redirects there) and its assets under it."""
    assets = load_assets()

    @app.get("/ui", include_in_schema=False)
    async def ui_redirect(request: Request) -> Response:
        # Relative, so the redirect keeps an API Gateway stage prefix (/prod/ui -> /prod/ui/).
        return RedirectResponse("ui/", status_code=308, headers=SECURITY_HEADERS)

    @app.get("/ui/{name:path}", include_in_schema=False)
    async def ui_file(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response(
                "Not found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS
            )
        headers = {**SECURITY_HEADERS, "etag": asset.etag}
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
