"""Settlement survives Lambda's freeze (SPEC §5.4): the real entry points, in child processes
that stop the moment the response is complete, with the store behind a proxy adding ~30 ms
per call. The table is read right after: it must already hold the settled counts.

- buffered: the Mangum handler (``llm_gateway.handler``) runs one request, and the process
  exits (``os._exit``) as soon as ``handler()`` returns, as a frozen environment would;
- streaming: uvicorn serving ``llm_gateway.asgi:app`` (what the Web Adapter runs) is stopped
  with SIGSTOP the moment the client has read the stream's last event.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llm_gateway.budgets.local import local_client
from llm_gateway.budgets.table import create_table
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.budgeting import Budgeted, DelayProxy
from tests.processes import free_port

EVENTS = Path(__file__).resolve().parent.parent / "events"
KEY_ID = "k1a2b3c4d5"
# What the Web Adapter's start-up script (src/run.sh) runs.
UVICORN = (
    sys.executable,
    "-m",
    "uvicorn",
    "llm_gateway.asgi:app",
    "--lifespan",
    "off",
)  # the API key id API Gateway puts in events/generate.json

CHILD = """
import json, os, sys
from llm_gateway.handler import handler

class Context:
    function_name = "llm-gateway"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:llm-gateway"
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/llm-gateway"
    log_stream_name = "2026/12/05/[$LATEST]abc"
    def get_remaining_time_in_millis(self):
        return 29000

event = json.load(open(sys.argv[1]))
response = handler(event, Context())
sys.stdout.write("RESULT " + json.dumps(response) + "\\n")
sys.stdout.flush()
os._exit(0)  # frozen: no thread of this process runs again
"""


@pytest.fixture
def frozen(store_server: str, emulator: Emulator) -> Iterator[tuple[Budgeted, dict[str, str]]]:
    """A fresh table behind a ~30 ms proxy, and the environment of a Lambda child process."""
    emulator.set_endpoint(
        "budget-frozen", EndpointSpec.model_validate({"tgi_version": "3.x", "output_tokens": 12})
    )
    emulator.set_endpoint(
        "budget-frozen-vllm",
        EndpointSpec.model_validate({"server": "vllm", "output_tokens": 12}),
    )
    emulator.set_endpoint(  # 20 s of tokens: outlives the streaming gateway's 2 s deadline
        "budget-frozen-slow",
        EndpointSpec.model_validate({"output_tokens": 200, "pacing": {"token_ms": 100}}),
    )
    emulator.set_endpoint(  # TGI's error event after 3 tokens: the stream's last word
        "budget-frozen-failing",
        EndpointSpec.model_validate(
            {"output_tokens": 12, "faults": [{"kind": "tgi_error_event", "at_token": 3}]}
        ),
    )
    table = f"frozen-{uuid.uuid4().hex[:8]}"
    create_table(local_client(store_server), table)
    proxy = DelayProxy(store_server, 0.03)
    config = {
        "default_model": "frozen",
        "models": [
            {"name": "frozen", "endpoint": "budget-frozen", "template": "chatml"},
            {"name": "frozen-vllm", "endpoint": "budget-frozen-vllm", "backend": "openai"},
            {"name": "frozen-failing", "endpoint": "budget-frozen-failing", "template": "chatml"},
            {"name": "frozen-slow", "endpoint": "budget-frozen-slow", "template": "chatml"},
        ],
        "budgets": {"table": table, "default": {"tokens_per_minute": 1000}},
    }
    child = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    child.update(
        GATEWAY_CONFIG_JSON=json.dumps(config),
        AWS_ENDPOINT_URL_DYNAMODB=proxy.url,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    yield Budgeted("", table, store_server, emulator), child
    proxy.stop()
    for name in (
        "budget-frozen",
        "budget-frozen-vllm",
        "budget-frozen-failing",
        "budget-frozen-slow",
    ):
        emulator.endpoints.pop(name, None)


def assert_settled(gw: Budgeted, pk: str, generated: int) -> None:
    """Read once, no waiting: the request's totals and its refund are already there."""
    day = gw.day(pk)
    assert day.get("requests") == 1, f"not settled when the invocation ended: {gw.items(pk)}"
    assert day["generated_tokens"] == generated
    assert gw.used(pk, "tpm") == day["input_tokens"] + generated < 201


def test_the_mangum_handler_settles_before_it_returns(frozen, tmp_path):
    gw, env = frozen
    event: dict[str, Any] = json.loads((EVENTS / "generate.json").read_text())
    event["path"] = event["requestContext"]["path"] = "/models/frozen/generate"
    event["body"] = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 200}})
    (tmp_path / "event.json").write_text(json.dumps(event))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "event.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result, done.stdout + done.stderr
    response = json.loads(result[0].removeprefix("RESULT "))
    assert response["statusCode"] == 200, response
    assert_settled(gw, f"key#{KEY_ID}", 13)  # 12 words and EOS; 187 of 201 came back


@pytest.fixture
def uvicorn_gateway(frozen, tmp_path) -> Iterator[tuple[Budgeted, str, subprocess.Popen[bytes]]]:
    gw, env = frozen
    port = free_port()
    env = dict(env, GATEWAY_API_KEYS="acme:sk-acme", GATEWAY_REQUEST_TIMEOUT_SECONDS="2")
    log = (tmp_path / "uvicorn.log").open("w")
    proc = subprocess.Popen(
        [*UVICORN, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (
            tmp_path / "uvicorn.log"
        ).read_text()
        time.sleep(0.05)
    yield gw, url, proc
    os.kill(proc.pid, signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.mark.parametrize(
    ("path", "body", "last", "generated"),
    [
        (
            "/models/frozen/generate_stream",
            {"inputs": "Hello", "parameters": {"max_new_tokens": 200}},
            b'"finish_reason"',  # only in the last event's details
            13,
        ),
        (
            "/v1/chat/completions",
            {"model": "frozen-vllm", "messages": [{"role": "user", "content": "Hi"}],
             "max_tokens": 200, "stream": True},
            b"[DONE]",
            13,
        ),
        (  # an error mid-stream: charged the prompt and the 3 tokens streamed
            "/models/frozen-failing/generate_stream",
            {"inputs": "Hello", "parameters": {"max_new_tokens": 200}},
            b'"error"',
            3,
        ),
    ],
)  # fmt: skip
def test_a_stream_settles_before_its_last_byte(uvicorn_gateway, path, body, last, generated):
    gw, url, proc = uvicorn_gateway
    headers = {"x-api-key": "sk-acme"}
    with httpx.stream("POST", f"{url}{path}", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            if last in chunk:
                os.kill(proc.pid, signal.SIGSTOP)  # frozen the moment the last event is read
                break
    assert_settled(gw, "key#acme", generated)


def test_a_stream_cut_by_its_deadline_settles_before_its_error_event(uvicorn_gateway):
    """The deadline's error event is the stream's last byte: the request is settled (its
    reservation kept, since what the model generated is unknown) before it goes out."""
    gw, url, proc = uvicorn_gateway
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 200}}
    headers = {"x-api-key": "sk-acme"}
    path = f"{url}/models/frozen-slow/generate_stream"
    with httpx.stream("POST", path, json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            if b'"error"' in chunk:
                os.kill(proc.pid, signal.SIGSTOP)
                break
    day = gw.day("key#acme")
    assert day.get("requests") == 1, (
        f"not settled when the invocation ended: {gw.items('key#acme')}"
    )
    assert gw.used("key#acme", "tpm") == 201  # never refunded: the model may have gone on
