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
e. the unzipped size of function + layer (``sam build``) against Lambda's 250 MB;
f. the chat routes: OpenAI ``/v1/chat/completions`` and Anthropic ``/v1/messages``, buffered and
   streamed, on a TGI model and on a vLLM-backed one: added latency and time to first token;
g. before and after, in the same run: the code of ``BENCH_BEFORE`` (default ``a32f9ee``, the
   state before issue 23's work) from a ``git archive`` copy runs as a second gateway beside
   this checkout's, through the same rounds, cold starts and ``sam build``.

Everything talks to the SageMaker emulator at zero model latency; the emulator, the servers and
this client are separate processes; rounds interleave the targets so drift hits all alike.
Output: ``bench/results/latest.json`` and, in ``docs/benchmarks.md``, the part between its
``make bench`` markers (the rest of that file is kept as written).

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
import re
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
# The code measured beside this checkout's: the state before issue 23's work.
BEFORE_DEFAULT = "a32f9ee"
DOC = ROOT / "docs" / "benchmarks.md"
# docs/benchmarks.md: `make bench` rewrites what lies between these lines, nothing else.
DOC_START = "<!-- make bench: generated from here -->"
DOC_END = "<!-- make bench: generated up to here -->"


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
# ``llm-gateway serve`` uses (no lifespan, no access log, 75 s keep-alive). The gateway is
# ``llm_gateway.asgi:app``, the module the Lambda Web Adapter runs (so what that entry point
# does at start-up is measured too), or ``create_app()`` where a commit has no such module.
SERVER_CHILD = (
    """
import sys
which, port = sys.argv[1], int(sys.argv[2])
if which == "bare":
    from bare_app import app
else:
    try:
        from llm_gateway.asgi import app
    except ImportError as exc:
        if exc.name != "llm_gateway.asgi":
            raise
"""
    + "".join(f"        {line}\n" for line in IMPORT_CREATE_APP.strip().splitlines())
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
            + "import importlib.util, llm_gateway\nprint(llm_gateway.__file__)\n"
            + "asgi = importlib.util.find_spec('llm_gateway.asgi') is not None\n"
            + "print('llm_gateway.asgi:app' if asgi else create_app_from + '.create_app')",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise RuntimeError(f"cannot import the gateway's create_app:\n{probe.stderr}")
    package, factory = probe.stdout.split()
    out["package"] = str(Path(package).parent)
    out["create_app"] = factory  # the app the servers run (SERVER_CHILD), by this name
    return out


def checkout(ref: str, tmp: Path) -> tuple[Path, str] | None:
    """The whole tree of commit ``ref`` (``git archive``) in ``tmp``, and its short hash: its
    ``src`` runs as the *before* gateway, its template and layer are built for the size."""
    git = shutil.which("git")
    if not git or not (ROOT / ".git").exists():
        return None
    commit = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True
    ).stdout.strip()
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True
    )
    if not commit or archive.returncode != 0:
        return None
    target = tmp / f"before-{commit}"
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target, commit


def code_path(src: Path) -> str:
    """``PYTHONPATH`` for a server running the code in ``src`` (and ``bare_app``)."""
    return os.pathsep.join([str(BENCH), str(src)])


