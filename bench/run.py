"""``make bench``: what the gateway costs, measured against direct boto3 and a bare floor.

Targets, in one run on one machine (absolute times on a shared 2-core box are noise; ratios
measured together are not):

a. buffered ``/generate``: direct ``invoke_endpoint`` vs the gateway (uvicorn) vs the bare
   FastAPI + boto3 pass-through in ``bench/bare_app.py`` (the floor);
b. streaming: time to first token and inter-token latency vs direct boto3 streaming; relay
   throughput on a 2,000-token unpaced stream;
c. the Mangum handler in-process: time per API Gateway event, gateway vs bare;
d. cold start: a fresh process to the first event answered (Mangum) and to the first streamed
   token (uvicorn), gateway vs bare, and peak RSS;
e. the unzipped size of function + layer (``sam build``) against Lambda's 250 MB.

Everything talks to the SageMaker emulator at zero model latency; the emulator, the servers and
this client are separate processes; rounds interleave the targets so drift hits all alike.
Output: ``bench/results/latest.json`` and ``docs/benchmarks.md``.

The code measured is this checkout's ``src`` (put first on the servers' ``PYTHONPATH``), so a
copy of another commit (``git archive <commit> | tar -x -C dir``) benchmarks that commit. The
gateway is built by ``create_app``, imported from ``llm_gateway.app`` or, before that module
existed, ``llm_gateway.http.app``; the Lambda figures use ``llm_gateway.handler``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PROMPT = "What does a gateway do?"
SHORT, LONG = 20, 2000  # tokens per answer


# -- helpers -----------------------------------------------------------------------------------


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
            pass
        time.sleep(0.02)
    raise RuntimeError(f"nothing answered on port {port}")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linearly interpolated between order statistics (numpy's default).

    Non-decreasing in ``q`` for the same values, and ``percentile(v, 50)`` is the median.
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = q / 100 * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(values: list[float]) -> dict[str, float]:
    """Median, p95 and p99 in milliseconds, from one sample (so median ≤ p95 ≤ p99)."""
    return {
        key: round(percentile(values, q) * 1000, 3)
        for key, q in (("median_ms", 50), ("p95_ms", 95), ("p99_ms", 99))
    }


def added(path: list[float], direct: list[float]) -> dict[str, float]:
    """What a path adds to direct boto3: percentiles of the per-round differences.

    ``path[i]`` and ``direct[i]`` were measured in the same round, back to back, so each
    difference sees the same machine state. (A difference of percentiles is no percentile of
    anything: it is not even ordered, p99 can come out below p95.)
    """
    if len(path) != len(direct):
        raise ValueError(f"unpaired samples: {len(path)} and {len(direct)}")
    return ms([p - d for p, d in zip(path, direct, strict=True)])


# The gateway's app factory: its home after the seams refactor first, then its old one. Only a
# missing module or name falls through; any other import error in the new module is raised.
IMPORT_CREATE_APP = """
try:
    from llm_gateway.app import create_app
    create_app_from = "llm_gateway.app"
except ImportError as exc:
    if exc.name != "llm_gateway.app":
        raise
    from llm_gateway.http.app import create_app
    create_app_from = "llm_gateway.http.app"
"""

# One server process, gateway or bare, started the same way: uvicorn with the options
# ``llm-gateway serve`` uses (no lifespan, no access log, 75 s keep-alive).
SERVER_CHILD = (
    """
import sys
which, port = sys.argv[1], int(sys.argv[2])
if which == "bare":
    from bare_app import app
else:
"""
    + "".join(f"    {line}\n" for line in IMPORT_CREATE_APP.strip().splitlines())
    + """
    app = create_app()
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
            access_log=False, timeout_keep_alive=75)
