"""Claude Code itself (``@anthropic-ai/claude-code@2.1.197``, pinned in tests/node) in headless
mode (``claude -p``) against the gateway, with a vLLM-backed model on the emulator.

It runs offline: ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` switches off every other
network call, and ``ANTHROPIC_BASE_URL`` sends the rest here. Its real traffic is exercised
whole: ``HEAD /``, then streamed ``POST /v1/messages?beta=true`` with a three-block ``system``,
~20 tools, ``thinking``, ``context_management``, ``output_config``, ``max_tokens: 32000``
(clamped), and — since the simulated model calls the first tool it is offered (Claude Code's
``Agent``) — sub-agents and ``tool_result`` turns, until the model answers in text.

npm leaves the package's postinstall unrun here, so the launcher that needs none
(``cli-wrapper.cjs``) starts the native binary from the platform package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import gateway_config

NODE_DIR = Path(__file__).parent / "node"
WRAPPER = NODE_DIR / "node_modules" / "@anthropic-ai" / "claude-code" / "cli-wrapper.cjs"
ANSWER = "Hello from the hosted model."
LIMITS = {"max_input_tokens": 190_000, "max_total_tokens": 200_000}  # the container's
WINDOW = {"max_input_tokens": 47_000, "max_total_tokens": 48_000}  # the gateway's, smaller


def test_claude_code_headless_against_a_vllm_model(
    emulator: Emulator, start_gateway: Callable[..., str], tmp_path: Path, out: Any
) -> None:
    node = shutil.which("node")
    assert node and WRAPPER.is_file(), "run `make node-clients` (tests/node's packages)"
    emulator.set_endpoint(
        "anth-claude-code",
        EndpointSpec.model_validate(
            {
                "server": "vllm",
                "model_id": "Qwen/Qwen3-Coder",
                "output_text": ANSWER,
                "limits": LIMITS,
            }
        ),
    )
    model = {
        "name": "qwen3-coder",
        "endpoint": "anth-claude-code",
        "backend": "openai",
        "limits": WINDOW,
    }
    url = start_gateway(gateway_config([model], "qwen3-coder"), Settings(api_keys=("cc:sk-cc",)))
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # a private HOME: no settings, no login, no history
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "sk-cc",
        "ANTHROPIC_MODEL": "qwen3-coder",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
        "API_TIMEOUT_MS": "60000",
    }
    try:
        run = subprocess.run(
            [node, str(WRAPPER), "-p", "Say hello"],
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        stats = emulator.stats_for("anth-claude-code")
    finally:
        emulator.endpoints.pop("anth-claude-code", None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == ANSWER  # the model's answer came back through the gateway
    bodies = [orjson.loads(r["body"]) for r in stats.recent]
    assert stats.requests == len(bodies) >= 2  # its requests reached the model, streamed
    first = bodies[0]
    assert first["max_tokens"] < 32_000  # Claude Code asked 32000: clamped to the limits
    assert len(first["tools"]) >= 12 and first["messages"][0]["role"] == "system"
    tool_turns = [b for b in bodies if b["messages"][-1]["role"] == "tool"]
    assert tool_turns  # it ran the tool the model called and sent the result back
    # This gateway's requests (its key; other tests' late log lines are not Claude Code's), once
    # the line of each model call is out (each is written after its response has ended).
    out.logs(lambda d: d.get("path") == "/v1/messages" and d.get("api_key_id") == "cc", len(bodies))
    lines = [d for d in out.lines if d.get("message") == "request" and d.get("api_key_id") == "cc"]
    posts = [line for line in lines if line["method"] == "POST"]
    calls = [p for p in posts if p["path"] == "/v1/messages"]
    assert len(calls) == stats.requests  # one gateway request per model call, no retries
    assert all((p["dialect"], p["stream"], p["status"]) == ("anthropic", True, 200) for p in calls)
    # Anything else it posted asks nothing of the model (token counting).
    assert {p["path"] for p in posts} <= {"/v1/messages", "/v1/messages/count_tokens"}
