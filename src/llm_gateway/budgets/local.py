"""An embedded DynamoDB-compatible store for ``llm-gateway serve`` and the tests.

It is moto's server mode (``moto[server]``, a development dependency) on 127.0.0.1 and a free
port, spoken to with real boto3 over HTTP exactly as the gateway speaks to DynamoDB. Like the
SageMaker emulator it is a stand-in for local use, never the production code path: it keeps
everything in memory and does not expire items by TTL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from llm_gateway.budgets.table import create_table

__all__ = ["create_table", "local_client", "start_embedded_store", "start_store_server"]

# Placeholder credentials: requests to the embedded store are signed but never checked.
PLACEHOLDER = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def start_store_server() -> tuple[str, Callable[[], None]]:
    """Start moto's server on a free loopback port: ``(url, stop)``.

    Requests are handled one at a time. DynamoDB applies each conditional write atomically;
    moto's backend does not lock, and under a threaded server two concurrent conditional ADDs
    can both pass their check (seen: 11 of 40 racing reservations admitted against a limit of
    10). Serializing requests restores the atomicity the reservation relies on.
    """
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as exc:  # moto is a dev extra, not needed on AWS
        raise RuntimeError(
            "the embedded budget store needs moto's server mode: pip install 'moto[server]' "
            "(or point AWS_ENDPOINT_URL_DYNAMODB at a DynamoDB-compatible server)"
        ) from exc
    # werkzeug logs every request on stderr; the gateway's own log line is enough.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ: Any, start_response: Any) -> list[bytes]:
        with lock:  # the whole answer is produced inside: moto's work is done by then
            return list(app(environ, start_response))

    server = make_server(
        "127.0.0.1", 0, one_at_a_time, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="budget-store")
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_port}", stop


def local_client(url: str, region: str = "us-east-1") -> Any:
    """A DynamoDB client for a local store, whatever the AWS environment holds."""
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=64)  # as many threads as the gateway's executor
    return boto3.client(
        "dynamodb", endpoint_url=url, region_name=region, config=config, **PLACEHOLDER
    )


def start_embedded_store(table: str) -> tuple[str, Callable[[], None]]:
    """Start the store and create ``table`` with the stack's schema: ``(url, stop)``.

    The caller points the gateway at it (``AWS_ENDPOINT_URL_DYNAMODB=url``, plus placeholder
    credentials and a region when the environment has none, as for the SageMaker emulator).
    """
    url, stop = start_store_server()
    try:
        create_table(local_client(url), table)
    except Exception:
        stop()
        raise
    return url, stop