"""
)


def server_command(which: str, port: int) -> list[str]:
    return [sys.executable, "-c", SERVER_CHILD, which, str(port)]


def source(env: dict[str, str]) -> dict:
    """What was measured: the commit (``BENCH_COMMIT`` for a copy without ``.git``), whether
    ``src`` differed from it, and where the servers' ``llm_gateway`` and ``create_app`` came from."""
    out: dict = {"commit": os.environ.get("BENCH_COMMIT")}
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        head = subprocess.run(
            [git, "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [git, "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
        )
        out["commit"] = head.stdout.strip() or out["commit"]
        out["src_modified"] = bool(dirty.stdout.strip())
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_CREATE_APP
            + "import llm_gateway\nprint(llm_gateway.__file__)\nprint(create_app_from)",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise RuntimeError(f"cannot import the gateway's create_app:\n{probe.stderr}")
    package, factory = probe.stdout.split()
    out["package"] = str(Path(package).parent)
    out["create_app"] = f"{factory}.create_app"
    return out


class Stack:
    """The emulator, the gateway and the bare floor, each its own process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.emu_port, self.gw_port, self.bare_port = free_port(), free_port(), free_port()
        endpoints: dict[str, dict] = {
            "bench-endpoint": {"tgi_version": "3.x", "output_tokens": SHORT},
            "bench-long": {"tgi_version": "3.x", "output_tokens": LONG},
        }
        models = [
            {"name": "bench", "endpoint": "bench-endpoint", "template": "chatml"},
            {"name": "bench-long", "endpoint": "bench-long", "template": "chatml"},
        ]
        # The openai backend on a vLLM-like endpoint, where the measured code has one.
        self.openai = (ROOT / "src" / "llm_gateway" / "backends" / "openai").is_dir()
        if self.openai:
            endpoints["bench-vllm"] = {"server": "vllm", "output_tokens": SHORT}
            endpoints["bench-vllm-long"] = {"server": "vllm", "output_tokens": LONG}
            models += [
                {"name": "bench-openai", "endpoint": "bench-vllm", "backend": "openai"},
                {"name": "bench-openai-long", "endpoint": "bench-vllm-long", "backend": "openai"},
            ]
        (tmp / "endpoints.yaml").write_text(json.dumps(endpoints))
        self.config = tmp / "models.json"
        self.config.write_text(json.dumps({"models": models}))
        self.env = dict(
            os.environ,
            AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=f"http://127.0.0.1:{self.emu_port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            GATEWAY_CONFIG=str(self.config),
            # bare_app, and this checkout's code ahead of whatever the venv has installed
            PYTHONPATH=os.pathsep.join([str(BENCH), str(ROOT / "src")]),
        )
        for key in ("GATEWAY_CONFIG_JSON", "GATEWAY_API_KEYS", "GATEWAY_UI"):
            self.env.pop(key, None)
        self.procs: list[subprocess.Popen] = []

    def spawn(self, args: list[str], **env: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**self.env, **env}
        )
        self.procs.append(proc)
        return proc

    def start(self) -> Stack:
        py = sys.executable
        self.spawn(
            [
                py,
                "-m",
                "llm_gateway",
                "emulate",
                "--port",
                str(self.emu_port),
                "--endpoints",
                str(self.tmp / "endpoints.yaml"),
                "--log-level",
                "warning",
            ]
        )
        # The gateway as deployed in stream mode: metrics and logs on (written to /dev/null).
        self.gateway = self.spawn(server_command("gateway", self.gw_port))
        self.bare = self.spawn(server_command("bare", self.bare_port))
        wait_http(self.emu_port)
        wait_http(self.gw_port, "/health")
        wait_http(self.bare_port, "/health")
        return self

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)


# -- a. buffered, b. streaming -------------------------------------------------------------------


class Client:
    def __init__(self, stack: Stack) -> None:
        self.runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=f"http://127.0.0.1:{stack.emu_port}",
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(retries={"total_max_attempts": 1}),
        )
        self.gw = http.client.HTTPConnection("127.0.0.1", stack.gw_port)
        self.bare = http.client.HTTPConnection("127.0.0.1", stack.bare_port)
        params = {"max_new_tokens": LONG, "details": True, "return_full_text": False}
        self.upstream = json.dumps({"inputs": PROMPT, "parameters": params}).encode()
        self.upstream_stream = json.dumps(
            {"inputs": PROMPT, "parameters": params, "stream": True}
        ).encode()
        self.tgi = json.dumps({"inputs": PROMPT, "parameters": {"max_new_tokens": LONG}}).encode()

    # buffered
    def direct_generate(self) -> float:
        t = time.perf_counter()
        self.runtime.invoke_endpoint(
            EndpointName="bench-endpoint", Body=self.upstream, ContentType="application/json"
        )["Body"].read()
        return time.perf_counter() - t

    def http_generate(self, conn: http.client.HTTPConnection, path: str, body: bytes) -> float:
        t = time.perf_counter()
        conn.request("POST", path, body, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return time.perf_counter() - t

    def gateway_generate(self) -> float:
        return self.http_generate(self.gw, "/models/bench/generate", self.tgi)

    def bare_generate(self) -> float:
        return self.http_generate(self.bare, "/generate", self.upstream)

    # streams: (time to first token, [token arrival times])
    def direct_stream(self, endpoint: str = "bench-endpoint") -> tuple[float, list[float]]:
        t = time.perf_counter()
        out = self.runtime.invoke_endpoint_with_response_stream(
            EndpointName=endpoint, Body=self.upstream_stream, ContentType="application/json"
        )
        arrivals = []
        for event in out["Body"]:
            now = time.perf_counter()
            arrivals += [now - t] * event.get("PayloadPart", {}).get("Bytes", b"").count(b"data:")
        return arrivals[0], arrivals

    def http_stream(
        self, conn: http.client.HTTPConnection, path: str, body: bytes
    ) -> tuple[float, list[float]]:
        t = time.perf_counter()
        conn.request("POST", path, body, {"content-type": "application/json"})
        response = conn.getresponse()
        arrivals = []
        while True:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                arrivals.append(time.perf_counter() - t)
        assert response.status == 200
        return arrivals[0], arrivals

    def gateway_stream(self, model: str = "bench") -> tuple[float, list[float]]:
        return self.http_stream(self.gw, f"/models/{model}/generate_stream", self.tgi)

    def bare_stream(self) -> tuple[float, list[float]]:
        return self.http_stream(self.bare, "/generate_stream", self.upstream_stream)


def itl(arrivals: list[float]) -> float:
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return statistics.mean(gaps) if gaps else 0.0


def throughput(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def measure_http(stack: Stack, rounds: int) -> dict:
    c = Client(stack)
    for _ in range(20):
        c.direct_generate(), c.gateway_generate(), c.bare_generate()
        c.direct_stream(), c.gateway_stream(), c.bare_stream()
    s: dict[str, list[float]] = {
        k: []
        for k in (
            "gen_direct",
            "gen_gateway",
            "gen_bare",
            "ttft_direct",
            "ttft_gateway",
            "ttft_bare",
            "itl_direct",
            "itl_gateway",
            "itl_bare",
        )
    }
    generate = {"direct": c.direct_generate, "gateway": c.gateway_generate, "bare": c.bare_generate}
    stream = {"direct": c.direct_stream, "gateway": c.gateway_stream, "bare": c.bare_stream}
    names = list(generate)
    for i in range(rounds):
        # Round i: each path once, back to back, so s[...][i] of two paths can be paired. The
        # order rotates, so no path always runs first (or right after another particular one).
        order = names[i % 3 :] + names[: i % 3]
        for name in order:
            s[f"gen_{name}"].append(generate[name]())
        for name in order:
            first, arrivals = stream[name]()
            s[f"ttft_{name}"].append(first)
            s[f"itl_{name}"].append(itl(arrivals))
    # relay throughput: the 2,000-token stream, unpaced
    tp: dict[str, list[float]] = {"direct": [], "gateway": [], "bare": []}
    for _ in range(5):
        tp["direct"].append(throughput(c.direct_stream("bench-long")[1]))
        tp["gateway"].append(throughput(c.gateway_stream("bench-long")[1]))
        gw_tokens = len(c.gateway_stream("bench-long")[1])
        assert gw_tokens == LONG, gw_tokens
    out = {k: ms(v) for k, v in s.items()}
    for metric in ("gen", "ttft"):
        for path in ("gateway", "bare"):
            out[f"{metric}_added_{path}"] = added(s[f"{metric}_{path}"], s[f"{metric}_direct"])
    out["throughput_tokens_per_s"] = {k: round(statistics.median(v)) for k, v in tp.items() if v}
    return out


# -- the openai backend: the same paths over a vLLM-like endpoint --------------------------------


class OpenAIClient(Client):
    """Direct boto3 calls with the bodies the openai backend sends, and the gateway's TGI
    dialect (prompts as completions) and OpenAI chat relay over it."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        completion = {"model": "", "prompt": PROMPT, "max_tokens": LONG, "temperature": 0}
        self.completion = json.dumps(completion).encode()
        options = {"stream": True, "stream_options": {"include_usage": True}}
        self.completion_stream = json.dumps({**completion, **options}).encode()
        messages = [{"role": "user", "content": PROMPT}]
        self.chat_upstream = json.dumps(
            {"model": "", "messages": messages, "max_tokens": LONG, **options}
        ).encode()
        self.chat = json.dumps(
            {"model": "bench-openai", "messages": messages, "max_tokens": LONG, "stream": True}
        ).encode()

    def direct_completion(self) -> float:
        t = time.perf_counter()
        self.runtime.invoke_endpoint(
            EndpointName="bench-vllm", Body=self.completion, ContentType="application/json"
        )["Body"].read()
        return time.perf_counter() - t

    def gateway_completion(self) -> float:
        return self.http_generate(self.gw, "/models/bench-openai/generate", self.tgi)

    def direct_openai_stream(
        self, body: bytes, endpoint: str = "bench-vllm"
    ) -> tuple[float, list[float]]:
        t = time.perf_counter()
        out = self.runtime.invoke_endpoint_with_response_stream(
            EndpointName=endpoint, Body=body, ContentType="application/json"
        )
        arrivals = []
        for event in out["Body"]:
            now = time.perf_counter()
            data = event.get("PayloadPart", {}).get("Bytes", b"")
            arrivals += [now - t] * data.count(b'"choices":[{')  # token chunks, not usage
        return arrivals[0], arrivals

    def gateway_tgi_stream(self, model: str = "bench-openai") -> tuple[float, list[float]]:
        return self.http_stream(self.gw, f"/models/{model}/generate_stream", self.tgi)

    def gateway_chat_stream(self, model: str = "bench-openai") -> tuple[float, list[float]]:
        body = self.chat.replace(b'"bench-openai"', json.dumps(model).encode())
        first, arrivals = self.http_stream(self.gw, "/v1/chat/completions", body)
        return first, arrivals[:-1]  # data: [DONE]


def measure_openai(stack: Stack, rounds: int) -> dict | None:
    """Added latency and relay throughput of the openai backend, next to the TGI backend's."""
    if not stack.openai:
        return None
    c = OpenAIClient(stack)
    for _ in range(20):
        c.direct_completion(), c.gateway_completion()
        c.direct_openai_stream(c.completion_stream), c.gateway_tgi_stream()
        c.direct_openai_stream(c.chat_upstream), c.gateway_chat_stream()
    calls: dict[str, Any] = {
        "gen_direct": c.direct_completion,
        "gen_gateway": c.gateway_completion,
        "ttft_direct": lambda: c.direct_openai_stream(c.completion_stream)[0],
        "ttft_gateway": lambda: c.gateway_tgi_stream()[0],
        "ttft_chat_direct": lambda: c.direct_openai_stream(c.chat_upstream)[0],
        "ttft_chat_gateway": lambda: c.gateway_chat_stream()[0],
    }
    s: dict[str, list[float]] = {k: [] for k in calls}
    pairs = [("gen_direct", "gen_gateway"), ("ttft_direct", "ttft_gateway")]
    pairs.append(("ttft_chat_direct", "ttft_chat_gateway"))
    for i in range(rounds):
        for direct, gateway in pairs:
            for name in (direct, gateway) if i % 2 else (gateway, direct):
                s[name].append(calls[name]())
    long_completion = c.completion_stream
    long_chat = c.chat_upstream
    tp: dict[str, list[float]] = {"direct": [], "gateway_tgi": [], "direct_chat": []}
    tp["gateway_chat"] = []
    for _ in range(5):
        tp["direct"].append(
            throughput(c.direct_openai_stream(long_completion, "bench-vllm-long")[1])
        )
        arrivals = c.gateway_tgi_stream("bench-openai-long")[1]
        assert len(arrivals) == LONG, len(arrivals)
        tp["gateway_tgi"].append(throughput(arrivals))
        tp["direct_chat"].append(
            throughput(c.direct_openai_stream(long_chat, "bench-vllm-long")[1])
        )
        tp["gateway_chat"].append(throughput(c.gateway_chat_stream("bench-openai-long")[1]))
    out: dict[str, Any] = {k: ms(v) for k, v in s.items()}
    out["gen_added_gateway"] = added(s["gen_gateway"], s["gen_direct"])
    out["ttft_added_gateway"] = added(s["ttft_gateway"], s["ttft_direct"])
    out["ttft_added_chat"] = added(s["ttft_chat_gateway"], s["ttft_chat_direct"])
    out["throughput_tokens_per_s"] = {k: round(statistics.median(v)) for k, v in tp.items()}
    return out


# -- f. budgets: the reservation overlapped with a paced upstream --------------------------------

# A realistic upstream: 50 ms to the first token, then 5 ms a token (streams); a buffered call
# answers after the whole paced generation would take (50 + 19 × 5 = 145 ms).
PACING = {"first_token_ms": 50, "token_ms": 5}
BUFFERED_UPSTREAM_S = (PACING["first_token_ms"] + (SHORT - 1) * PACING["token_ms"]) / 1000
BUDGET_TABLE = "bench-budgets"
BUDGET_KEYS = "bench:sk-bench,over:sk-over"
OVER_LIMIT = 100  # tokens per minute for the key the section exhausts (a request costs ~26)
EXHAUSTED_REQUESTS = 40

# The embedded store (llm_gateway.budgets.local.start_embedded_store, moto's server mode) in its
# own process, counting the requests that reach it by DynamoDB operation (X-Amz-Target). Each
# line on stdin asks for the counts so far; they come back as one JSON line.
STORE_CHILD = r"""
import json, sys, threading
from collections import Counter
from moto.moto_server import werkzeug_app
counts, lock = Counter(), threading.Lock()
serve = werkzeug_app.DomainDispatcherApplication.__call__
def counting(self, environ, start_response):
    operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2] or "other"
    with lock:
        counts[operation] += 1
    return serve(self, environ, start_response)
werkzeug_app.DomainDispatcherApplication.__call__ = counting
from llm_gateway.budgets.local import start_embedded_store
url, stop = start_embedded_store(sys.argv[1])
print(url, flush=True)
for _ in sys.stdin:
    with lock:
        print(json.dumps(counts), flush=True)
stop()
"""


class Store:
    """The embedded budget store, a child process that counts what reaches it."""

    def __init__(self, stack: Stack) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STORE_CHILD, BUDGET_TABLE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=stack.env,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the embedded budget store did not start")

    def counts(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] != before.get(k, 0)}