class Stack:
    """The emulator, the gateway, the bare floor and, when given, the gateway of the code
    before (``before``: a checkout's root and commit), each its own process."""

    def __init__(
        self, tmp: Path, before: tuple[Path, str] | None = None, src: Path = ROOT / "src"
    ) -> None:
        self.tmp = tmp
        self.src = src  # the code measured as *after*
        self.emu_port, self.gw_port, self.bare_port = free_port(), free_port(), free_port()
        self.before_root, self.before_commit = before or (None, None)
        self.before_port = free_port() if before else None
        endpoints: dict[str, dict] = {
            "bench-endpoint": {"tgi_version": "3.x", "output_tokens": SHORT},
            "bench-long": {"tgi_version": "3.x", "output_tokens": LONG},
        }
        models = [
            {"name": "bench", "endpoint": "bench-endpoint", "template": "chatml"},
            {"name": "bench-long", "endpoint": "bench-long", "template": "chatml"},
        ]
        # The openai backend on a vLLM-like endpoint, where the measured code has one.
        self.openai = (src / "llm_gateway" / "backends" / "openai").is_dir()
        # The Anthropic Messages route, where the measured code has one.
        self.messages = (src / "llm_gateway" / "dialects" / "anthropic").is_dir()
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
            PYTHONPATH=code_path(src),
        )
        for key in ("GATEWAY_CONFIG_JSON", "GATEWAY_API_KEYS", "GATEWAY_UI"):
            self.env.pop(key, None)
        self.procs: list[subprocess.Popen] = []

    def code_env(self, which: str) -> dict[str, str]:
        """What differs in a ``which`` server's environment: *before* runs the old code."""
        if which == "before" and self.before_root is not None:
            return {"PYTHONPATH": code_path(self.before_root / "src")}
        return {}

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
        if self.before_port is not None:
            self.spawn(server_command("gateway", self.before_port), **self.code_env("before"))
        wait_http(self.emu_port)
        wait_http(self.gw_port, "/health")
        wait_http(self.bare_port, "/health")
        if self.before_port is not None:
            wait_http(self.before_port, "/health")
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
        self.before = (
            http.client.HTTPConnection("127.0.0.1", stack.before_port)
            if stack.before_port is not None
            else None
        )
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

    def http_generate(
        self,
        conn: http.client.HTTPConnection,
        path: str,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> float:
        t = time.perf_counter()
        conn.request("POST", path, body, {"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return time.perf_counter() - t

    def gateway_generate(self) -> float:
        return self.http_generate(self.gw, "/models/bench/generate", self.tgi)

    def bare_generate(self) -> float:
        return self.http_generate(self.bare, "/generate", self.upstream)

    def before_generate(self) -> float:
        assert self.before is not None
        return self.http_generate(self.before, "/models/bench/generate", self.tgi)

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

    def before_stream(self, model: str = "bench") -> tuple[float, list[float]]:
        assert self.before is not None
        return self.http_stream(self.before, f"/models/{model}/generate_stream", self.tgi)


def itl(arrivals: list[float]) -> float:
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return statistics.mean(gaps) if gaps else 0.0


def throughput(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def measure_http(stack: Stack, rounds: int) -> dict:
    c = Client(stack)
    generate = {"direct": c.direct_generate, "gateway": c.gateway_generate, "bare": c.bare_generate}
    stream = {"direct": c.direct_stream, "gateway": c.gateway_stream, "bare": c.bare_stream}
    if c.before is not None:  # the code before, through the same rounds
        generate["before"], stream["before"] = c.before_generate, c.before_stream
    names = list(generate)
    for _ in range(20):
        for name in names:
            generate[name](), stream[name]()
    s: dict[str, list[float]] = {
        f"{metric}_{name}": [] for metric in ("gen", "ttft", "itl") for name in names
    }
    for i in range(rounds):
        # Round i: each path once, back to back, so s[...][i] of two paths can be paired. The
        # order rotates, so no path always runs first (or right after another particular one).
        order = names[i % len(names) :] + names[: i % len(names)]
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
        if c.before is not None:
            tp.setdefault("before", []).append(throughput(c.before_stream("bench-long")[1]))
    out = {k: ms(v) for k, v in s.items()}
    for metric in ("gen", "ttft"):
        for path in names[1:]:
            out[f"{metric}_added_{path}"] = added(s[f"{metric}_{path}"], s[f"{metric}_direct"])
        if c.before is not None:  # after − before, round by round
            out[f"{metric}_after_minus_before"] = added(
                s[f"{metric}_gateway"], s[f"{metric}_before"]
            )
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


# -- the chat routes: OpenAI chat completions and Anthropic Messages ---------------------------

# The first generated text of a stream: a chat chunk whose delta has non-empty content (the
# first chunk may carry only the role), a Messages content_block_delta (after message_start,
# content_block_start and ping).
CHAT_TEXT = re.compile(rb'"content": ?"[^"]')
MESSAGES_TEXT = re.compile(rb'"type": ?"content_block_delta"')
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
# Models measured: the TGI backend (chat rendered through the model's template to /generate)
# and the openai backend (a vLLM-like endpoint: chat relayed as chat completions).
ROUTE_MODELS = {"tgi": "bench", "openai": "bench-openai"}


class RouteClient(OpenAIClient):
    """``/v1/chat/completions`` and ``/v1/messages``, buffered and streamed, beside the direct
    boto3 call each one's upstream request amounts to."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        messages = [{"role": "user", "content": PROMPT}]
        self.chat_buffered = json.dumps(
            {"model": "", "messages": messages, "max_tokens": LONG}
        ).encode()

    def body(self, route: str, model: str, stream: bool) -> bytes:
        messages = [{"role": "user", "content": PROMPT}]
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": LONG}
        return json.dumps({**body, "stream": True} if stream else body).encode()

    def gateway_buffered(self, conn: http.client.HTTPConnection, route: str, model: str) -> float:
        path, headers = (
            ("/v1/messages", ANTHROPIC_HEADERS)
            if route == "messages"
            else (
                "/v1/chat/completions",
                None,
            )
        )
        return self.http_generate(conn, path, self.body(route, model, False), headers)

    def gateway_first_text(self, conn: http.client.HTTPConnection, route: str, model: str) -> float:
        if route == "messages":
            path, headers, marker = "/v1/messages", ANTHROPIC_HEADERS, MESSAGES_TEXT
        else:
            path, headers, marker = "/v1/chat/completions", {}, CHAT_TEXT
        t = time.perf_counter()
        conn.request(
            "POST",
            path,
            self.body(route, model, True),
            {"content-type": "application/json", **headers},
        )
        response = conn.getresponse()
        first = None
        while line := response.readline():
            if first is None and line.startswith(b"data:") and marker.search(line):
                first = time.perf_counter() - t
        assert response.status == 200 and first is not None, (response.status, route, model)
        return first

    def direct_buffered(self, backend: str) -> float:
        if backend == "tgi":
            return self.direct_generate()
        t = time.perf_counter()
        self.runtime.invoke_endpoint(
            EndpointName="bench-vllm", Body=self.chat_buffered, ContentType="application/json"
        )["Body"].read()
        return time.perf_counter() - t

    def direct_first_text(self, backend: str) -> float:
        if backend == "tgi":
            return self.direct_stream()[0]  # every TGI event carries a token
        t = time.perf_counter()
        out = self.runtime.invoke_endpoint_with_response_stream(
            EndpointName="bench-vllm", Body=self.chat_upstream, ContentType="application/json"
        )
        first = None
        for event in out["Body"]:
            data = event.get("PayloadPart", {}).get("Bytes", b"")
            if first is None and CHAT_TEXT.search(data):
                first = time.perf_counter() - t
        assert first is not None
        return first


def measure_routes(stack: Stack, rounds: int) -> dict | None:
    """Added latency (buffered) and added time to the first generated text (streamed) of the
    OpenAI chat route and the Anthropic Messages route, on each backend, in the same rounds:
    each round calls direct boto3 and every route in rotating order. The code before, where
    measured, answers the chat route only (it had no Messages route)."""
    if not stack.openai:
        return None
    c = RouteClient(stack)
    paths: dict[str, tuple[http.client.HTTPConnection, str]] = {"chat": (c.gw, "chat")}
    if stack.messages:
        paths["messages"] = (c.gw, "messages")
    if c.before is not None:
        paths["before_chat"] = (c.before, "chat")
    out: dict[str, Any] = {"rounds": rounds, "models": ROUTE_MODELS}
    for backend, model in ROUTE_MODELS.items():
        buffered: dict[str, Any] = {"direct": lambda b=backend: c.direct_buffered(b)}
        streamed: dict[str, Any] = {"direct": lambda b=backend: c.direct_first_text(b)}
        for name, (conn, route) in paths.items():
            buffered[name] = lambda conn=conn, route=route, m=model: c.gateway_buffered(
                conn, route, m
            )
            streamed[name] = lambda conn=conn, route=route, m=model: c.gateway_first_text(
                conn, route, m
            )
        names = list(buffered)
        for _ in range(10):
            for name in names:
                buffered[name](), streamed[name]()
        s: dict[str, list[float]] = {f"{k}_{n}": [] for k in ("gen", "ttft") for n in names}
        for i in range(rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                s[f"gen_{name}"].append(buffered[name]())
            for name in order:
                s[f"ttft_{name}"].append(streamed[name]())
        result: dict[str, Any] = {k: ms(v) for k, v in s.items()}
        for metric in ("gen", "ttft"):
            for name in names[1:]:
                result[f"{metric}_added_{name}"] = added(
                    s[f"{metric}_{name}"], s[f"{metric}_direct"]
                )
            if stack.messages:
                result[f"{metric}_messages_minus_chat"] = added(
                    s[f"{metric}_messages"], s[f"{metric}_chat"]
                )
        out[backend] = result
    return out


# -- f. budgets: reserve, then call; settle at the end ------------------------------------------

# A realistic upstream: 50 ms to the first token, then 5 ms a token (streams); a buffered call
# answers after the whole paced generation would take (50 + 19 × 5 = 145 ms).
PACING = {"first_token_ms": 50, "token_ms": 5}
BUFFERED_UPSTREAM_S = (PACING["first_token_ms"] + (SHORT - 1) * PACING["token_ms"]) / 1000
BUDGET_TABLE = "bench-budgets"
BUDGET_KEYS = "bench:sk-bench,over:sk-over"
OVER_LIMIT = 100  # tokens per minute for the key the section exhausts (a request costs ~26)
EXHAUSTED_REQUESTS = 40
# DynamoDB answers a write in a few ms from Lambda in the same region: the store is reached
# through a proxy that holds each request this long.
STORE_DELAY_S = 0.003
STORE_COUNT_REQUESTS = 20  # per mode, to count each variant's store calls on its own

# The embedded store (llm_gateway.budgets.local.start_embedded_store, moto's server mode) in its
# own process, counting the requests that reach it by DynamoDB operation (X-Amz-Target). Each
# line on stdin asks for the counts so far; they come back as one JSON line. Tables: argv[1:].
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
from llm_gateway.budgets.local import start_embedded_store, create_table, local_client
url, stop = start_embedded_store(sys.argv[1])
for table in sys.argv[2:]:
    create_table(local_client(url), table)
print(url, flush=True)
for _ in sys.stdin:
    with lock:
        print(json.dumps(counts), flush=True)
stop()
"""

# A TCP proxy in front of the store that holds every chunk a client sends for argv[2] seconds.
PROXY_CHILD = r"""
import socket, sys, threading, time
host, _, port = sys.argv[1].removeprefix("http://").partition(":")
delay = float(sys.argv[2])
server = socket.create_server(("127.0.0.1", 0))
print(f"http://127.0.0.1:{server.getsockname()[1]}", flush=True)
def pump(source, sink, wait):
    try:
        while data := source.recv(65536):
            if wait:
                time.sleep(wait)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
while True:
    client, _ = server.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream = socket.create_connection((host, int(port)))
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=pump, args=(client, upstream, delay), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, 0.0), daemon=True).start()
"""

# A gateway as the Lambda Web Adapter runs it: ``llm_gateway.asgi:app`` (it settles budgets
# before a response's last byte), with the options of SERVER_CHILD.
LAMBDA_SERVER_CHILD = """
import sys
port = int(sys.argv[1])
from llm_gateway.asgi import app
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
            access_log=False, timeout_keep_alive=75)
"""


class Store:
    """The embedded budget store, a child process that counts what reaches it, behind a child
    proxy adding ``STORE_DELAY_S`` to each request (``url`` is the proxy's)."""

    def __init__(self, stack: Stack, tables: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STORE_CHILD, *tables],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=stack.env,
            text=True,
        )
        assert self.proc.stdout is not None
        self.direct_url = self.proc.stdout.readline().strip()
        if not self.direct_url.startswith("http"):
            self.stop()
            raise RuntimeError("the embedded budget store did not start")
        self.proxy = subprocess.Popen(
            [sys.executable, "-c", PROXY_CHILD, self.direct_url, str(STORE_DELAY_S)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proxy.stdout is not None
        self.url = self.proxy.stdout.readline().strip()

    def counts(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        for proc in (self.proc, getattr(self, "proxy", None)):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] != before.get(k, 0)}


class BudgetClient:
    """Direct boto3 to the paced endpoints, and the same requests through gateways that differ
    in the code (before/after) and in the models file's ``budgets`` section."""

    def __init__(self, stack: Stack, ports: dict[str, int]) -> None:
        self.c = Client(stack)
        self.emu_port = stack.emu_port
        self.conns = {name: http.client.HTTPConnection("127.0.0.1", p) for name, p in ports.items()}
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

    def direct_stream(self) -> tuple[float, float]:
        t = time.perf_counter()
        out = self.c.runtime.invoke_endpoint_with_response_stream(
            EndpointName="bench-paced", Body=self.upstream_stream, ContentType="application/json"
        )
        first = None
        for event in out["Body"]:
            if first is None and b"data:" in event.get("PayloadPart", {}).get("Bytes", b""):
                first = time.perf_counter() - t
        assert first is not None
        return first, time.perf_counter() - t

    def call(self, name: str, key: str, *, stream: bool) -> tuple[int, float, float, dict]:
        """(status, seconds to the answer or first token, seconds to the last byte, headers)."""
        conn = self.conns[name]
        path = (
            "/models/bench-paced/generate_stream"
            if stream
            else "/models/bench-paced-buffered/generate"
        )
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        t = time.perf_counter()
        conn.request("POST", path, self.body, headers)
        response = conn.getresponse()
        first = None
        if stream and response.status == 200:
            while line := response.readline():
                if first is None and line.startswith(b"data:"):
                    first = time.perf_counter() - t
        else:
            response.read()
            first = time.perf_counter() - t
        assert first is not None
        return response.status, first, time.perf_counter() - t, dict(response.getheaders())

    def generate(self, name: str) -> float:
        status, elapsed, _, _ = self.call(name, "sk-bench", stream=False)
        assert status == 200, (name, status)
        return elapsed

    def stream(self, name: str) -> tuple[float, float]:
        status, first, last, _ = self.call(name, "sk-bench", stream=True)
        assert status == 200, (name, status)
        return first, last

    def upstream_calls(self) -> int:
        total = 0
        for endpoint in ("bench-paced", "bench-paced-buffered"):
            conn = http.client.HTTPConnection("127.0.0.1", self.emu_port, timeout=5)
            conn.request("GET", f"/_emulator/endpoints/{endpoint}/stats")
            total += json.loads(conn.getresponse().read())["requests"]
        return total


def budgets_available(root: Path = ROOT) -> bool:
    return (root / "src" / "llm_gateway" / "budgets" / "local.py").is_file()


def before_tree(tmp: Path) -> tuple[Path, str] | None:
    """``src`` of ``BENCH_BUDGETS_BEFORE`` (default HEAD) in a temp copy: the code before the
    change being measured, run side by side with this checkout's."""
    git = shutil.which("git")
    if not git or not (ROOT / ".git").exists():
        return None
    ref = os.environ.get("BENCH_BUDGETS_BEFORE", "HEAD")
    commit = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True
    ).stdout.strip()
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit, "src"], capture_output=True
    )
    if archive.returncode != 0:
        return None
    target = tmp / "before"
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return (target, commit) if budgets_available(target) else None


def measure_budgets(stack: Stack, rounds: int) -> dict | None:
    """Time to first token, to the stream's end and buffered latency with budgets off and on,
    for this checkout (as ``serve`` runs it, and as Lambda's Web Adapter runs it) and for the
    code before the change (``before_tree``), in the same paired rounds; the store round trips
    per request of each; and an exhausted key's refusals."""
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
    before = before_tree(stack.tmp)
    # Each budgeted gateway has its own store: the embedded store answers one request at a
    # time (as DynamoDB applies one item's writes), and one gateway's settlement must not
    # queue another's reservation behind it, which DynamoDB would not do.
    stores: dict[str, Store] = {}
    servers: list[subprocess.Popen] = []
    ports: dict[str, int] = {}

    def start(name: str, code: str, budgets: bool, command: list[str]) -> None:
        config = stack.tmp / f"models-{name}.json"
        section = {
            "table": BUDGET_TABLE,
            "default": {"tokens_per_minute": 10**12},
            "keys": {"over": {"tokens_per_minute": OVER_LIMIT}},
        }
        config.write_text(
            json.dumps({"models": models, **({"budgets": section} if budgets else {})})
        )
        src = stack.src if code == "after" else before[0] / "src"  # type: ignore[index]
        env = {
            "GATEWAY_API_KEYS": BUDGET_KEYS,
            "GATEWAY_CONFIG": str(config),
            "PYTHONPATH": os.pathsep.join([str(BENCH), str(src)]),
        }
        if budgets:
            stores[name] = Store(stack, [BUDGET_TABLE])
            env["AWS_ENDPOINT_URL_DYNAMODB"] = stores[name].url
        ports[name] = port = free_port()
        servers.append(
            stack.spawn(
                [*command, str(port)] if command else server_command("gateway", port), **env
            )
        )

    try:
        start("off", "after", False, [])
        start("on", "after", True, [])
        start("lambda", "after", True, [sys.executable, "-c", LAMBDA_SERVER_CHILD])
        if before is not None:
            start("before_off", "before", False, [])
            start("before_on", "before", True, [])
        for port in ports.values():
            wait_http(port, "/health")
        b = BudgetClient(stack, ports)
        out = budget_rounds(b, stores, rounds)
        out["before_commit"] = before[1] if before is not None else None
        out["store_delay_ms"] = STORE_DELAY_S * 1000
        out["exhausted"] = exhausted_key(b, stores["on"], "on")
        if before is not None:
            out["before_exhausted"] = exhausted_key(b, stores["before_on"], "before_on")
        return out
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=10)
        for store in stores.values():
            store.stop()


