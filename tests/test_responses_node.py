"""The Node clients of ``/v1/responses`` (tests/node: the openai SDK and the Vercel AI SDK's
default ``openai(model)`` provider), run with ``node --test`` against a test gateway.

``make test`` installs their pinned packages first (``npm ci`` in tests/node, a no-op when
already installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"


def run_node_suite(gateway: str, faulty: Any) -> None:
    """``node --test responses.test.mjs`` against ``gateway``; all 10 tests must pass."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the Node client tests"
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), (
        "tests/node's packages are not installed: run `make node-clients` (make test does)"
    )
    # The "faulty" model fails every stream at its second token (the failure tests use it).
    faulty(faults=[{"kind": "model_stream_error", "at_token": 2, "streaming_only": True}])
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", "responses.test.mjs"],
        cwd=NODE_DIR,
        env={**os.environ, "GATEWAY_URL": gateway},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fail 0" in run.stdout and "pass 10" in run.stdout, run.stdout


def test_node_clients(gateway: str, faulty: Any) -> None:
    run_node_suite(gateway, faulty)


def test_node_clients_against_a_vllm_model(start_gateway: Any, emulator: Any, faulty: Any) -> None:
    """The same Node suite, unchanged, with its model served by a vLLM-like endpoint
    (``backend: openai``): clients cannot tell the container apart (issue 13)."""
    from llm_gateway.emulator import EndpointSpec
    from tests.conftest import MODELS, gateway_config

    emulator.set_endpoint(
        "node-vllm-endpoint", EndpointSpec.model_validate({"server": "vllm", "model_id": "m"})
    )
    models = [m for m in MODELS if m["name"] != "tgi3"]
    models.append({"name": "tgi3", "endpoint": "node-vllm-endpoint", "backend": "openai"})
    try:
        run_node_suite(start_gateway(gateway_config(models)), faulty)
    finally:
        emulator.endpoints.pop("node-vllm-endpoint", None)
    assert emulator.stats_for("node-vllm-endpoint").requests >= 8  # the vLLM endpoint answered