class BudgetClient:
    """Direct boto3 to the paced endpoints, and the same requests through two gateways that
    differ only in the models file's ``budgets`` section (both check API keys)."""

    def __init__(self, stack: Stack, off_port: int, on_port: int) -> None:
        self.c = Client(stack)
        self.emu_port = stack.emu_port
        self.off = http.client.HTTPConnection("127.0.0.1", off_port)
        self.on = http.client.HTTPConnection("127.0.0.1", on_port)
        params = {"max_new_tokens": SHORT, "details": True, "return_full_text": False}
        self.upstream = json.dumps({"inputs": PROMPT, "parameters": params}).encode()
        self.upstream_stream = json.dumps(
            {"inputs": PROMPT, "parameters": params, "stream": True}
        ).encode()
        self.body = json.dumps({"inputs": PROMPT, "parameters": {"max_new_tokens": SHORT}})

    def direct_generate(self) -> float:
        t = time.perf_counter()
        self.c.runtime.invoke_endpoint(
            EndpointName="bench-paced-buffered", Body=self.upstream, ContentType="application/json"
        )["Body"].read()
        return time.perf_counter() - t

    def direct_stream(self) -> float:
        t = time.perf_counter()
        out = self.c.runtime.invoke_endpoint_with_response_stream(
            EndpointName="bench-paced", Body=self.upstream_stream, ContentType="application/json"
        )
        first = None
        for event in out["Body"]:
            if first is None and b"data:" in event.get("PayloadPart", {}).get("Bytes", b""):
                first = time.perf_counter() - t
        assert first is not None
        return first

    def call(
        self, conn: http.client.HTTPConnection, key: str, *, stream: bool
    ) -> tuple[int, float, dict[str, str]]:
        """(status, seconds to the answer or to the first token, headers)."""
        path = (
            "/models/bench-paced/generate_stream"
            if stream
            else "/models/bench-paced-buffered/generate"
        )
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        t = time.perf_counter()
        conn.request("POST", path, self.body, headers)
        response = conn.getresponse()
        elapsed = None
        if stream and response.status == 200:
            while line := response.readline():
                if elapsed is None and line.startswith(b"data:"):
                    elapsed = time.perf_counter() - t
        else:
            response.read()
            elapsed = time.perf_counter() - t
        assert elapsed is not None
        return response.status, elapsed, dict(response.getheaders())

    def timed(self, conn: http.client.HTTPConnection, *, stream: bool) -> float:
        status, elapsed, _ = self.call(conn, "sk-bench", stream=stream)
        assert status == 200, status
        return elapsed

    def upstream_calls(self) -> int:
        total = 0
        for name in ("bench-paced", "bench-paced-buffered"):
            conn = http.client.HTTPConnection("127.0.0.1", self.emu_port, timeout=5)
            conn.request("GET", f"/_emulator/endpoints/{name}/stats")
            total += json.loads(conn.getresponse().read())["requests"]
        return total


def budgets_available() -> bool:
    return (ROOT / "src" / "llm_gateway" / "budgets" / "local.py").is_file()