def budget_rounds(b: BudgetClient, stores: dict[str, Store], rounds: int) -> dict:
    names = ["direct", *b.conns]
    for _ in range(10):
        b.direct_generate(), b.direct_stream()
        for name in b.conns:
            b.generate(name), b.stream(name)
    # The budgets are on: the answer carries OpenAI's headers, the bench key's limit.
    for name in ("on", "lambda", "before_on"):
        if name in b.conns:
            _, _, _, headers = b.call(name, "sk-bench", stream=False)
            assert headers.get("x-ratelimit-limit-tokens") == str(10**12), (name, headers)
    out: dict[str, Any] = {
        "store_round_trip": store_round_trip(stores["on"]),
        "store_transaction_round_trip": store_round_trip(stores["on"], transaction=True),
    }
    time.sleep(1)  # the warm-up's settlements
    s: dict[str, list[float]] = {f"{m}_{n}": [] for m in ("gen", "ttft", "last") for n in names}
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]  # paired, rotating
        for name in order:
            s[f"gen_{name}"].append(b.direct_generate() if name == "direct" else b.generate(name))
        for name in order:
            first, last = b.direct_stream() if name == "direct" else b.stream(name)
            s[f"ttft_{name}"].append(first)
            s[f"last_{name}"].append(last)
    out.update({k: ms(v) for k, v in s.items()})
    for metric in ("gen", "ttft", "last"):
        for name in b.conns:
            out[f"{metric}_added_{name}"] = added(s[f"{metric}_{name}"], s[f"{metric}_direct"])
        out[f"{metric}_budgets"] = added(s[f"{metric}_on"], s[f"{metric}_off"])
        out[f"{metric}_budgets_lambda"] = added(s[f"{metric}_lambda"], s[f"{metric}_off"])
        if "before_on" in b.conns:
            out[f"{metric}_budgets_before"] = added(
                s[f"{metric}_before_on"], s[f"{metric}_before_off"]
            )
    out["pacing"] = {**PACING, "buffered_upstream_ms": round(BUFFERED_UPSTREAM_S * 1000)}
    out["rounds"] = rounds
    out["variants"] = list(b.conns)
    out["store_calls"] = {name: store_calls(b, stores[name], name) for name in stores}
    after = out["store_calls"]["on"]
    out["store_calls_per_request"] = after["per_request"]
    out["store_calls_per_request_by_operation"] = after["by_operation"]
    return out


