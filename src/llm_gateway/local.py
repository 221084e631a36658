"""Running servers in-process: uvicorn in a background thread (embedded emulator, tests), and
the OpenID Connect test provider of ``llm-gateway serve --sign-in``."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn


class BackgroundServer:
    """An ASGI app served by uvicorn on a daemon thread; ``port=0`` picks a free port.

    >>> from starlette.applications import Starlette
    >>> server = BackgroundServer(Starlette()).start()
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> server.stop()
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "off")
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **config))
        # Not the main thread: uvicorn must not install signal handlers.
        setattr(self.server, "install_signal_handlers", lambda: None)  # noqa: B010
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn")
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def use_emulator(url: str, env: MutableMapping[str, str] | None = None) -> None:
    """Point boto3 at an emulator: its endpoint URL plus placeholder credentials and region
    (kept when already set; they only sign requests the emulator never checks)."""
    env = os.environ if env is None else env
    env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = url
    env.setdefault("AWS_ACCESS_KEY_ID", "emulator")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "emulator")
    if not (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")):
        env["AWS_DEFAULT_REGION"] = "us-east-1"


# `serve --sign-in`'s people: a tenant with two users and one with one (claim `tenant`).
TEST_USERS: dict[str, dict[str, str]] = {
    "alice": {"name": "Alice Example", "email": "alice@example.com", "tenant": "acme"},
    "bob": {"name": "Bob Example", "email": "bob@example.com", "tenant": "acme"},
    "carol": {"name": "Carol Example", "email": "carol@example.com", "tenant": "globex"},
}
TENANT_CLAIM = "tenant"


@dataclass(frozen=True)
class TestIssuer:
    """An OpenID Connect TEST provider on loopback (oidc-provider-mock): anyone signs in as
    anyone by typing a name, so it is for trying sign-in locally, never for real users.

    ``client_id`` is the chat page's public client, registered with the page's URL as its only
    redirect URI and no secret (``token_endpoint_auth_method: none``, PKCE)."""

    __test__ = False  # not a pytest test class, whatever its name

    issuer: str
    client_id: str
    server: Any

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_test_issuer(page_url: str, host: str = "127.0.0.1") -> TestIssuer:
    """Start the test provider on a free port of ``host`` and register the page at
    ``page_url`` (its redirect URI) as a public client. Needs the ``sign-in`` extra."""
    try:
        import flask_cors
        import werkzeug.serving

        # It imports authlib.jose, which warns that it is old. authlib's own warning filter
        # ("always"), set when authlib.deprecate is first imported, would go in front of ours:
        # import it first.
        importlib.import_module("authlib.deprecate")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import oidc_provider_mock
    except ImportError as exc:  # the optional dependency is not installed
        raise RuntimeError(
            f"--sign-in needs the test provider ({exc.name} is missing): "
            "pip install 'llm-gateway[sign-in]'"
        ) from exc
    import httpx

    # Its request log would print every sign-in's authorization code; warnings and errors stay.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _accept_public_clients()
    app = oidc_provider_mock.app(
        require_client_registration=True,  # only the page's client, with its redirect URI
        user_claims=[oidc_provider_mock.User(sub=s, claims=c) for s, c in TEST_USERS.items()],
    )
    # The page (another origin) fetches the discovery document and calls the token endpoint.
    parts = urlsplit(page_url)
    flask_cors.CORS(app, origins=[f"{parts.scheme}://{parts.netloc}"])
    server = werkzeug.serving.make_server(host, 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="test-issuer").start()
    issuer = f"http://{host}:{server.server_port}"
    try:
        registered = httpx.post(
            f"{issuer}/oauth2/clients",
            json={"redirect_uris": [page_url], "token_endpoint_auth_method": "none"},
            timeout=10,
        )
        registered.raise_for_status()
    except httpx.HTTPError:
        server.shutdown()
        raise
    return TestIssuer(issuer, str(registered.json()["client_id"]), server)


def _accept_public_clients() -> None:
    """oidc-provider-mock 0.3.4 (its last release for Python 3.11) keeps authlib's default
    token-endpoint authentication, ``client_secret_basic`` only, so a public client (a browser
    page with PKCE and no secret, as the chat page is) gets ``invalid_client``; its 0.4 releases
    accept one. Its grants are configured through authlib's own class attribute for this."""
    from oidc_provider_mock import _app

    for grant in (_app.AuthorizationCodeGrant, _app.RefreshTokenGrant):
        methods = list(grant.TOKEN_ENDPOINT_AUTH_METHODS)
        if "none" not in methods:
            grant.TOKEN_ENDPOINT_AUTH_METHODS = [*methods, "none"]