def measure_budgets(stack: Stack, rounds: int) -> dict | None:
    """Time to first token and buffered latency with budgets off and on (paired rounds), the
    store round trips per request, and an exhausted key's refusals."""
    if not budgets_available():
        return None
    for name, spec in (
        ("bench-paced", {"output_tokens": SHORT, "pacing": PACING}),
        (
            "bench-paced-buffered",
            {
                "output_tokens": SHORT,
                "faults": [{"kind": "slow_first_byte", "seconds": BUFFERED_UPSTREAM_S}],
            },
        ),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", stack.emu_port, timeout=5)
        conn.request("PUT", f"/_emulator/endpoints/{name}", json.dumps(spec))
        assert conn.getresponse().status == 200
    # Streams go to the paced endpoint, buffered calls to the slow one (the emulator paces only
    # streams).
    models = [
        {"name": name, "endpoint": name, "template": "chatml"}
        for name in ("bench-paced", "bench-paced-buffered")
    ]
    budgets = {
        "table": BUDGET_TABLE,
        "default": {"tokens_per_minute": 10**12},
        "keys": {"over": {"tokens_per_minute": OVER_LIMIT}},
    }
    off_config, on_config = stack.tmp / "models-keys.json", stack.tmp / "models-budgets.json"
    off_config.write_text(json.dumps({"models": models}))
    on_config.write_text(json.dumps({"models": models, "budgets": budgets}))
    store = Store(stack)
    off_port, on_port = free_port(), free_port()
    env = {"GATEWAY_API_KEYS": BUDGET_KEYS, "AWS_ENDPOINT_URL_DYNAMODB": store.url}
    servers = [
        stack.spawn(server_command("gateway", off_port), **env, GATEWAY_CONFIG=str(off_config)),
        stack.spawn(server_command("gateway", on_port), **env, GATEWAY_CONFIG=str(on_config)),
    ]
    try:
        wait_http(off_port, "/health")
        wait_http(on_port, "/health")
        return budget_rounds(BudgetClient(stack, off_port, on_port), store, rounds)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=10)
        store.stop()


def budget_rounds(b: BudgetClient, store: Store, rounds: int) -> dict:
    for _ in range(10):
        b.direct_generate(), b.timed(b.off, stream=False), b.timed(b.on, stream=False)
        b.direct_stream(), b.timed(b.off, stream=True), b.timed(b.on, stream=True)
    # The budgets are on: the answer carries OpenAI's headers, the bench key's limit.
    _, _, headers = b.call(b.on, "sk-bench", stream=False)
    limit_header = headers.get("x-ratelimit-limit-tokens")
    assert limit_header == str(10**12), headers
    out: dict[str, Any] = {"store_round_trip": store_round_trip(store)}
    time.sleep(1)  # the warm-up's settlements are written off the response path
    generate = {
        "direct": b.direct_generate,
        "off": lambda: b.timed(b.off, stream=False),
        "on": lambda: b.timed(b.on, stream=False),
    }
    first = {
        "direct": b.direct_stream,
        "off": lambda: b.timed(b.off, stream=True),
        "on": lambda: b.timed(b.on, stream=True),
    }
    s: dict[str, list[float]] = {f"{m}_{p}": [] for m in ("gen", "ttft") for p in generate}
    names = list(generate)
    before = store.counts()
    for i in range(rounds):
        order = names[i % 3 :] + names[: i % 3]  # as in measure_http: paired, rotating
        for name in order:
            s[f"gen_{name}"].append(generate[name]())
        for name in order:
            s[f"ttft_{name}"].append(first[name]())
    time.sleep(1)  # let the last settlements reach the store
    calls = delta(store.counts(), before)
    out.update({k: ms(v) for k, v in s.items()})
    for metric in ("gen", "ttft"):
        out[f"{metric}_added_off"] = added(s[f"{metric}_off"], s[f"{metric}_direct"])
        out[f"{metric}_added_on"] = added(s[f"{metric}_on"], s[f"{metric}_direct"])
        out[f"{metric}_budgets"] = added(s[f"{metric}_on"], s[f"{metric}_off"])
    requests = 2 * rounds  # budgeted requests: one buffered and one stream per round
    out["pacing"] = {**PACING, "buffered_upstream_ms": round(BUFFERED_UPSTREAM_S * 1000)}
    out["rounds"] = rounds
    out["store_calls"] = calls
    out["store_calls_per_request"] = round(sum(calls.values()) / requests, 3)
    out["store_calls_per_request_by_operation"] = {
        k: round(v / requests, 3) for k, v in calls.items()
    }
    out["exhausted"] = exhausted_key(b, store)
    return out