def store_calls(b: BudgetClient, store: Store, name: str) -> dict:
    """What one variant's budgeted requests cost the store, counted by the store process."""
    before = store.counts()
    for _ in range(STORE_COUNT_REQUESTS):
        b.generate(name)
        b.stream(name)
    time.sleep(1)  # settlements written after the answer
    calls = delta(store.counts(), before)
    requests = 2 * STORE_COUNT_REQUESTS
    return {
        "requests": requests,
        "per_request": round(sum(calls.values()) / requests, 3),
        "by_operation": {k: round(v / requests, 3) for k, v in calls.items()},
    }


def store_round_trip(store: Store, calls: int = 50, *, transaction: bool = False) -> dict:
    """One conditional ``UpdateItem`` from this process to the store through the proxy, as a
    reservation makes (on a scratch item); or, with ``transaction``, a three-item
    ``TransactWriteItems`` as a settlement makes."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=store.url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )
    update = {
        "TableName": BUDGET_TABLE,
        "Key": {"pk": {"S": "key#bench-probe"}, "sk": {"S": "probe"}},
        "UpdateExpression": "ADD used :cost",
        "ConditionExpression": "attribute_not_exists(used) OR used <= :room",
        "ExpressionAttributeValues": {":cost": {"N": "26"}, ":room": {"N": str(10**12)}},
    }
    times = []
    for i in range(calls):
        t = time.perf_counter()
        if transaction:
            items = [
                {"Update": {**update, "Key": {"pk": {"S": "key#bench-probe"}, "sk": {"S": sk}}}}
                for sk in (f"ledger-{i}", "probe", "day")
            ]
            client.transact_write_items(TransactItems=items)
        else:
            client.update_item(**update)
        times.append(time.perf_counter() - t)
    return ms(times)


def exhausted_key(b: BudgetClient, store: Store, name: str) -> dict:
    """Spend the ``over`` key's minute on gateway ``name``, then count what its refused
    requests cost: upstream calls (the emulator's counts) and store requests."""
    into_minute = time.time() % 60
    if into_minute > 45:  # the window must not turn over while this runs
        time.sleep(60.5 - into_minute)
    admitted, upstream = 0, b.upstream_calls()
    for _ in range(20):  # until the store refuses (the key is then remembered as exhausted)
        status, _, _, _ = b.call(name, "sk-over", stream=False)
        if status == 429:
            break
        assert status == 200, status
        admitted += 1
    else:
        raise RuntimeError("the exhausted key was never refused")
    time.sleep(1)  # settlements of the admitted requests
    # Before the change, the request the store refused had its upstream call started
    # alongside the reservation.
    overlapped = b.upstream_calls() - upstream - admitted
    upstream, counts = b.upstream_calls(), store.counts()
    statuses, times = [], []
    for i in range(EXHAUSTED_REQUESTS):
        status, elapsed, _, _ = b.call(name, "sk-over", stream=bool(i % 2))
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
        **stack.code_env(which),
    }
    child = "bare" if which == "bare" else "gateway"
    # the handler's default model is the config's first: bench (20 tokens), like the bare floor
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", MANGUM_CHILD, child, "1", str(rounds)],
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
        **stack.code_env(which),
    }
    t = time.perf_counter()
    proc = subprocess.Popen(
        server_command("bare" if which == "bare" else "gateway", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                if which != "bare":
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
    """Cold starts in paired runs: each run starts every variant once per Lambda mode, in an
    order that rotates from run to run; a run's ratio is a variant's time over the bare
    stack's in the same run, and the reported ratio is the median of those."""
    variants = ["gateway", "bare"] + (["before"] if stack.before_port is not None else [])
    mangum: dict[str, list[dict]] = {v: [] for v in variants}
    uv: dict[str, list[dict]] = {v: [] for v in variants}
    for i in range(cold_runs):
        for which in variants[i % len(variants) :] + variants[: i % len(variants)]:
            mangum[which].append(
                mangum_run(stack, which, mangum_rounds if not mangum[which] else 0)
            )
            uv[which].append(uvicorn_cold(stack, which))
    out: dict[str, Any] = {"paired_ratios": {}}
    for which in variants[:1] + variants[2:]:
        ratios = {
            "mangum": [
                g["wall_s"] / b["wall_s"]
                for g, b in zip(mangum[which], mangum["bare"], strict=True)
            ],
            "uvicorn": [
                g["first_token_s"] / b["first_token_s"]
                for g, b in zip(uv[which], uv["bare"], strict=True)
            ],
        }
        out["paired_ratios"][which] = {
            mode: {
                "median": round(statistics.median(values), 3),
                "runs": [round(v, 3) for v in values],
            }
            for mode, values in ratios.items()
        }
    for which in variants:
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


def package_size(root: Path = ROOT) -> dict | None:
    """``sam build`` of the gateway stack in ``root`` (this checkout or the *before* copy):
    the unzipped function and layer, and the function's Python modules."""
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
        [
            str(sam),
            "build",
            "--config-env",
            "default",
            "--build-dir",
            str(build / "build"),
            "--cache-dir",
            str(build / "cache"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        return {"error": result.stderr[-500:]}

    def size(path: Path) -> float:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6

    function = build / "build" / "GatewayFunction"
    # the x86_64 layer (the default build): template.yaml has one layer per architecture,
    # older checkouts (the *before* copy) a single DepsLayer
    layer = build / "build" / "DepsLayerX86"
    if not layer.exists():
        layer = build / "build" / "DepsLayer"
    out: dict[str, Any] = {
        "function_mb": round(size(function), 2),
        "layer_mb": round(size(layer), 1),
        "function_modules": len(list(function.rglob("*.py"))),
        "function_has": sorted(
            name
            for name in ("emulator", "deploy", "cli.py", "local.py")
            if (function / "llm_gateway" / name).exists()
        ),
    }
    out["total_mb"] = round(out["function_mb"] + out["layer_mb"], 1)
    shutil.rmtree(build, ignore_errors=True)
    return out


# -- report --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--mangum-rounds", type=int, default=300)
    parser.add_argument(
        "--budget-rounds", type=int, default=100, help="paired rounds of the budgets section"
    )
    parser.add_argument("--no-size", action="store_true", help="skip the sam build size check")
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print the report; write neither bench/results/latest.json nor docs/benchmarks.md",
    )
    parser.add_argument(
        "--before",
        default=os.environ.get("BENCH_BEFORE", BEFORE_DEFAULT),
        help="commit measured beside this checkout (empty: none); default %(default)s",
    )
    parser.add_argument(
        "--only-budgets",
        action="store_true",
        help="run only the budgets section: bench/results/budgets.json and its Markdown on stdout",
    )
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite docs/benchmarks.md from bench/results/latest.json without measuring",
    )
    args = parser.parse_args()
    if args.markdown_only:
        report = json.loads((BENCH / "results" / "latest.json").read_text())
        write_doc(markdown(report))
        return 0

    if args.only_budgets:
        return only_budgets(args.budget_rounds)

    with tempfile.TemporaryDirectory() as tmp:
        before = checkout(args.before, Path(tmp)) if args.before else None
        # A copy of this checkout's src taken now: edits made to the tree during the run (it
        # takes minutes) cannot mix two versions of the code into one report.
        after = Path(tmp) / "after" / "src"
        shutil.copytree(ROOT / "src", after)
        # Both copies compiled up front, as this checkout's own src is after any run: no cold
        # start measured pays for compiling a module.
        for src in [after] + ([before[0] / "src"] if before else []):
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
        stack = Stack(Path(tmp), before, after)
        measured = source(stack.env)
        if before is not None:
            measured["before"] = before[1]
        print(f"Measuring {measured}", file=sys.stderr, flush=True)
        started = time.time()
        load_at_start = os.getloadavg()
        stack.start()
        try:
            http_results = measure_http(stack, args.rounds)
            http_results["openai"] = measure_openai(stack, max(args.rounds // 2, 1))
            http_results["routes"] = measure_routes(stack, max(args.rounds // 2, 1))
            http_results["budgets"] = measure_budgets(stack, args.budget_rounds)
            process_results = measure_processes(stack, args.cold_runs, args.mangum_rounds)
        finally:
            stack.stop()
        size = None if args.no_size else package_size()
        size_before = None if args.no_size or before is None else package_size(before[0])
    # how busy the shared box was: the load average at the start and at the end
    busy = {
        "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "loadavg_1min_start": round(load_at_start[0], 2),
        "loadavg_1min_end": round(os.getloadavg()[0], 2),
    }

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report = {
        "machine": machine,
        "source": measured,
        "rounds": args.rounds,
        "cold_runs": args.cold_runs,
        **http_results,
        "processes": process_results,
        "size": size,
        "size_before": size_before,
        "box": busy,
    }
    report["targets"] = targets(report)
    generated = markdown(report)
    print(generated)
    if args.no_write:
        return 0
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    write_doc(generated)
    return 0


def write_doc(generated: str) -> None:
    """Put ``generated`` between the markers of docs/benchmarks.md; keep the rest as written."""
    text = DOC.read_text(encoding="utf-8")
    head, start, rest = text.partition(DOC_START)
    _, end, tail = rest.partition(DOC_END)
    if not start or not end:
        raise SystemExit(f"{DOC}: add the lines {DOC_START!r} and {DOC_END!r}")
    DOC.write_text(f"{head}{DOC_START}\n{generated.strip()}\n\n{DOC_END}{tail}", encoding="utf-8")


def only_budgets(rounds: int) -> int:
    """The budgets section alone (the machine is shared: the rest is not re-measured)."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        measured = source(stack.env)
        print(f"Measuring budgets of {measured}", file=sys.stderr, flush=True)
        stack.start()
        try:
            budgets = measure_budgets(stack, rounds)
        finally:
            stack.stop()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report = {"machine": machine, "source": measured, "budgets": budgets}
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "budgets.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(budgets_section(report)))
    return 0


def cold_ratio(r: dict, which: str, mode: str) -> float:
    """The median of the paired runs' ratios to the bare stack (older reports: of medians)."""
    paired = r["processes"].get("paired_ratios", {}).get(which)
    if paired:
        return paired[mode]["median"]
    gw, bare = r["processes"][which], r["processes"]["bare"]
    key = "mangum_cold_s" if mode == "mangum" else "uvicorn_cold_first_token_s"
    return gw[key] / bare[key]


# Issue 23's goals: a cold start within 1.1× the bare stack's, added latency within 1.3× the
# bare pass-through's, and the time to first token no worse than before.
COLD_GOAL, ADDED_GOAL, TTFT_SLACK_MS = 1.1, 1.3, 0.1


def targets(r: dict) -> list[dict]:
    gw, bare = r["processes"]["gateway"], r["processes"]["bare"]
    added_gw = r["gen_added_gateway"]["median_ms"]
    added_bare = r["gen_added_bare"]["median_ms"]
    rows = [
        (
            "added latency vs the bare pass-through (median)",
            added_gw / added_bare if added_bare > 0 else float("inf"),
            f"≤ {ADDED_GOAL}×",
            lambda v: v <= ADDED_GOAL,
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
            "cold start to first streamed token (uvicorn) vs bare, median of paired runs",
            cold_ratio(r, "gateway", "uvicorn"),
            f"≤ {COLD_GOAL}×",
            lambda v: v <= COLD_GOAL,
        ),
        (
            "cold start to first answer (Mangum) vs bare, median of paired runs",
            cold_ratio(r, "gateway", "mangum"),
            f"≤ {COLD_GOAL}×",
            lambda v: v <= COLD_GOAL,
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
    if "ttft_after_minus_before" in r:
        rows.append(
            (
                f"first token, after − before ({r['source'].get('before')}), median per round (ms)",
                r["ttft_after_minus_before"]["median_ms"],
                f"≤ {TTFT_SLACK_MS} ms (unchanged or better)",
                lambda v: v <= TTFT_SLACK_MS,
            )
        )
    b = r.get("budgets")
    if b:
        # Reserve, then call: the first token waits for one store round trip (the writes of a
        # reservation go out together), and nothing else.
        trip = b["store_round_trip"]["median_ms"]
        rows.append(
            (
                "budgets on: added to the median first token (on − off, 50 ms upstream)",
                b["ttft_budgets"]["median_ms"],
                f"≤ one store round trip + 1 ms ({trip + 1:.1f} ms)",
                lambda v: v <= trip + 1,
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
    """Budgets off vs on over a paced upstream, before and after the change, in the same
    rounds (absent for code without budgets)."""
    b = r.get("budgets")
    if not b:
        return []

    def row(label: str, key: str) -> str | None:
        v = b.get(key)
        if v is None:
            return None
        return f"| {label} | {v['median_ms']:.2f} | {v['p95_ms']:.2f} | {v['p99_ms']:.2f} |"

    pacing = b["pacing"]
    before = b.get("before_commit")
    trip = b["store_round_trip"]
    lines: list[str | None] = [
        "## Budgets: reserve, then call",
        "",
        f"A paced upstream: streams take {pacing['first_token_ms']} ms to the first token, then "
        f"{pacing['token_ms']} ms a token; buffered calls answer after "
        f"{pacing['buffered_upstream_ms']} ms",
        "(the same generation). Each budgeted gateway has its own store, the embedded one",
        "(moto's server mode) in its own process, behind a proxy that holds each request "
        f"{b.get('store_delay_ms', 0):g} ms, as",
        f"DynamoDB answers from Lambda in-region: one conditional `UpdateItem` from the bench "
        f"client takes {trip['median_ms']:.2f} ms",
        f"(median; p95 {trip['p95_ms']:.2f})"
        + (
            f", a three-item `TransactWriteItems` {tx['median_ms']:.2f} ms (p95 {tx['p95_ms']:.2f})."
            if (tx := b.get("store_transaction_round_trip"))
            else "."
        ),
        "Gateways (uvicorn, `GATEWAY_API_KEYS` on all), identical but for the code and the models",
        "file's `budgets` section: *off* (no budgets), *on* (`tokens_per_minute: 10^12`, settled",
        "after the response, as `llm-gateway serve` runs), *Lambda* (the same budgets through",
        "`llm_gateway.asgi:app`, as the Web Adapter runs it: settled before the last byte)"
        + (
            f", and the code before the change (`{before}`, `git archive` in a temp copy)"
            if before
            else ""
        )
        + ".",
        f"Each of {b['rounds']} rounds (after 10 warm-ups) calls direct boto3 and every gateway in",
        "rotating order, buffered then streamed; differences are per round. ms:",
        "",
        "| | median | p95 | p99 |",
        "|---|---|---|---|",
        row("`/generate`, direct boto3", "gen_direct"),
        row(f"`/generate`, before ({before}), budgets off", "gen_before_off"),
        row(f"`/generate`, before ({before}), budgets on", "gen_before_on"),
        row("**`/generate`, before: on − off**", "gen_budgets_before"),
        row("`/generate`, after, budgets off", "gen_off"),
        row("`/generate`, after, budgets on", "gen_on"),
        row("**`/generate`, after: on − off**", "gen_budgets"),
        row("`/generate`, after, Lambda mode", "gen_lambda"),
        row("**`/generate`, after: Lambda − off**", "gen_budgets_lambda"),
        row("first token, direct boto3 stream", "ttft_direct"),
        row(f"first token, before ({before}), budgets off", "ttft_before_off"),
        row(f"first token, before ({before}), budgets on", "ttft_before_on"),
        row("**first token, before: on − off**", "ttft_budgets_before"),
        row("first token, after, budgets off", "ttft_off"),
        row("first token, after, budgets on", "ttft_on"),
        row("**first token, after: on − off**", "ttft_budgets"),
        row("first token, after, Lambda mode", "ttft_lambda"),
        row("**first token, after: Lambda − off**", "ttft_budgets_lambda"),
        row("**stream's last byte, before: on − off**", "last_budgets_before"),
        row("**stream's last byte, after: on − off**", "last_budgets"),
        row("**stream's last byte, after: Lambda − off**", "last_budgets_lambda"),
    ]
    out = [line for line in lines if line is not None] + [""]
    out += [
        "Store requests per budgeted request, counted by the store process (each request",
        f"reaching it, by its `X-Amz-Target`) over {STORE_COUNT_REQUESTS} buffered and "
        f"{STORE_COUNT_REQUESTS} streamed requests per gateway, settlements included:",
        "",
        "| gateway | per request | by operation |",
        "|---|---|---|",
    ]
    labels = {
        "on": "after, on",
        "lambda": "after, Lambda mode",
        "before_on": f"before ({before}), on",
    }
    for name, calls in (b.get("store_calls") or {}).items():
        if isinstance(calls, dict) and "per_request" in calls:
            ops = ", ".join(f"{k} {v:g}" for k, v in calls["by_operation"].items())
            out.append(f"| {labels.get(name, name)} | {calls['per_request']:g} | {ops} |")
    out.append("")
    for label, key in (("after", "exhausted"), (f"before ({before})", "before_exhausted")):
        x = b.get(key)
        if not x:
            continue
        out += [
            f"An exhausted key, {label} (limit {x['limit_tokens_per_minute']} tokens a minute): "
            f"{x['admitted_before_refusal']} requests admitted, then one refused by the store with",
            f"{x['upstream_calls_of_the_store_refusal']} upstream call(s); the next {x['requests']} "
            f"requests (buffered and streamed) got {x['refused_429']} × 429 with "
            f"{x['upstream_calls']} upstream calls",
            f"and {x['store_calls']} store requests, in {x['refusal']['median_ms']:.2f} ms "
            f"(median; p95 {x['refusal']['p95_ms']:.2f} ms).",
            "",
        ]
    if BUDGETS_READING:
        out += [BUDGETS_READING, ""]
    return out


# What the budget runs show, kept with the report.
BUDGETS_READING = """**Reading** (the run saved as `bench/results/budgets-reserve-first.json`). Before, the
reservation ran beside the upstream call and cost the first token about 0.6 ms, but a refused
request had already reached the model (the exhausted key's store refusal: 1 upstream call).
Now no upstream call starts before the reservation has returned, so the first token and the
buffered answer wait for one store round trip: +10.9 and +10.8 ms median, against a
conditional `UpdateItem` that takes 7.7 ms from the bench client through the 3 ms proxy (the
rest is the gateway's thread hop and boto3's own work). In Lambda mode the settlement is part of
the response: the first token costs the same (+12.6 ms), the stream's last event and the
buffered answer also wait for the settlement's `TransactWriteItems` (12.6 ms here): +30.8 and
+29.3 ms. That is the price of spend that cannot leak (no GPU work for a refused request, no
settlement lost to a frozen environment); on a real GPU it is a few percent of the time to
first token. Store requests per request are unchanged: one `UpdateItem` per limited window
before the call (one here, several go out together) and one `TransactWriteItems` after it. An
exhausted key's refusals still cost nothing: no store request, no upstream call, about 1 ms."""


def markdown(r: dict) -> str:
    def row(label: str, key: str) -> str:
        v = r[key]
        return f"| {label} | {v['median_ms']:.2f} | {v['p95_ms']:.2f} | {v['p99_ms']:.2f} |"

    tp = r["throughput_tokens_per_s"]
    src = r.get("source") or {}
    measured = []
    if src.get("commit"):
        changes = " with uncommitted changes to `src`" if src.get("src_modified") else ""
        measured = [
            f"Code measured: commit `{src['commit'][:12]}`{changes}; the gateway is "
            f"`{src['create_app']}`.",
            "",
        ]
    before = src.get("before")
    lines = [
        f"Machine: {r['machine']} (a shared development box). Produced by `make bench` "
        "(`bench/run.py`, which rewrites this part of the file, down to the marker before the "
        "earlier runs); raw figures in `bench/results/latest.json`.",
        "",
        *measured,
        "## Method",
        "",
        "The SageMaker emulator answers at zero model latency (20-token answers; 2,000 for throughput).",
        "The emulator, the gateway (`llm_gateway.asgi:app`, what the Lambda Web Adapter runs, by",
        "uvicorn with `llm-gateway serve`'s options; metrics and logs on, written to /dev/null),",
        "the bare floor",
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
        *(
            [
                "",
                f"*Before*: the code of commit `{before}` (`BENCH_BEFORE`, default `a32f9ee`: the",
                "state before issue 23's work) from a `git archive` copy, run as one more gateway",
                "through the same rounds (so each of the paired rounds calls it too), the same",
                "paired cold starts and its own `sam build`.",
            ]
            if before
            else []
        ),
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
        *before_rows(r, row),
        "",
        f"Relay throughput on a 2,000-token unpaced stream (tokens/s, median of 5): direct boto3 "
        f"{tp['direct']:,}, gateway {tp['gateway']:,}.",
        "",
        *openai_section(r),
        *routes_section(r),
        *budgets_section(r),
        *lambda_section(r),
        *before_after_section(r),
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
    lines.append("")
    return "\n".join(lines)


def before_rows(r: dict, row: Any) -> list[str]:
    """The code before, in the same rounds, and what changed round by round."""
    if "gen_before" not in r:
        return []
    before = r["source"].get("before")
    return [
        row(f"`/generate`, before (`{before}`)", "gen_before"),
        row(f"added by the gateway before (`{before}`)", "gen_added_before"),
        row("**`/generate`, after − before**", "gen_after_minus_before"),
        row(f"first token, before (`{before}`)", "ttft_before"),
        row(f"added to first token before (`{before}`)", "ttft_added_before"),
        row("**first token, after − before**", "ttft_after_minus_before"),
    ]


def routes_section(r: dict) -> list[str]:
    """The OpenAI chat route and the Anthropic Messages route, side by side."""
    o = r.get("routes")
    if not o:
        return []
    before = r["source"].get("before")

    def cell(v: dict | None) -> str:
        return f"{v['median_ms']:.2f} / {v['p95_ms']:.2f}" if v else "–"

    lines = [
        "## The chat routes: OpenAI chat completions and Anthropic Messages",
        "",
        "`/v1/chat/completions` and `/v1/messages` with the same conversation, buffered and",
        "streamed, on the TGI backend (the chat is rendered through the model's template and sent",
        "to `/generate`) and on the openai backend (a vLLM-like endpoint: sent as a chat",
        "completion). Each backend's direct call is the upstream request the route amounts to",
        "(TGI `/generate`, or the chat completion). First token: the first event carrying",
        "generated text (a chat chunk with non-empty `content`, a Messages `content_block_delta`).",
        f"Each of {o['rounds']} rounds (after 10 warm-ups) calls direct boto3 and every route in",
        "rotating order; differences are per round. ms, median / p95:",
        "",
        "| | TGI backend | openai backend |",
        "|---|---|---|",
    ]
    rows = [
        ("buffered, added by `/v1/chat/completions`", "gen_added_chat"),
        ("buffered, added by `/v1/messages`", "gen_added_messages"),
        ("buffered, Messages − chat", "gen_messages_minus_chat"),
        ("first token, added by `/v1/chat/completions`", "ttft_added_chat"),
        ("first token, added by `/v1/messages`", "ttft_added_messages"),
        ("first token, Messages − chat", "ttft_messages_minus_chat"),
    ]
    if "gen_added_before_chat" in o.get("tgi", {}):
        rows += [
            (f"buffered, added by chat before (`{before}`)", "gen_added_before_chat"),
            (f"first token, added by chat before (`{before}`)", "ttft_added_before_chat"),
        ]
    for label, key in rows:
        lines.append(f"| {label} | {cell(o['tgi'].get(key))} | {cell(o['openai'].get(key))} |")
    return [*lines, ""]


def lambda_section(r: dict) -> list[str]:
    p = r["processes"]
    variants = [("gateway", "gateway")]
    if "before" in p:
        variants.append(("before", f"before (`{r['source'].get('before')}`)"))
    variants.append(("bare", "bare"))

    def line(label: str, fmt: Any) -> str:
        return f"| {label} | " + " | ".join(fmt(p[v]) for v, _ in variants) + " |"

    lines = [
        "## Lambda handler and cold start",
        "",
        "| | " + " | ".join(title for _, title in variants) + " |",
        "|---|" + "---|" * len(variants),
        line(
            "Mangum, per API Gateway event (median / p95 ms, in-process)",
            lambda x: f"{x['mangum_event_median_ms']:.2f} / {x['mangum_event_p95_ms']:.2f}",
        ),
        line(
            "cold start, process spawn to first event answered (Mangum, s, median)",
            lambda x: f"{x['mangum_cold_s']:.3f}",
        ),
        line(
            "cold start, process spawn to first streamed token (uvicorn, s, median)",
            lambda x: f"{x['uvicorn_cold_first_token_s']:.3f}",
        ),
        line("peak RSS, Mangum (MB)", lambda x: f"{x['mangum_peak_rss_mb']}"),
        line("peak RSS, uvicorn (MB)", lambda x: f"{x['uvicorn_peak_rss_mb']}"),
    ]
    ratios = p.get("paired_ratios", {})
    if ratios:
        lines += [
            "",
            "Cold start ÷ the bare stack's in the same run (each run starts every variant once",
            "per mode, in rotating order): the median of the runs' ratios, and each run's.",
            "",
            "| | Mangum (first answer) | uvicorn (first streamed token) |",
            "|---|---|---|",
        ]
        for which, title in variants[:-1]:
            cells = []
            for mode in ("mangum", "uvicorn"):
                runs = ", ".join(f"{v:.2f}" for v in ratios[which][mode]["runs"])
                cells.append(f"**{ratios[which][mode]['median']:.2f}×** [{runs}]")
            lines.append(f"| {title} | {cells[0]} | {cells[1]} |")
    lines.append("")
    for key, title in (("size", "this checkout"), ("size_before", "before")):
        s = r.get(key)
        if s and "total_mb" in s:
            lines += [
                f"Package, {title} (`sam build`, unzipped): function {s['function_mb']} MB "
                f"({s.get('function_modules', '?')} Python files"
                + (f"; ships {', '.join(s['function_has'])}" if s.get("function_has") else "")
                + f") + layer {s['layer_mb']} MB = {s['total_mb']} MB of Lambda's 250 MB.",
                "",
            ]
    return lines


def before_after_section(r: dict) -> list[str]:
    """Issue 23's comparison in one table: the code before beside this checkout, same run."""
    if "gen_before" not in r:
        return []
    before = r["source"]["before"]
    ratio = lambda a, b: a / b if b else float("inf")  # noqa: E731
    bare_added = r["gen_added_bare"]["median_ms"]
    rows = [
        (
            "cold start vs bare, Mangum (median of paired runs)",
            f"{cold_ratio(r, 'before', 'mangum'):.2f}×",
            f"{cold_ratio(r, 'gateway', 'mangum'):.2f}×",
        ),
        (
            "cold start vs bare, uvicorn (median of paired runs)",
            f"{cold_ratio(r, 'before', 'uvicorn'):.2f}×",
            f"{cold_ratio(r, 'gateway', 'uvicorn'):.2f}×",
        ),
        (
            "`/generate` added, median (ms) and ÷ the bare pass-through's",
            f"{r['gen_added_before']['median_ms']:.2f} "
            f"({ratio(r['gen_added_before']['median_ms'], bare_added):.2f}×)",
            f"{r['gen_added_gateway']['median_ms']:.2f} "
            f"({ratio(r['gen_added_gateway']['median_ms'], bare_added):.2f}×)",
        ),
        (
            "first token added, median (ms)",
            f"{r['ttft_added_before']['median_ms']:.2f}",
            f"{r['ttft_added_gateway']['median_ms']:.2f}",
        ),
    ]
    o = r.get("routes") or {}
    for backend in ("tgi", "openai"):
        v = o.get(backend, {})
        if "ttft_added_before_chat" in v:
            rows.append(
                (
                    f"`/v1/chat/completions` first token added, {backend} backend (ms)",
                    f"{v['ttft_added_before_chat']['median_ms']:.2f}",
                    f"{v['ttft_added_chat']['median_ms']:.2f}",
                )
            )
    tp = r["throughput_tokens_per_s"]
    if "before" in tp:
        rows.append(("relay throughput (tokens/s)", f"{tp['before']:,}", f"{tp['gateway']:,}"))
    p = r["processes"]
    for mode, key in (("Mangum", "mangum_peak_rss_mb"), ("uvicorn", "uvicorn_peak_rss_mb")):
        rows.append((f"peak RSS, {mode} (MB)", f"{p['before'][key]}", f"{p['gateway'][key]}"))
    sb, sa = r.get("size_before") or {}, r.get("size") or {}
    if "total_mb" in sb and "total_mb" in sa:
        rows += [
            ("function, unzipped (MB)", f"{sb['function_mb']}", f"{sa['function_mb']}"),
            ("layer, unzipped (MB)", f"{sb['layer_mb']}", f"{sa['layer_mb']}"),
            ("function Python files", f"{sb['function_modules']}", f"{sa['function_modules']}"),
        ]
    box = r.get("box") or {}
    return [
        f"## Before (`{before}`) and after, in the same run",
        "",
        f"*Before* is commit `{before}` (the state before issue 23's work), from a `git archive`",
        "copy: its gateway ran as a fourth server through the same rounds, its handler and server",
        "through the same paired cold starts, its template through `sam build`. *After* is this",
        "checkout. The run: "
        + (
            f"started {box.get('started_utc')} UTC, {box.get('minutes')} minutes, 1-minute load "
            f"average {box.get('loadavg_1min_start')} at the start and "
            f"{box.get('loadavg_1min_end')} at the end on {os.cpu_count()} CPUs."
            if box
            else "(no record of the load)."
        ),
        "",
        f"| | before (`{before}`) | after |",
        "|---|---|---|",
        *(f"| {label} | {b} | {a} |" for label, b, a in rows),
        "",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
