"""``make load``: a bounded load test on the local server with the emulator.

Separate processes for the emulator, the gateway (uvicorn) and this client. Each round runs
``--streams`` concurrent streaming requests (paced like a model) and ``--requests`` buffered
requests (``--concurrency`` at a time) through both dialects, counts errors, and reads the
gateway's resident memory from ``/proc``. Several rounds show whether memory stays flat.
Results: ``docs/load.md`` and ``bench/results/load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(tmp: Path, tokens: int, token_ms: float) -> tuple[list[subprocess.Popen], int]:
    emu_port, gw_port = free_port(), free_port()
    (tmp / "endpoints.yaml").write_text(
        json.dumps(
            {
                "load-endpoint": {
                    "tgi_version": "3.x",
                    "output_tokens": tokens,
                    "pacing": {"first_token_ms": 20, "token_ms": token_ms},
                },
            }
        )
    )
    (tmp / "models.json").write_text(
        json.dumps(
            {"models": [{"name": "load", "endpoint": "load-endpoint", "template": "chatml"}]}
        )
    )
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=f"http://127.0.0.1:{emu_port}",
        AWS_ACCESS_KEY_ID="load",
        AWS_SECRET_ACCESS_KEY="load",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_DISABLED="true",
        GATEWAY_LOG_LEVEL="WARNING",
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    cli = [sys.executable, "-m", "llm_gateway"]
    procs = [
        subprocess.Popen(
            [
                *cli,
                "emulate",
                "--port",
                str(emu_port),
                "--endpoints",
                str(tmp / "endpoints.yaml"),
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
                str(tmp / "models.json"),
                "--log-level",
                "warning",
                "--no-ui",
            ],
            **quiet,
        ),
    ]
    wait_http(emu_port)
    wait_http(gw_port, "/health")
    return procs, gw_port


async def one_stream(client: httpx.AsyncClient, i: int, tokens: int) -> str | None:
    if i % 2:
        body = {"inputs": f"Stream {i}", "parameters": {"max_new_tokens": tokens}}
        path = "/generate_stream"
    else:
        body = {
            "model": "load",
            "messages": [{"role": "user", "content": f"Stream {i}"}],
            "max_tokens": tokens,
            "stream": True,
        }
        path = "/v1/chat/completions"
    try:
        async with client.stream("POST", path, json=body) as r:
            data = [line async for line in r.aiter_lines() if line.startswith("data:")]
        if r.status_code != 200 or not data or '"error"' in data[-1] or '"error"' in data[-2:][0]:
            return f"{path} {r.status_code} {data[-1] if data else ''}"[:200]
    except Exception as exc:
        return f"{path} {type(exc).__name__}: {exc}"
    return None


async def one_request(client: httpx.AsyncClient, i: int, gate: asyncio.Semaphore) -> str | None:
    if i % 2:
        path, body = "/generate", {"inputs": f"Request {i}", "parameters": {"max_new_tokens": 8}}
    else:
        path, body = "/v1/completions", {"model": "load", "prompt": f"Request {i}", "max_tokens": 8}
    async with gate:
        try:
            r = await client.post(path, json=body)
        except Exception as exc:
            return f"{path} {type(exc).__name__}: {exc}"
    return None if r.status_code == 200 else f"{path} {r.status_code} {r.text[:120]}"


async def round_(url: str, args: argparse.Namespace) -> dict:
    limits = httpx.Limits(max_connections=args.streams + args.concurrency + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        streams = await asyncio.gather(
            *(one_stream(client, i, args.tokens) for i in range(args.streams))
        )
        streams_s = time.perf_counter() - started
        gate = asyncio.Semaphore(args.concurrency)
        started = time.perf_counter()
        buffered = await asyncio.gather(
            *(one_request(client, i, gate) for i in range(args.requests))
        )
        buffered_s = time.perf_counter() - started
    errors = [e for e in streams + buffered if e]
    return {
        "streams_seconds": round(streams_s, 2),
        "buffered_seconds": round(buffered_s, 2),
        "buffered_per_second": round(args.requests / buffered_s, 1),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--token-ms", type=float, default=10.0)
    args = parser.parse_args()

    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        procs, port = start(Path(tmp), args.tokens, args.token_ms)
        gateway_pid = procs[1].pid
        try:
            baseline = rss_mb(gateway_pid)
            for n in range(1, args.rounds + 1):
                result = asyncio.run(round_(f"http://127.0.0.1:{port}", args))
                result["gateway_rss_mb"] = round(rss_mb(gateway_pid), 1)
                rounds.append(result)
                print(
                    f"round {n}: {args.streams} streams in {result['streams_seconds']} s, "
                    f"{args.requests} buffered in {result['buffered_seconds']} s "
                    f"({result['buffered_per_second']}/s), errors {len(result['errors'])}, "
                    f"gateway RSS {result['gateway_rss_mb']} MB",
                    flush=True,
                )
                for error in result["errors"][:5]:
                    print("   ", error)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)

    growth = rounds[-1]["gateway_rss_mb"] - rounds[1]["gateway_rss_mb"] if len(rounds) > 1 else 0.0
    errors = sum(len(r["errors"]) for r in rounds)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "settings": vars(args),
        "baseline_rss_mb": round(baseline, 1),
        "rounds": rounds,
        "rss_growth_after_round_2_mb": round(growth, 1),
        "errors": errors,
    }
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report)
    ok = errors == 0 and growth < 25
    print(
        f"\n{'PASS' if ok else 'FAIL'}: {errors} errors; gateway memory grew {growth:.1f} MB "
        "from round 2 to the last"
    )
    return 0 if ok else 1


def write_markdown(report: dict) -> None:
    s = report["settings"]
    lines = [
        "# Load test",
        "",
        "`make load` (`bench/load.py`): the emulator, the gateway (uvicorn) and the client run as",
        "separate processes on one machine. Each round: "
        f"{s['streams']} concurrent streams ({s['tokens']} tokens each, paced {s['token_ms']} ms per "
        f"token; half TGI `/generate_stream`, half OpenAI chat), then {s['requests']} buffered "
        f"requests, {s['concurrency']} at a time (half `/generate`, half `/v1/completions`).",
        "Metrics lines are switched off so stdout does not dominate; logs at WARNING.",
        "",
        f"Machine: {report['machine']}. Gateway RSS before the first round: "
        f"{report['baseline_rss_mb']} MB.",
        "",
        "| round | streams: wall time | buffered: wall time | buffered/s | errors | gateway RSS after |",
        "|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(report["rounds"], 1):
        lines.append(
            f"| {n} | {r['streams_seconds']} s | {r['buffered_seconds']} s | "
            f"{r['buffered_per_second']} | {len(r['errors'])} | {r['gateway_rss_mb']} MB |"
        )
    lines += [
        "",
        f"Errors in total: **{report['errors']}**. Memory growth from round 2 to the last round: "
        f"**{report['rss_growth_after_round_2_mb']} MB** (round 1 includes warm-up: imports, "
        "thread pool and connection pool growth).",
        "",
    ]
    (ROOT / "docs" / "load.md").write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