def store_round_trip(store: Store, calls: int = 50) -> dict[str, float]:
    """One conditional ``UpdateItem`` from this process to the store, as a reservation makes
    (on a scratch item): what the overlap has to hide."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=store.url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        client.update_item(
            TableName=BUDGET_TABLE,
            Key={"pk": {"S": "key#bench-probe"}, "sk": {"S": "probe"}},
            UpdateExpression="ADD used :cost",
            ConditionExpression="attribute_not_exists(used) OR used <= :room",
            ExpressionAttributeValues={":cost": {"N": "26"}, ":room": {"N": str(10**12)}},
        )
        times.append(time.perf_counter() - t)
    return ms(times)


def exhausted_key(b: BudgetClient, store: Store) -> dict:
    """Spend the ``over`` key's minute, then count what its refused requests cost: upstream
    calls (the emulator's counts) and store requests."""
    into_minute = time.time() % 60
    if into_minute > 45:  # the window must not turn over while this runs
        time.sleep(60.5 - into_minute)
    admitted, upstream = 0, b.upstream_calls()
    for _ in range(20):  # until the store refuses (the key is then remembered as exhausted)
        status, _, _ = b.call(b.on, "sk-over", stream=False)
        if status == 429:
            break
        assert status == 200, status
        admitted += 1
    else:
        raise RuntimeError("the exhausted key was never refused")
    time.sleep(1)  # settlements of the admitted requests
    # The request the store refused had its upstream call started alongside the reservation.
    overlapped = b.upstream_calls() - upstream - admitted
    upstream, counts = b.upstream_calls(), store.counts()
    statuses, times = [], []
    for i in range(EXHAUSTED_REQUESTS):
        status, elapsed, _ = b.call(b.on, "sk-over", stream=bool(i % 2))
        statuses.append(status)
        times.append(elapsed)
    time.sleep(0.5)
    return {
        "limit_tokens_per_minute": OVER_LIMIT,
        "admitted_before_refusal": admitted,
        "upstream_calls_of_the_store_refusal": overlapped,
        "requests": EXHAUSTED_REQUESTS,
        "refused_429": statuses.count(429),
        "upstream_calls": b.upstream_calls() - upstream,
        "store_calls": sum(delta(store.counts(), counts).values()),
        "refusal": ms(times),
    }


# -- c. Mangum in-process, d. cold starts --------------------------------------------------------

MANGUM_CHILD = r"""
import json, os, resource, sys, time
started = time.perf_counter()
which, events, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
event = json.load(open(os.path.join(os.environ["ROOT"], "events", "generate.json")))
if which == "bare":
    event["body"] = json.dumps({"inputs": "What does a gateway do?", "parameters": {"max_new_tokens": 20}})
    from bare_app import handler
else:
    from llm_gateway.handler import handler
class Context:
    function_name = "bench"; function_version = "1"; memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "r"; log_group_name = "g"; log_stream_name = "s"
    def get_remaining_time_in_millis(self): return 29000
first = handler(event, Context())
assert first["statusCode"] == 200, first
cold = time.perf_counter() - started
sys.__stdout__.write("FIRST\n"); sys.__stdout__.flush()
times = []
for _ in range(rounds):
    t = time.perf_counter(); r = handler(event, Context()); times.append(time.perf_counter() - t)
    assert r["statusCode"] == 200
times.sort()
sys.__stdout__.write("RESULT " + json.dumps({"cold_in_process_s": cold,
    "median_ms": times[len(times)//2] * 1000 if times else None,
    "p95_ms": times[int(len(times) * 0.95)] * 1000 if times else None,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}) + "\n")
"""


def mangum_run(stack: Stack, which: str, rounds: int) -> dict:
    env = {
        **stack.env,
        "ROOT": str(ROOT),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "GATEWAY_CONFIG": str(stack.config),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "BARE_ENDPOINT": "bench-endpoint",
    }
    # the handler's default model is the config's first: bench (20 tokens), like the bare floor
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", MANGUM_CHILD, which, "1", str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    first = None
    lines = []
    for line in proc.stdout:  # the cold start ends when the first event is answered
        if line.startswith("FIRST") and first is None:
            first = time.perf_counter() - t
        lines.append(line)
    proc.wait(timeout=300)
    result = next((x for x in lines if x.startswith("RESULT ")), None)
    if result is None or first is None:
        raise RuntimeError("".join(lines)[-2000:] + proc.stderr.read()[-2000:])
    data = json.loads(result[7:])
    data["wall_s"] = first
    return data


def uvicorn_cold(stack: Stack, which: str) -> dict:
    """Spawn to the first streamed token, and the server's peak RSS."""
    port = free_port()
    env = {
        **stack.env,
        "GATEWAY_CONFIG": str(stack.config),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "BARE_ENDPOINT": "bench-endpoint",
    }
    t = time.perf_counter()
    proc = subprocess.Popen(
        server_command(which, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                if which == "gateway":
                    body = json.dumps({"inputs": PROMPT, "parameters": {"max_new_tokens": SHORT}})
                    conn.request(
                        "POST",
                        "/models/bench/generate_stream",
                        body,
                        {"content-type": "application/json"},
                    )
                else:
                    body = json.dumps(
                        {"inputs": PROMPT, "parameters": {"max_new_tokens": SHORT}, "stream": True}
                    )
                    conn.request(
                        "POST", "/generate_stream", body, {"content-type": "application/json"}
                    )
                response = conn.getresponse()
                while not response.readline().startswith(b"data:"):
                    pass
                first_token = time.perf_counter() - t
                response.read()
                break
            except (ConnectionRefusedError, http.client.RemoteDisconnected):
                time.sleep(0.005)
        hwm = next(
            int(x.split()[1])
            for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            if x.startswith("VmHWM:")
        )
        return {"first_token_s": first_token, "peak_rss_mb": hwm / 1024}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def measure_processes(stack: Stack, cold_runs: int, mangum_rounds: int) -> dict:
    mangum = {"gateway": [], "bare": []}
    uv = {"gateway": [], "bare": []}
    for _ in range(cold_runs):
        for which in ("gateway", "bare"):
            mangum[which].append(
                mangum_run(stack, which, mangum_rounds if not mangum[which] else 0)
            )
            uv[which].append(uvicorn_cold(stack, which))
    out = {}
    for which in ("gateway", "bare"):
        first = mangum[which][0]
        out[which] = {
            "mangum_event_median_ms": round(first["median_ms"], 3),
            "mangum_event_p95_ms": round(first["p95_ms"], 3),
            "mangum_cold_s": round(statistics.median(r["wall_s"] for r in mangum[which]), 3),
            "mangum_peak_rss_mb": round(
                statistics.median(r["maxrss_mb"] for r in mangum[which]), 1
            ),
            "uvicorn_cold_first_token_s": round(
                statistics.median(r["first_token_s"] for r in uv[which]), 3
            ),
            "uvicorn_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in uv[which]), 1),
        }
    return out


# -- e. package size ---------------------------------------------------------------------------


def package_size() -> dict | None:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if not sam.exists():
        return None
    build = Path(tempfile.mkdtemp(prefix="bench-sam-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1")
    # sam build needs a real python3.12 first on PATH (pyenv's shim alone is not enough)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found = sorted(Path(pyenv_root).glob("versions/3.12*/bin/python3.12"), reverse=True)
    if found:
        env["PATH"] = f"{found[0].parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [str(sam), "build", "--config-env", "default", "--build-dir", str(build)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        return {"error": result.stderr[-500:]}

    def size(path: Path) -> float:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6

    out = {
        "function_mb": round(size(build / "GatewayFunction"), 1),
        "layer_mb": round(size(build / "DepsLayer"), 1),
    }
    out["total_mb"] = round(out["function_mb"] + out["layer_mb"], 1)
    shutil.rmtree(build, ignore_errors=True)
    return out


# -- report --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--mangum-rounds", type=int, default=300)
    parser.add_argument(
        "--budget-rounds", type=int, default=100, help="paired rounds of the budgets section"
    )
    parser.add_argument("--no-size", action="store_true", help="skip the sam build size check")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite docs/benchmarks.md from bench/results/latest.json without measuring",
    )
    args = parser.parse_args()
    if args.markdown_only:
        report = json.loads((BENCH / "results" / "latest.json").read_text())
        (ROOT / "docs" / "benchmarks.md").write_text(markdown(report))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        measured = source(stack.env)
        print(f"Measuring {measured}", file=sys.stderr, flush=True)
        stack.start()
        try:
            http_results = measure_http(stack, args.rounds)
            http_results["openai"] = measure_openai(stack, max(args.rounds // 2, 1))
            http_results["budgets"] = measure_budgets(stack, args.budget_rounds)
            process_results = measure_processes(stack, args.cold_runs, args.mangum_rounds)
        finally:
            stack.stop()
    size = None if args.no_size else package_size()

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report = {
        "machine": machine,
        "source": measured,
        "rounds": args.rounds,
        "cold_runs": args.cold_runs,
        **http_results,
        "processes": process_results,
        "size": size,
    }
    report["targets"] = targets(report)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (ROOT / "docs" / "benchmarks.md").write_text(markdown(report))
    print((ROOT / "docs" / "benchmarks.md").read_text())
    return 0


def targets(r: dict) -> list[dict]:
    gw, bare = r["processes"]["gateway"], r["processes"]["bare"]
    added_gw = r["gen_added_gateway"]["median_ms"]
    added_bare = r["gen_added_bare"]["median_ms"]
    rows = [
        (
            "added latency vs the bare pass-through (median)",
            added_gw / added_bare if added_bare > 0 else float("inf"),
            "≤ 1.5×",
            lambda v: v <= 1.5,
        ),
        (
            "added time to first token (median)",
            r["ttft_added_gateway"]["median_ms"],
            "≤ 2 ms",
            lambda v: v <= 2,
        ),
        (
            "relay throughput, 2,000-token stream",
            r["throughput_tokens_per_s"]["gateway"],
            "≥ 20,000 tokens/s",
            lambda v: v >= 20000,
        ),
        (
            "cold start to first streamed token (uvicorn) vs bare",
            gw["uvicorn_cold_first_token_s"] / bare["uvicorn_cold_first_token_s"],
            "≤ 1.2×",
            lambda v: v <= 1.2,
        ),
        (
            "cold start to first answer (Mangum) vs bare",
            gw["mangum_cold_s"] / bare["mangum_cold_s"],
            "≤ 1.2×",
            lambda v: v <= 1.2,
        ),
        (
            "peak RSS (uvicorn) vs bare",
            gw["uvicorn_peak_rss_mb"] / bare["uvicorn_peak_rss_mb"],
            "≤ 1.3×",
            lambda v: v <= 1.3,
        ),
        (
            "peak RSS (Mangum) vs bare",
            gw["mangum_peak_rss_mb"] / bare["mangum_peak_rss_mb"],
            "≤ 1.3×",
            lambda v: v <= 1.3,
        ),
    ]
    b = r.get("budgets")
    if b:
        rows.append(
            (
                "budgets on: added to the median first token (on − off, 50 ms upstream)",
                b["ttft_budgets"]["median_ms"],
                "≤ 1 ms",
                lambda v: v <= 1,
            )
        )
        rows.append(
            (
                f"exhausted key: upstream calls in {b['exhausted']['requests']} refused requests",
                b["exhausted"]["upstream_calls"],
                "0",
                lambda v: v == 0,
            )
        )
    if r.get("size") and "total_mb" in r["size"]:
        rows.append(
            (
                "function + layer, unzipped",
                r["size"]["total_mb"],
                "≤ 250 MB (Lambda)",
                lambda v: v <= 250,
            )
        )
    return [
        {"target": name, "value": round(value, 3), "goal": goal, "met": bool(ok(value))}
        for name, value, goal, ok in rows
    ]


# What profiling found and what changed (same machine, same harness), kept with the report.
NOTES = """## What was fixed to meet the targets

Measured with this harness before and after each change (medians, one run each; these runs
predate the paired statistic, so the added time to first token here is the gateway's median
minus direct boto3's):

| target | before | after | change |
|---|---|---|---|
| cold start to first streamed token vs bare | 1.31× | 1.16–1.18× | Powertools (metrics, logger) loaded on first use, after the first response; jinja2 only for models with a Hugging Face template; PyYAML only for YAML files |
| cold start to first answer (Mangum) vs bare | 1.25× | 1.11–1.15× | the same; the harness also stopped counting 100 warm events into the first run's time |
| added time to first token | 1.50–2.15 ms | 1.58–1.63 ms | the event loop waits on a future woken by the reader thread instead of `asyncio.wait_for` on a queue (3.11 makes a task per wait) |
| relay throughput | 41–44k tokens/s | 48–59k tokens/s | the relay writes every already-arrived event in one chunk instead of one ASGI send per token |

`python -X importtime` and cProfile showed the rest of the cold start is FastAPI (≈155 ms) and
boto3's import and client creation (≈150 ms), which the bare floor pays too.
"""


def openai_section(r: dict) -> list[str]:
    """The openai backend's figures beside the TGI backend's (absent for older code)."""
    o = r.get("openai")
    if not o:
        return []

    def row(label: str, tgi: dict | None, oa: dict) -> str:
        cell = f"{tgi['median_ms']:.2f} / {tgi['p95_ms']:.2f}" if tgi else "–"
        return f"| {label} | {cell} | {oa['median_ms']:.2f} / {oa['p95_ms']:.2f} |"

    tp, tgi_tp = o["throughput_tokens_per_s"], r["throughput_tokens_per_s"]
    return [
        "## The openai backend (vLLM-like endpoint), beside the TGI backend",
        "",
        "The same harness over an emulated vLLM endpoint (`backend: openai`): the TGI dialect's",
        "prompts go upstream as OpenAI completions and come back as TGI events rebuilt from the",
        "chunks; OpenAI chat is relayed chunk by chunk. Direct calls send the bodies the backend",
        f"sends. {max(r['rounds'] // 2, 1)} paired rounds. Added time, ms (median / p95):",
        "",
        "| | TGI backend | openai backend |",
        "|---|---|---|",
        row("`/generate` buffered, added", r["gen_added_gateway"], o["gen_added_gateway"]),
        row(
            "`/generate_stream` first token, added",
            r["ttft_added_gateway"],
            o["ttft_added_gateway"],
        ),
        row("`/v1/chat/completions` stream first token, added (relay)", None, o["ttft_added_chat"]),
        "",
        "Relay throughput on a 2,000-token unpaced stream (tokens/s, median of 5): TGI backend "
        f"{tgi_tp['gateway']:,} (direct {tgi_tp['direct']:,}); openai backend, TGI dialect "
        f"{tp['gateway_tgi']:,} (direct completions stream {tp['direct']:,}); openai backend, "
        f"chat relay {tp['gateway_chat']:,} (direct chat stream {tp['direct_chat']:,}).",
        "",
    ]


def budgets_section(r: dict) -> list[str]:
    """Budgets off vs on over a paced upstream (absent for code without budgets)."""
    b = r.get("budgets")
    if not b:
        return []

    def row(label: str, key: str) -> str:
        v = b[key]
        return f"| {label} | {v['median_ms']:.2f} | {v['p95_ms']:.2f} | {v['p99_ms']:.2f} |"

    pacing, x = b["pacing"], b["exhausted"]
    by_op = ", ".join(f"{k} {v:g}" for k, v in b["store_calls_per_request_by_operation"].items())
    trip = b["store_round_trip"]
    return [
        "## Budgets: the reservation beside the upstream call",
        "",
        f"A paced upstream: streams take {pacing['first_token_ms']} ms to the first token, then "
        f"{pacing['token_ms']} ms a token; buffered calls answer after {pacing['buffered_upstream_ms']}",
        "ms (the same generation). Two gateways identical but for the models file's `budgets`",
        "section, both checking API keys (`GATEWAY_API_KEYS`): *off* has no budgets, *on* has",
        "`default: {tokens_per_minute: 10^12}` against the embedded store",
        "(`llm_gateway.budgets.local.start_embedded_store`, moto's server mode) in its own",
        "process, reached at `AWS_ENDPOINT_URL_DYNAMODB`. Each of "
        f"{b['rounds']} rounds (after 10 warm-up rounds) makes",
        "a direct boto3, an off and an on call, in rotating order, buffered then streamed;",
        "*on − off* is the per-round difference, so it is what budgets add. ms:",
        "",
        "| | median | p95 | p99 |",
        "|---|---|---|---|",
        row("`/generate`, direct boto3", "gen_direct"),
        row("`/generate`, budgets off", "gen_off"),
        row("`/generate`, budgets on", "gen_on"),
        row("**`/generate`, on − off**", "gen_budgets"),
        row("first token, direct boto3 stream", "ttft_direct"),
        row("first token, budgets off", "ttft_off"),
        row("first token, budgets on", "ttft_on"),
        row("**first token, on − off**", "ttft_budgets"),
        row("first token added by the gateway, budgets off", "ttft_added_off"),
        row("first token added by the gateway, budgets on", "ttft_added_on"),
        "",
        f"Store round trips per budgeted request: {b['store_calls_per_request']:g} ({by_op}),",
        "counted by the store process itself (each request reaching it, by its `X-Amz-Target`)",
        f"over the {2 * b['rounds']} measured budgeted requests, after their settlements were",
        "written: the reservation's conditional `UpdateItem` on the request path, the settlement's",
        "`TransactWriteItems` after the answer. The key's limits are read once a minute",
        f"(`GetItem`). One conditional `UpdateItem` from the bench client to this store takes "
        f"{trip['median_ms']:.2f} ms",
        f"(median; p95 {trip['p95_ms']:.2f} ms), well under the upstream's first token, which is",
        "what the overlap hides.",
        "",
        f"An exhausted key (limit {x['limit_tokens_per_minute']} tokens a minute): "
        f"{x['admitted_before_refusal']} requests admitted, then one refused by the store",
        f"({x['upstream_calls_of_the_store_refusal']} upstream call: it starts alongside the",
        "reservation, and the 429 goes out before anything reaches the client).",
        f"The next {x['requests']} requests (buffered and streamed, alternating) got "
        f"{x['refused_429']} × 429,",
        f"with {x['upstream_calls']} upstream calls (the emulator's counts) and "
        f"{x['store_calls']} store requests, answered in {x['refusal']['median_ms']:.2f} ms",
        f"(median; p95 {x['refusal']['p95_ms']:.2f} ms).",
        "",
        *budget_runs(r),
    ]


# What the budget runs show and what was tried, kept with the report (see budget_runs).
BUDGETS_READING = """**Reading.** The target is at most 1 ms added to the median first token. It held in 2
of these 5 runs (0.55 and 0.43 ms) and in 3 later runs of this section alone on a quieter box
(0.37–0.40 ms, 60 rounds each). It missed in the other 3 runs (1.53–2.25 ms). In each of those,
the *off* gateway happened to add less than usual (0.66–1.74 ms, against about 2.1), while *on*
added a steady 2.3–2.9 ms over direct boto3. The store round trip itself is hidden. Timed inside
the *on* gateway (a scratch patch, 145 reservations), a reservation took 6.9 ms median (p95 10
ms, max 27 ms), against the upstream's 50 ms. What budgets do cost is work in the gateway
process: the reservation's boto3 call and the settlement run in threads of the same process.
On this 2-CPU box, shared with the emulator, the store, the client and other sessions, that
work most likely explains the 0.4–2 ms. Buffered answers pay more (1.2–3.7 ms), most likely
because the settlement's `TransactWriteItems` starts on a budgets thread just as the answer is
written and competes with it for the GIL. Deferring the settlement by 30 ms (a scratch patch,
not in the code) took the buffered on − off median from 0.83 and 1.40 ms to 0.67 and 0.62 ms
in two back-to-back pairs of 60 rounds. So the fix to try is to start the settlement only after
the response has been sent. The exhausted key held in every run: 40 of 40 requests refused, in
about 1 ms, with no upstream call and no store call."""


def budget_runs(r: dict) -> list[str]:
    """The budgets figures of every saved `make bench` run of the same commit (the
    ``*-seams-<n>.json`` files), since one run on a shared box can mislead."""
    commit = (r.get("source") or {}).get("commit")
    runs = []
    for path in sorted(
        (BENCH / "results").glob("*-seams-[0-9]*.json"),
        key=lambda p: int(p.stem.rpartition("-")[2]),
    ):
        other = json.loads(path.read_text())
        if other.get("budgets") and commit and (other.get("source") or {}).get("commit") == commit:
            runs.append((path.name, other["budgets"]))
    if len(runs) < 2:
        return []
    lines = [
        f"The same section in each `make bench` run of this commit (medians, ms; {len(runs)} "
        "runs):",
        "",
        "| run | first token, on − off | `/generate`, on − off | first token added, off | "
        "first token added, on | store round trips / request | exhausted: upstream calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, b in runs:
        lines.append(
            f"| `{name}` | {b['ttft_budgets']['median_ms']:.2f} | "
            f"{b['gen_budgets']['median_ms']:.2f} | {b['ttft_added_off']['median_ms']:.2f} | "
            f"{b['ttft_added_on']['median_ms']:.2f} | {b['store_calls_per_request']:g} | "
            f"{b['exhausted']['upstream_calls']} |"
        )
    lines.append("")
    if BUDGETS_READING:
        lines += [BUDGETS_READING, ""]
    return lines


# The seams refactor (issue 11), measured back to back: before = 3df81e0 (the last commit before
# it), at = 5f7c568 (the refactor itself), after = a later HEAD. Each run is a clean `git archive`
# copy of its commit measured with `make bench`, saved as `<side>-seams-<n>.json`.
SEAMS_SIDES = (
    ("before", "before"),
    ("at", "the seams commit"),
    ("after", "after"),
)
SEAMS_ROWS = [
    ("`/generate` added, median (ms)", lambda r: r["gen_added_gateway"]["median_ms"], 2),
    ("`/generate` added, p95 (ms)", lambda r: r["gen_added_gateway"]["p95_ms"], 2),
    (
        "`/generate` added vs bare's (median ratio)",
        lambda r: r["gen_added_gateway"]["median_ms"] / r["gen_added_bare"]["median_ms"],
        2,
    ),
    ("first token added, median (ms)", lambda r: r["ttft_added_gateway"]["median_ms"], 2),
    ("first token added, p95 (ms)", lambda r: r["ttft_added_gateway"]["p95_ms"], 2),
    ("relay throughput, gateway (tokens/s)", lambda r: r["throughput_tokens_per_s"]["gateway"], 0),
    (
        "relay throughput, gateway / direct",
        lambda r: r["throughput_tokens_per_s"]["gateway"] / r["throughput_tokens_per_s"]["direct"],
        2,
    ),
    (
        "cold start to first token vs bare (uvicorn)",
        lambda r: (
            r["processes"]["gateway"]["uvicorn_cold_first_token_s"]
            / r["processes"]["bare"]["uvicorn_cold_first_token_s"]
        ),
        2,
    ),
    (
        "cold start to first answer vs bare (Mangum)",
        lambda r: (
            r["processes"]["gateway"]["mangum_cold_s"] / r["processes"]["bare"]["mangum_cold_s"]
        ),
        2,
    ),
    ("peak RSS, uvicorn (MB)", lambda r: r["processes"]["gateway"]["uvicorn_peak_rss_mb"], 1),
    ("peak RSS, Mangum (MB)", lambda r: r["processes"]["gateway"]["mangum_peak_rss_mb"], 1),
    ("function + layer, unzipped (MB)", lambda r: (r.get("size") or {}).get("total_mb"), 1),
]

SEAMS_READING = """**Reading.** Per request, nothing got slower. The latency added to `/generate` is 1.76 ms
before and after (run medians; the paired differences, run by run, are −0.18 to +0.10 ms), and
so is its ratio to what the bare pass-through adds (1.32×, 1.33×). The time added to the first
token is 2.24 ms before and 1.96 ms after; paired differences run from −0.58 to +0.50 ms with no
steady sign. Relay throughput is 0.42 of direct boto3's before and 0.44 after. Peak RSS is 0.1 to
0.8 MB lower after. Cold start is the one place where *after* may be a little slower. Against
bare, the median ratios are 1.14× → 1.23× (uvicorn) and 1.24× → 1.31× (Mangum), and the median
paired differences are +0.04× and +0.11×. But the ratios spread run to run over 1.09–1.47× and
1.06–1.96×, and five cold starts per run cannot separate a change of 0.05–0.1× from that noise.
The ≤ 1.2× target was met in 4 of 5 runs before and 2 of 5 after (uvicorn), and in 2 of 5 before
and 1 of 5 after (Mangum). The package grew by 2.3 MB. The seams commit itself added 0.2 MB of
code. The rest came later: +1.9 MB in the layer for jsonschema and its dependencies
(`f059b9c`), and the budgets, openai backend and Responses code. *After* is a later HEAD with
everything merged since the refactor, so it measures the refactor and those features together.
The seams commit alone (two runs) matches *before* on latency. Its relay throughput was one
ordinary run (29.5k tokens/s) and one slow one (17.7k). The box was shared: another session's
test suite ran from about 05:57 to 06:05 UTC, during runs 4 to 6."""


def seams_runs(results: Path) -> dict[str, list[dict]]:
    """The back-to-back runs of each side, in run order (``<side>-seams-<n>.json``)."""

    def number(path: Path) -> int:
        return int(path.stem.rpartition("-")[2])

    return {
        side: [
            json.loads(path.read_text())
            for path in sorted(results.glob(f"{side}-seams-[0-9]*.json"), key=number)
        ]
        for side, _ in SEAMS_SIDES
    }


def seams_section(results: Path) -> list[str]:
    runs = seams_runs(results)
    sides = [(side, label) for side, label in SEAMS_SIDES if runs[side]]
    if not runs["before"] or not runs["after"]:
        return []

    def cell(side: str, get: Any, digits: int) -> str:
        values = []
        for r in runs[side]:
            try:
                values.append(get(r))
            except (KeyError, TypeError, ZeroDivisionError):
                pass
        values = [v for v in values if v is not None]
        if not values:
            return "–"
        middle = f"{statistics.median(values):,.{digits}f}"
        if len(values) == 1:
            return middle
        return f"{middle} [{min(values):,.{digits}f}–{max(values):,.{digits}f}]"

    def commit(side: str) -> str:
        found = {(r.get("source") or {}).get("commit") or "?" for r in runs[side]}
        return ", ".join(f"`{c[:7]}`" for c in sorted(found))

    heads = " | ".join(f"{label} ({commit(side)})" for side, label in sides)
    counts = ", ".join(f"{len(runs[side])} {label}" for side, label in sides)
    lines = [
        "## The seams refactor (issue 11): before and after",
        "",
        "Each run is a clean `git archive` copy of its commit measured with `make bench` (that",
        "commit's own harness; the TGI paths measured are the same code in all of them). The runs",
        f"were made back to back, alternating ({counts} runs);",
        "each cell is the median of the runs' values [lowest–highest]. Raw figures:",
        "`bench/results/{before,at,after}-seams-<n>.json`.",
        "",
        f"| | {heads} |",
        "|---|" + "---|" * len(sides),
    ]
    for label, get, digits in SEAMS_ROWS:
        lines.append(
            f"| {label} | " + " | ".join(cell(side, get, digits) for side, _ in sides) + " |"
        )
    lines.append("")
    if SEAMS_READING:
        lines += [SEAMS_READING, ""]
    return lines


def markdown(r: dict) -> str:
    def row(label: str, key: str) -> str:
        v = r[key]
        return f"| {label} | {v['median_ms']:.2f} | {v['p95_ms']:.2f} | {v['p99_ms']:.2f} |"

    gw, bare = r["processes"]["gateway"], r["processes"]["bare"]
    tp = r["throughput_tokens_per_s"]
    src = r.get("source") or {}
    measured = []
    if src.get("commit"):
        changes = " with uncommitted changes to `src`" if src.get("src_modified") else ""
        measured = [
            f"Code measured: commit `{src['commit'][:12]}`{changes}; the gateway is built by "
            f"`{src['create_app']}`.",
            "",
        ]
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {r['machine']} (a shared development box). Produced by `make bench` "
        "(`bench/run.py`); raw figures in `bench/results/latest.json`.",
        "",
        *measured,
        "## Method",
        "",
        "The SageMaker emulator answers at zero model latency (20-token answers; 2,000 for throughput).",
        "The emulator, the gateway (the app `create_app` builds, run by uvicorn with `llm-gateway",
        "serve`'s options; metrics and logs on, written to /dev/null), the bare floor",
        "(`bench/bare_app.py`, run the same way: FastAPI + boto3 forwarding bodies, no validation,",
        "templates, metrics, deadlines or error mapping) and the client are separate processes.",
        f"Each of {r['rounds']} rounds (after 20 warm-up rounds) makes one direct boto3, one gateway",
        "and one bare call back to back, in an order that rotates from round to round. *Added* is",
        "the per-round difference: a path's call minus the same round's direct boto3 call (the",
        "client's own boto3 overhead cancels the gateway's). Its median, p95 and p99 are",
        "percentiles of those differences, not differences of the paths' percentiles, so they",
        f"are ordered. Cold starts spawn fresh processes, {r['cold_runs']} times each, interleaved;",
        "RSS is the process's peak. Absolute times on this box are noisy; the ratios in the last",
        "table come from one run.",
        "",
        "## Buffered `/generate` and streams (ms)",
        "",
        "| | median | p95 | p99 |",
        "|---|---|---|---|",
        row("`/generate`, direct boto3", "gen_direct"),
        row("`/generate`, bare pass-through", "gen_bare"),
        row("`/generate`, gateway", "gen_gateway"),
        row("added by the bare pass-through", "gen_added_bare"),
        row("**added by the gateway**", "gen_added_gateway"),
        row("first token, direct boto3 stream", "ttft_direct"),
        row("first token, bare pass-through", "ttft_bare"),
        row("first token, gateway", "ttft_gateway"),
        row("**added to first token by the gateway**", "ttft_added_gateway"),
        row("inter-token gap, direct", "itl_direct"),
        row("inter-token gap, gateway", "itl_gateway"),
        "",
        f"Relay throughput on a 2,000-token unpaced stream (tokens/s, median of 5): direct boto3 "
        f"{tp['direct']:,}, gateway {tp['gateway']:,}.",
        "",
        *openai_section(r),
        *budgets_section(r),
        "## Lambda handler and cold start",
        "",
        "| | gateway | bare |",
        "|---|---|---|",
        f"| Mangum, per API Gateway event (median / p95 ms, in-process) | {gw['mangum_event_median_ms']:.2f} / {gw['mangum_event_p95_ms']:.2f} | {bare['mangum_event_median_ms']:.2f} / {bare['mangum_event_p95_ms']:.2f} |",
        f"| cold start, process spawn to first event answered (Mangum, s) | {gw['mangum_cold_s']:.3f} | {bare['mangum_cold_s']:.3f} |",
        f"| cold start, process spawn to first streamed token (uvicorn, s) | {gw['uvicorn_cold_first_token_s']:.3f} | {bare['uvicorn_cold_first_token_s']:.3f} |",
        f"| peak RSS, Mangum (MB) | {gw['mangum_peak_rss_mb']} | {bare['mangum_peak_rss_mb']} |",
        f"| peak RSS, uvicorn (MB) | {gw['uvicorn_peak_rss_mb']} | {bare['uvicorn_peak_rss_mb']} |",
        "",
    ]
    if r.get("size"):
        s = r["size"]
        lines += [
            f"Package (`sam build`, unzipped): function {s.get('function_mb')} MB + layer "
            f"{s.get('layer_mb')} MB = {s.get('total_mb')} MB of Lambda's 250 MB.",
            "",
        ]
    lines += [
        "## Targets (ratios from this run)",
        "",
        "| target | value | goal | met |",
        "|---|---|---|---|",
    ]
    for t in r["targets"]:
        lines.append(
            f"| {t['target']} | {t['value']:,} | {t['goal']} | {'yes' if t['met'] else '**no**'} |"
        )
    lines += ["", *seams_section(BENCH / "results"), NOTES]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
