"""``llm-gateway serve`` as ``make serve`` runs it: the banner's curl commands must work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.processes import free_port


def cli(*args: str) -> subprocess.Popen:
    """``python -m llm_gateway ARGS`` with a clean environment, output merged on a text pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "llm_gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
    )


def clean_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_ENDPOINT_URL"))
    }
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    return env


@pytest.fixture(scope="module")
def served():
    port = free_port()
    proc = cli("serve", "--port", str(port), "--log-level", "warning")
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "/info" in line:  # the banner's last command
            break
    yield port, lines
    proc.terminate()
    proc.wait(timeout=10)


def test_banner_prints_url_and_commands(served):
    port, lines = served
    text = "\n".join(lines)
    assert f"listening on http://127.0.0.1:{port}" in text
    assert "embedded SageMaker emulator (simulated TGI, not a real model)" in text
    assert sum(line.strip().startswith("curl ") for line in lines) == 3


def test_banner_curl_commands_work(served):
    _, lines = served
    commands = [line.strip() for line in lines if line.strip().startswith("curl ")]
    generate, stream, info = (
        subprocess.run(
            ["bash", "-c", c], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        for c in commands
    )
    assert json.loads(generate)["generated_text"]
    events = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
    assert events[-1]["details"]["generated_tokens"] == len(events)
    assert json.loads(info)["model_id"] == "OpenAssistant/pythia-12b-sft-v8-7k-steps"


def test_bad_config_stops_start_up_naming_the_file(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("models:\n  - name: m\n    endpoint: e\n    limits: {max_best_of: 0}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_gateway",
            "serve",
            "--config",
            str(bad),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert result.returncode == 2
    assert (
        f"Invalid configuration in {bad}: model 'm' (models[0]), field 'limits.max_best_of'"
        in result.stderr
    )


def test_version():
    result = subprocess.run(
        [sys.executable, "-m", "llm_gateway", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("llm-gateway ")


def run_one_request(*flags: str) -> str:
    """Serve, answer one request, stop; everything the process printed."""
    import httpx

    port = free_port()
    proc = cli("serve", "--port", str(port), *flags)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(
            f"http://127.0.0.1:{port}/generate",
            json={"inputs": "Hi", "parameters": {"max_new_tokens": 2}},
            timeout=30,
        )
        assert r.status_code == 200
        time.sleep(0.3)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    return output


def test_serve_prints_emf_and_logs_and_no_metrics_turns_emf_off():
    with_metrics = run_one_request()
    lines = [json.loads(line) for line in with_metrics.splitlines() if line.startswith("{")]
    assert any("_aws" in d and d.get("Requests") == [1.0] for d in lines)
    assert any(d.get("message") == "request" and d.get("status") == 200 for d in lines)
    without = run_one_request("--no-metrics")
    lines = [json.loads(line) for line in without.splitlines() if line.startswith("{")]
    assert not any("_aws" in d for d in lines)
    assert any(d.get("message") == "request" for d in lines)


def test_emulate_serves_the_sagemaker_wire_protocol(tmp_path):
    import boto3
    import yaml

    port = free_port()
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(yaml.safe_dump({"cli-endpoint": {"output_text": " From the CLI."}}))
    proc = cli(
        "emulate", "--port", str(port), "--endpoints", str(endpoints), "--log-level", "warning"
    )
    try:
        assert "a simulator, not AWS" in proc.stdout.readline()
        runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                out = runtime.invoke_endpoint(
                    EndpointName="cli-endpoint",
                    ContentType="application/json",
                    Body=json.dumps({"inputs": "Hi", "parameters": {"return_full_text": False}}),
                )
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert json.loads(out["Body"].read())[0]["generated_text"] == " From the CLI."
    finally:
        proc.terminate()
        proc.wait(timeout=10)
