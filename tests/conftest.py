"""Shared fixtures: a SageMaker emulator and gateways, all served over real HTTP by uvicorn.

The gateway talks to the emulator through unmodified boto3, selected by
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (set here once for the whole session).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from llm_gateway.app import create_app
from llm_gateway.config import Settings
from llm_gateway.config.loader import parse_config
from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.local import BackgroundServer, use_emulator
from tests.observed import Stdout

# Emulated endpoints used across the suite (no pacing: tests must be fast).
ENDPOINTS: dict[str, dict[str, Any]] = {
    "tgi3-endpoint": {"tgi_version": "3.x"},
    "tgi082-endpoint": {"tgi_version": "0.8.2"},
    "split-endpoint": {"tgi_version": "3.x", "split": "random"},
    "bytes-endpoint": {"tgi_version": "0.8.2", "split": "bytes:3"},
    "faulty-endpoint": {"tgi_version": "3.x"},
}

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{{ '<start_of_turn>' + message['role'] "
    "+ '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

MODELS: list[dict[str, Any]] = [
    {"name": "tgi3", "endpoint": "tgi3-endpoint", "model_id": "test/tgi3", "template": "chatml"},
    {"name": "tgi082", "endpoint": "tgi082-endpoint", "template": "llama2"},
    {"name": "mistral", "endpoint": "tgi3-endpoint", "template": "mistral"},
    {"name": "chat-api", "endpoint": "tgi3-endpoint", "chat_api": True},
    {
        "name": "gemma-jinja",
        "endpoint": "tgi3-endpoint",
        "template": {
            "chat_template": GEMMA_TEMPLATE,
            "bos_token": "<bos>",
            "stop": ["<end_of_turn>"],
        },
    },
    {"name": "split", "endpoint": "split-endpoint"},
    {"name": "bytes", "endpoint": "bytes-endpoint"},
    {"name": "faulty", "endpoint": "faulty-endpoint", "template": "zephyr"},
    {"name": "missing", "endpoint": "no-such-endpoint", "template": "chatml"},
    {
        "name": "with-defaults",
        "endpoint": "tgi3-endpoint",
        "defaults": {"max_new_tokens": 7, "temperature": 0.5, "stop": ["<|endoftext|>"]},
    },
]


def gateway_config(models: list[dict[str, Any]] | None = None, default: str = "tgi3") -> Any:
    return parse_config({"default_model": default, "models": models or MODELS}, "tests")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator({name: EndpointSpec.model_validate(spec) for name, spec in ENDPOINTS.items()})
    server = BackgroundServer(emu.app()).start()
    use_emulator(server.url)
    emu.url = server.url  # type: ignore[attr-defined]
    yield emu
    server.stop()


@pytest.fixture(scope="session")
def start_gateway(emulator: Emulator) -> Iterator[Callable[..., str]]:
    """Start a gateway (over HTTP) with the given config/settings; returns its URL."""
    servers: list[BackgroundServer] = []

    def start(config: Any = None, settings: Settings | None = None) -> str:
        app = create_app(config or gateway_config(), settings or Settings())
        server = BackgroundServer(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def gateway(start_gateway: Callable[..., str]) -> str:
    """The default gateway: all test models; quick heartbeats, and a commit window long enough
    for retried failures to still be answered with a status."""
    return start_gateway(settings=Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2))


@pytest.fixture(scope="session")
def eager_gateway(start_gateway: Callable[..., str]) -> str:
    """A gateway that commits a stream after 0.5 s of upstream silence."""
    return start_gateway(settings=Settings(stream_commit_seconds=0.5, heartbeat_seconds=0.2))


@pytest.fixture
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=30) as c:
        yield c


@pytest.fixture
def faulty(emulator: Emulator) -> Iterator[Callable[..., EndpointSpec]]:
    """Reconfigure ``faulty-endpoint`` for one test; restored afterwards."""
    original = emulator.endpoints["faulty-endpoint"]

    def configure(**spec: Any) -> EndpointSpec:
        new = EndpointSpec.model_validate(spec)
        emulator.set_endpoint("faulty-endpoint", new)
        return new

    yield configure
    emulator.set_endpoint("faulty-endpoint", original)


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sse_events(body: bytes) -> list[bytes]:
    """Split an SSE body into its ``data:`` payloads (comments dropped)."""
    out = []
    for block in body.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(line[5:].removeprefix(b" "))
    return out


@pytest.fixture
def out(capsys: pytest.CaptureFixture[str]) -> Stdout:
    """What the gateway wrote to stdout (EMF documents, log lines), by request id."""
    return Stdout(capsys)


@pytest.fixture(scope="session")
def store_server() -> Iterator[str]:
    """The suite's one DynamoDB-compatible server (moto's server mode over real HTTP, requests
    applied one at a time as DynamoDB applies conditional writes atomically); tests make their
    own tables in it."""
    from llm_gateway.budgets.local import start_store_server

    url, stop = start_store_server()
    yield url
    stop()


@pytest.fixture
def budgeted(store_server: str, start_gateway: Callable[..., str], emulator: Emulator) -> Any:
    """``budgeted(**budgets)``: a gateway with budgets over a fresh table (tests/budgeting.py)."""
    from tests.budgeting import start_budgeted

    yield from start_budgeted(store_server, start_gateway, emulator)
