"""`sam build` of the gateway stack, offline apart from PyPI, and what it produces: the function
and its layer under the size budget, the layer exactly as pinned for each architecture and
compiled for python3.12 (layers/deps/Makefile), a function that is the gateway
only (src/Makefile: no emulator, deploy helpers or CLI) compiled for python3.12, its Mangum
handler answering an event from the artifact alone, and the Web Adapter start-up script serving
the built app with python3.12."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from packaging.requirements import Requirement

from tests.deploy.conftest import (
    ROOT,
    lambda_architecture,
    python312,
    run,
    tool,
    tool_env,
    transformed,
)
from tests.processes import free_port

# `sam build` downloads the layer's wheels from PyPI: allow for a slow index.
pytestmark = pytest.mark.timeout(900)

# function + layer, unzipped (Lambda's own limit is 250 MB): 50 MB before the layer shipped its
# bytecode (layers/deps/Makefile), which adds about 11.6 MB (37.4 -> 49.0 MB for x86_64)
BUDGET_MB = 55
LAYER_REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"
# In the python3.12 runtime ($LAMBDA_RUNTIME_DIR), deliberately not in the layer.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil"}
# Left out of the layer on purpose, with the reason.
LEFT_OUT = {
    # Powertools' [tracer] extra: aws-xray-sdk requires botocore, which would then shadow the
    # runtime's boto3 with a mismatched botocore (or need boto3 too: about 33 MB more, over the
    # budget). llm_gateway.observability.tracing runs without it (no X-Ray subsegments);
    # TracingMode=Active still traces each invocation.
    "aws-xray-sdk": "pulls botocore into the layer",
}
RUNTIME_MODULES = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil", "six")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: '{line}' is not pinned"
            found[canonical(name)] = version
    return found


def test_layer_pins_cover_the_runtime_dependencies_and_follow_constraints():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    layer = pins(LAYER_REQUIREMENTS)
    required = set()
    for dep in map(Requirement, project["dependencies"]):
        required.add(canonical(dep.name))
        for extra in dep.extras:  # e.g. aws-lambda-powertools[tracer]
            for sub in map(Requirement, importlib.metadata.requires(dep.name) or []):
                if sub.marker is not None and sub.marker.evaluate({"extra": extra}):
                    required.add(canonical(sub.name))
    missing = required - set(layer) - RUNTIME_PROVIDED - set(LEFT_OUT)
    assert not missing, f"add to layers/deps/requirements.txt: {sorted(missing)}"
    assert not set(layer) & (RUNTIME_PROVIDED | set(LEFT_OUT))
    constraints = pins(ROOT / "constraints.txt")
    drifted = {n: (v, constraints[n]) for n, v in layer.items() if constraints.get(n, v) != v}
    assert not drifted, f"layer pin != constraints.txt: {drifted}"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    interpreter = python312()
    env = tool_env(PATH=f"{interpreter.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = run(
        [
            tool("sam"),
            "build",
            # samconfig.toml's default environment (it turns on --language-extensions)
            "--config-env",
            "default",
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(build_dir.parent / "cache"),
            "--parameter-overrides",
            f"Architecture={lambda_architecture()}",
        ],
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Build Succeeded" in result.stdout
    return build_dir


# template.yaml: one layer resource per architecture (a make target each), only the stack's
# Architecture is created; `sam build` builds both.
LAYERS = {"x86_64": "DepsLayerX86", "arm64": "DepsLayerArm64"}
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # e_machine: EM_X86_64, EM_AARCH64


def layer_dir(build_dir: Path, architecture: str | None = None) -> Path:
    return build_dir / LAYERS[architecture or lambda_architecture()]


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def test_function_and_layer_fit_the_budget(built: Path):
    function, layer = built / "GatewayFunction", layer_dir(built)
    total = size_mb(function) + size_mb(layer)
    print(f"unzipped: function {size_mb(function):.1f} MB + layer {size_mb(layer):.1f} MB")
    assert total < BUDGET_MB, f"function + layer = {total:.1f} MB > {BUDGET_MB} MB"
    # the authorizer ships PyJWT + cryptography for signed-in users' tokens (about 15 MB)
    assert size_mb(built / "AuthorizerFunction") < 25


def test_built_authorizer_holds_its_code_and_exactly_its_pinned_requirements(built: Path):
    """CodeUri authorizer/ with its own requirements.txt: sam build installs exactly those
    versions (for the function's Python and architecture), apart from the gateway's layer."""
    authorizer = built / "AuthorizerFunction"
    assert (authorizer / "app.py").exists()
    wanted = pins(ROOT / "authorizer" / "requirements.txt")
    installed = {}
    for dist in authorizer.glob("*.dist-info"):
        name, version = dist.name[: -len(".dist-info")].rsplit("-", 1)
        installed[canonical(name)] = version
    assert installed == wanted
    assert not list(authorizer.glob("llm_gateway*"))  # the gateway's code stays out


def test_both_layers_are_built(built: Path):
    layers = sorted(p.name for p in built.iterdir() if p.name.startswith("DepsLayer"))
    assert layers == sorted(LAYERS.values())


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_the_stack_creates_the_layer_of_its_architecture_only(architecture: str):
    template = transformed(Architecture=architecture)["Resources"]
    layers = [k for k, v in template.items() if v["Type"] == "AWS::Lambda::LayerVersion"]
    (layer,) = layers  # the other architecture's resource is not created
    assert re.fullmatch(rf"{LAYERS[architecture]}[0-9a-f]{{10}}", layer)  # SAM adds a hash
    assert template[layer]["Properties"]["CompatibleArchitectures"] == [architecture]
    function = template["GatewayFunction"]["Properties"]
    assert function["Architectures"] == [{"Ref": "Architecture"}]  # Globals
    assert function["Layers"][0] == {"Ref": layer}


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_built_layer_is_exactly_the_pinned_set(built: Path, architecture: str):
    python = layer_dir(built, architecture) / "python"
    installed = {}
    for dist in python.glob("*.dist-info"):
        name, version = dist.name[: -len(".dist-info")].rsplit("-", 1)
        installed[canonical(name)] = version
    assert installed == pins(LAYER_REQUIREMENTS)
    machine = MACHINES[architecture]
    assert list(python.glob(f"pydantic_core/*cpython-312-{machine}-linux-gnu.so"))
    # every compiled extension is built for this architecture, none for the other one
    extensions = list(python.rglob("*.so"))
    assert extensions
    for extension in extensions:
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", extension
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[architecture], extension
    assert not (python / "bin").exists()  # pip's console scripts, never run on Lambda


@pytest.mark.parametrize("architecture", sorted(LAYERS))
def test_built_layer_ships_bytecode_for_python312(built: Path, architecture: str):
    """/opt is read-only too: every module of the layer ships compiled by python3.12
    (unchecked hash-based), as the function's do."""
    python = layer_dir(built, architecture) / "python"
    modules = sorted(python.rglob("*.py"))
    assert len(modules) > 500  # fastapi, pydantic, starlette, ...
    magic = python312_magic()
    for module in modules:
        assert_compiled(module, magic)
    compiled = list(python.rglob("*.pyc"))
    assert len(compiled) == len(modules)
    assert all(p.name.endswith(".cpython-312.pyc") for p in compiled)


def assert_compiled(module: Path, magic: bytes) -> None:
    cached = module.parent / "__pycache__" / f"{module.stem}.cpython-312.pyc"
    assert cached.exists(), f"{module}: no bytecode"
    header = cached.read_bytes()[:8]
    assert header[:4] == magic, module
    flags = int.from_bytes(header[4:8], "little")
    assert flags == 0b01, f"{module}: not an unchecked hash-based pyc"  # PEP 552


def test_built_function_holds_the_app_and_the_run_script(built: Path):
    function = built / "GatewayFunction"
    script = function / "run.sh"
    assert script.exists() and os.access(script, os.X_OK)
    assert b"\r\n" not in script.read_bytes()
    assert (function / "llm_gateway" / "asgi.py").exists()
    assert (function / "llm_gateway" / "handler.py").exists()
    assert (function / "llm_gateway" / "ui" / "static" / "index.html").exists()  # GATEWAY_UI
    built_template = (built / "template.yaml").read_text()
    assert "Fn::ForEach::InvokeEndpointPolicies" in built_template  # left for CloudFormation


# What Lambda never runs stays out of the artifact (src/Makefile): installable with the project
# for `llm-gateway serve`, `emulate` and `deploy`, but not shipped.
LEFT_OUT_OF_ARTIFACT = (
    "emulator",
    "deploy",
    "cli.py",
    "__main__.py",
    "local.py",
    "budgets/cli.py",
    "budgets/local.py",
)


def test_built_function_is_the_gateway_only(built: Path):
    package = built / "GatewayFunction" / "llm_gateway"
    assert sorted(p.name for p in package.parent.iterdir()) == ["llm_gateway", "run.sh"]
    for name in LEFT_OUT_OF_ARTIFACT:
        assert (ROOT / "src" / "llm_gateway" / name).exists(), name  # still in the project
        assert not (package / name).exists(), f"{name} shipped in the Lambda artifact"
    # every other module of the package ships
    shipped = {p.relative_to(package) for p in package.rglob("*.py")}
    source = ROOT / "src" / "llm_gateway"
    wanted = {
        p.relative_to(source)
        for p in source.rglob("*.py")
        if not any(str(p.relative_to(source)).startswith(name) for name in LEFT_OUT_OF_ARTIFACT)
    }
    assert shipped == wanted


def test_built_function_ships_bytecode_for_python312(built: Path):
    """/var/task is read-only: without bytecode in the artifact each cold start compiles every
    module it imports. Each module ships compiled by python3.12, and nothing else does."""
    package = built / "GatewayFunction" / "llm_gateway"
    modules = sorted(package.rglob("*.py"))
    magic = python312_magic()
    for module in modules:
        assert_compiled(module, magic)
    compiled = list(package.rglob("*.pyc"))
    assert len(compiled) == len(modules)
    assert all(p.name.endswith(".cpython-312.pyc") for p in compiled)


def python312_magic() -> bytes:
    code = "import importlib.util, sys; sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"
    return subprocess.run([str(python312()), "-c", code], capture_output=True, check=True).stdout


# Run by python3.12 in isolated mode without site-packages: the import path is the artifact,
# the built layer and the runtime's boto3, as on Lambda. Imports the Mangum handler, answers one
# API Gateway event, and lists every module loaded from outside those directories and the
# standard library.
HANDLER_CHILD = r"""
import json, sys, sysconfig
artifact, layer, runtime, event_file = sys.argv[1:5]
sys.path[:0] = [artifact, layer, runtime]
from llm_gateway.handler import handler
class Context:
    function_name = "gateway"; function_version = "$LATEST"; memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:gateway"
    aws_request_id = "r-1"; log_group_name = "g"; log_stream_name = "s"
    def get_remaining_time_in_millis(self): return 29000
with open(event_file) as f:
    response = handler(json.load(f), Context())
allowed = (artifact, layer, runtime, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
strays = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(allowed)
)
gateway = sorted(name for name in sys.modules if name.startswith("llm_gateway"))
print("RESULT " + json.dumps({"response": response, "strays": strays, "gateway": gateway}))
"""


def test_built_handler_answers_an_api_gateway_event_from_the_artifact_alone(
    built: Path, runtime_dir: Path
):
    """The buffered mode's handler (Mangum) under python3.12, with only the artifact, the built
    layer and the runtime's boto3 to import from: the slim package lacks nothing it needs."""
    config = {"models": [{"name": "oasst-pythia-12b", "endpoint": "oasst-pythia-12b-tgi"}]}
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "GATEWAY_CONFIG_JSON": json.dumps(config),
        "LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "llm-gateway",
        "GATEWAY_METRICS_NAMESPACE": "LLMGateway",
    }
    result = subprocess.run(
        [
            str(python312()),
            "-I",  # no PYTHONPATH, no user site, not the current directory
            "-S",  # no site-packages either
            "-B",  # writes no bytecode: /var/task is read-only
            "-c",
            HANDLER_CHILD,
            str(built / "GatewayFunction"),
            str(layer_dir(built) / "python"),
            str(runtime_dir),
            str(ROOT / "events" / "health.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["response"]["statusCode"] == 200, out["response"]
    assert out["strays"] == []
    assert "llm_gateway.handler" in out["gateway"]
    assert not [
        m for m in out["gateway"] if m.startswith(("llm_gateway.emulator", "llm_gateway.deploy"))
    ]


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Path:
    """Stand-in for the runtime's $LAMBDA_RUNTIME_DIR: boto3 and what it imports."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    site = Path(boto3.__file__).parent.parent
    for module in RUNTIME_MODULES:
        for candidate in (site / module, site / f"{module}.py"):
            if candidate.exists():
                (runtime / candidate.name).symlink_to(candidate)
    return runtime


@pytest.fixture
def served(built: Path, runtime_dir: Path) -> Iterator[str]:
    port = free_port()
    config = {
        "default_model": "oasst-pythia-12b",
        "models": [{"name": "oasst-pythia-12b", "endpoint": "oasst-pythia-12b-tgi"}],
    }
    env = {
        "PATH": f"{python312().parent}{os.pathsep}/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(built / "GatewayFunction"),
        "LAYER_PYTHON_DIR": str(layer_dir(built) / "python"),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "AWS_LWA_PORT": str(port),
        "AWS_REGION": "us-east-1",  # Lambda sets both
        "AWS_DEFAULT_REGION": "us-east-1",
        "GATEWAY_CONFIG_JSON": json.dumps(config),
        "LOG_LEVEL": "WARNING",
        "PYTHONNOUSERSITE": "1",
    }
    process = subprocess.Popen(
        [str(built / "GatewayFunction" / "run.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"run.sh exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "run.sh did not answer /health within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_run_script_starts_the_built_app_with_python312(served: str):
    """What the Web Adapter's readiness check sees, then a route that needs the app's config."""
    health = httpx.get(f"{served}/health")
    assert health.status_code == 200
    assert "server" not in health.headers  # --no-server-header
    models = httpx.get(f"{served}/v1/models")
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["oasst-pythia-12b"]
    info = httpx.get(f"{served}/info")
    assert info.status_code == 200 and info.json()["model_id"] == "oasst-pythia-12b"


def test_package_gets_past_the_template_with_samconfig(built: Path):
    """`sam deploy` packages the built template first; without samconfig's
    language_extensions it crashes on the Fn::ForEach key. AWS is pointed at a closed local
    port, so the run stops at the first upload, after the template was read."""
    env = tool_env(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
    )
    result = run(
        [
            tool("sam"),
            "package",
            "--config-file",
            str(ROOT / "samconfig.toml"),
            "--config-env",
            "default",
            "--template-file",
            str(built / "template.yaml"),
            "--s3-bucket",
            "local-only",
            "--output-template-file",
            str(built.parent / "packaged.yaml"),
        ],
        env=env,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert "Unable to upload artifact" in output and "127.0.0.1:9" in output, output[-2000:]
    assert "unexpected error" not in output.lower()
