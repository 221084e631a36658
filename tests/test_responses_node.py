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


def test_node_clients(gateway: str, faulty: Any) -> None:
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
