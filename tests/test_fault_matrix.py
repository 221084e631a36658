"""Every row of the fault matrix (docs/faults.md), in both dialects, streamed and buffered."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config

from llm_gateway.app import create_app
from llm_gateway.config import Settings
from llm_gateway.local import BackgroundServer
from llm_gateway.transport.sagemaker import SageMakerRuntime
from tests.conftest import gateway_config, sse_events
from tests.fault_matrix import DISCONNECT, ROWS, Outcome, Row
from tests.observed import Stdout

ROOT = Path(__file__).resolve().parent.parent
HI = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def blackhole():
    """A port whose accept queue is full: new connections hang, so connecting times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    for s in fillers:
        s.close()
    server.close()


@pytest.fixture(scope="module")
def gateways(gateway, emulator, blackhole):
    """The default gateway plus three whose upstream misbehaves at the transport level."""
    servers = []

    def start(settings: Settings, endpoint_url: str | None = None) -> str:
        client = None
        if endpoint_url:
            client = boto3.client(
                "sagemaker-runtime",
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    retries={"total_max_attempts": 1},
                ),
            )
        upstream = SageMakerRuntime(settings, client) if client else None
        app = create_app(gateway_config(), settings, upstream)
        server = BackgroundServer(app).start()
        servers.append(server)
        return server.url

    urls = {
        None: gateway,
        "refused": start(Settings(max_attempts=2), "http://127.0.0.1:9"),
        "blackhole": start(Settings(max_attempts=2, connect_timeout=0.3), blackhole),
        "read_timeout": start(Settings(read_timeout=0.5, stream_commit_seconds=3.0)),
    }
    yield urls
    for server in servers:
        server.stop()


def gateway_for(row: Row, urls: dict) -> str:
    if "upstream" in row.extra:
        return urls[row.extra["upstream"]]
    if "read_timeout" in row.extra:
        return urls["read_timeout"]
    return urls[None]


def call(url: str, row: Row, dialect: str, stream: bool) -> httpx.Response:
    if dialect == "tgi":
        path = f"/models/{row.model}/generate_stream" if stream else f"/models/{row.model}/generate"
        body = {"inputs": "Hello", "parameters": {"max_new_tokens": 6}}
    else:
        path = "/v1/chat/completions"
        body = {"model": row.model, "messages": HI, "max_tokens": 6, "stream": stream}
    return httpx.post(url + path, json=body, timeout=30)


def check(response: httpx.Response, expected: Outcome, dialect: str) -> None:
    if expected.error is None:
        assert response.status_code == 200, response.text
        events = sse_events(response.content)
        if events:
            assert not any(b'"error"' in e for e in events)
        return
    if expected.in_stream:
        assert response.status_code == 200, response.text
        events = [e for e in sse_events(response.content) if e != b"[DONE]"]
        error = orjson.loads(events[-1])["error"]
        tokens = [e for e in events[:-1]]
        assert tokens, "the failure should come after some tokens"
        if dialect == "tgi":
            assert orjson.loads(events[-1])["error_type"] == expected.error
        else:
            assert error["code"] == expected.error
            assert response.content.endswith(b"data: [DONE]\n\n")
        return
    assert response.status_code == expected.status, response.text
    body = response.json()
    if dialect == "tgi":
        assert body["error_type"] == expected.error and isinstance(body["error"], str)
    else:
        assert body["error"]["code"] == expected.error
        assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault_matrix_row(row, gateways, faulty, capsys):
    url = gateway_for(row, gateways)
    out = Stdout(capsys)
    columns = [
        ("tgi", False, row.tgi),
        ("tgi", True, row.tgi_stream),
        ("openai", False, row.openai),
        ("openai", True, row.openai_stream),
    ]
    first = None
    for dialect, stream, expected in columns:
        if expected is None:
            continue
        faulty(**({"faults": [row.fault]} if row.fault else {}))
        response = call(url, row, dialect, stream)
        check(response, expected, dialect)
        first = first or response
    if row.metric != "—":
        doc = out.emf(first.headers["x-request-id"])
        assert doc[row.metric] == [1.0], (row.metric, doc)


def test_client_disconnect_row(gateway, faulty, emulator, capsys):
    out = Stdout(capsys)
    faulty(output_tokens=300, pacing={"token_ms": 10})
    stats = emulator.stats_for("faulty-endpoint")
    aborted = stats.streams_aborted
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={"model": "faulty", "messages": HI, "max_tokens": 300, "stream": True},
    ) as r:
        rid = r.headers["x-request-id"]
        next(line for line in r.iter_lines() if '"content"' in line)
    closed = time.monotonic()
    while stats.streams_aborted == aborted and time.monotonic() - closed < 1.0:
        time.sleep(0.02)
    assert stats.streams_aborted == aborted + 1
    assert out.emf(rid)[DISCONNECT[3]] == [1.0]


def test_no_task_or_thread_is_left_behind(gateway, faulty, emulator):
    """After many aborted and failed streams, the gateway's upstream threads drain back."""
    import threading

    def upstream_threads() -> int:
        return sum(t.name.startswith("upstream") and t.is_alive() for t in threading.enumerate())

    from llm_gateway.core.streaming import TokenStream

    faulty(output_tokens=200, pacing={"token_ms": 5})
    before = upstream_threads()
    for _ in range(10):
        with httpx.stream(
            "POST",
            f"{gateway}/models/faulty/generate_stream",
            json={"inputs": "x", "parameters": {"max_new_tokens": 200}},
        ) as r:
            next(r.iter_lines())
    deadline = time.monotonic() + 2
    while TokenStream.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert TokenStream.active == 0
    # One stream at a time: the pool reuses its idle threads, so a stuck reader would show as
    # growth here (the pool's size bound, 264, could never show one).
    assert upstream_threads() - before <= 2


def test_docs_faults_md_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_fault_matrix.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
