"""Running servers in-process: uvicorn in a background thread (embedded emulator, tests)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import MutableMapping
from typing import Any

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
