"""``make bench``: what going through the gateway costs, against calling SageMaker directly.

Three processes on loopback: the SageMaker emulator (zero model latency), the gateway
(uvicorn, talking to the emulator through boto3), and this client. Each round calls the
emulator directly with boto3 and then the gateway over HTTP, interleaved so machine drift hits
both alike. Reported: median / p95 / p99 latency of ``/generate`` and time to first streamed
token, and the gateway's added milliseconds (the difference of the medians and p95s).

Absolute numbers on a shared machine are noisy; compare figures from one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "What does a gateway do?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str = "/ping", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(percentile(values, 95) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
    }


def start_processes(tmp: Path) -> tuple[list[subprocess.Popen], int, int, dict[str, str]]:
    emu_port, gw_port = free_port(), free_port()
    endpoints = tmp / "endpoints.yaml"
    endpoints.write_text(json.dumps({"bench-endpoint": {"tgi_version": "3.x"}}))
    config = tmp / "models.json"
    config.write_text(json.dumps({"models": [{"name": "bench", "endpoint": "bench-endpoint"}]}))
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=f"http://127.0.0.1:{emu_port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for key in ("GATEWAY_CONFIG", "GATEWAY_CONFIG_JSON", "GATEWAY_API_KEYS"):
        env.pop(key, None)
    cli = [sys.executable, "-m", "llm_gateway"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [
        subprocess.Popen(
            [
                *cli,
                "emulate",
                "--port",
                str(emu_port),
                "--endpoints",
                str(endpoints),
                "--log-level",
                "warning",
            ],
            **quiet,
        ),
        subprocess.Popen(
            [
                *cli,
                "serve",
                "--port",
                str(gw_port),
                "--config",
                str(config),
                "--log-level",
                "warning",
            ],
            **quiet,
        ),
    ]
    wait_http(emu_port)
    wait_http(gw_port, "/health")
    return procs, emu_port, gw_port, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        procs, emu_port, gw_port, _ = start_processes(Path(tmp))
        try:
            results = measure(args, emu_port, gw_port)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report = {"machine": machine, "rounds": args.rounds, "tokens": args.tokens, **results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"Machine: {machine}; {args.rounds} interleaved rounds, {args.tokens} tokens, zero model latency\n"
    )
    print(f"{'':34}{'median':>10}{'p95':>10}{'p99':>10}")
    for label, key in (
        ("/generate   direct boto3", "generate_direct"),
        ("/generate   via gateway", "generate_gateway"),
        ("first token direct boto3", "ttft_direct"),
        ("first token via gateway", "ttft_gateway"),
    ):
        r = report[key]
        print(f"{label:34}{r['median_ms']:>8.2f}ms{r['p95_ms']:>8.2f}ms{r['p99_ms']:>8.2f}ms")
    print()
    for label, key in (("/generate", "generate_added"), ("first token", "ttft_added")):
        r = report[key]
        print(
            f"Added by the gateway, {label:12} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms"
        )
    print(f"\nJSON: {args.json}")
    return 0


def measure(args: argparse.Namespace, emu_port: int, gw_port: int) -> dict[str, dict[str, float]]:
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=f"http://127.0.0.1:{emu_port}",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )
    params = {"max_new_tokens": args.tokens, "details": True, "return_full_text": False}
    direct_body = json.dumps({"inputs": PROMPT, "parameters": params}).encode()
    direct_stream_body = json.dumps(
        {"inputs": PROMPT, "parameters": params, "stream": True}
    ).encode()
    gateway_body = json.dumps(
        {"inputs": PROMPT, "parameters": {"max_new_tokens": args.tokens}}
    ).encode()
    conn = http.client.HTTPConnection("127.0.0.1", gw_port)
    headers = {"content-type": "application/json"}

    def direct_generate() -> float:
        t = time.perf_counter()
        runtime.invoke_endpoint(
            EndpointName="bench-endpoint", Body=direct_body, ContentType="application/json"
        )["Body"].read()
        return time.perf_counter() - t

    def gateway_generate() -> float:
        t = time.perf_counter()
        conn.request("POST", "/generate", gateway_body, headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return time.perf_counter() - t

    def direct_ttft() -> float:
        t = time.perf_counter()
        out = runtime.invoke_endpoint_with_response_stream(
            EndpointName="bench-endpoint", Body=direct_stream_body, ContentType="application/json"
        )
        first = None
        for event in out["Body"]:
            if first is None and b"data:" in event.get("PayloadPart", {}).get("Bytes", b""):
                first = time.perf_counter() - t
        return first

    def gateway_ttft() -> float:
        t = time.perf_counter()
        conn.request("POST", "/generate_stream", gateway_body, headers)
        response = conn.getresponse()
        first = None
        while True:
            line = response.readline()
            if not line:
                break
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter() - t
        return first

    for _ in range(20):  # warm-up: connections, imports, caches
        direct_generate(), gateway_generate(), direct_ttft(), gateway_ttft()
    samples: dict[str, list[float]] = {k: [] for k in ("gd", "gg", "td", "tg")}
    for _ in range(args.rounds):
        samples["gd"].append(direct_generate())
        samples["gg"].append(gateway_generate())
        samples["td"].append(direct_ttft())
        samples["tg"].append(gateway_ttft())

    def added(gateway: list[float], direct: list[float]) -> dict[str, float]:
        g, d = summary(gateway), summary(direct)
        return {k: round(g[k] - d[k], 3) for k in g}

    return {
        "generate_direct": summary(samples["gd"]),
        "generate_gateway": summary(samples["gg"]),
        "generate_added": added(samples["gg"], samples["gd"]),
        "ttft_direct": summary(samples["td"]),
        "ttft_gateway": summary(samples["tg"]),
        "ttft_added": added(samples["tg"], samples["td"]),
    }


if __name__ == "__main__":
    raise SystemExit(main())
