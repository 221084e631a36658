"""Deployment tests: the SAM templates, the authorizer, the layer and the helpers.

The SAM CLI, aws-sam-translator and cfn-lint come from ``.venv-sam`` (``make sam-tools``, which
``make test`` runs first). When they are missing these tests fail, naming the command that
installs them: a deploy that was never validated must not look green.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
SAM_VENV = Path(os.environ.get("SAM_VENV", ROOT / ".venv-sam"))
TEMPLATE = ROOT / "template.yaml"
ENDPOINT_TEMPLATE = ROOT / "endpoint" / "template.yaml"
EVENTS = ROOT / "events"


def tool(name: str) -> str:
    path = SAM_VENV / "bin" / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run `make sam-tools` (installs AWS SAM CLI and cfn-lint into "
            f"{SAM_VENV.name}); `make test` does it first",
            pytrace=False,
        )
    return str(path)


def tool_env(**extra: str) -> dict[str, str]:
    """An environment for the SAM tools: no telemetry, no AWS credentials needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1", **extra)
    return env


def run(args: list[str], *, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", tool_env())
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@functools.cache
def transformed(**overrides: str) -> dict[str, Any]:
    """template.yaml after AWS::LanguageExtensions and the SAM transform, for these parameters
    (conditions decided, the nested endpoint's outputs answered: scripts/sam_transform.py)."""
    return _render(TEMPLATE, overrides)


@functools.cache
def rendered_endpoint(**overrides: str) -> dict[str, Any]:
    """endpoint/template.yaml as CloudFormation creates it for these parameters."""
    return _render(ENDPOINT_TEMPLATE, overrides)


def _render(template: Path, overrides: dict[str, str]) -> dict[str, Any]:
    args = [tool("python"), str(ROOT / "scripts" / "sam_transform.py"), "--template", str(template)]
    args += [f"{name}={value}" for name, value in sorted(overrides.items())]
    result = run(args, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref x`` → ``{"Ref": "x"}``)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def python312() -> Path:
    """A real python3.12 (the functions' runtime), which ``sam build`` needs on PATH."""
    candidates = [os.environ.get("PYTHON312", "")]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12"), reverse=True)
    candidates += ["/usr/local/bin/python3.12", "/usr/bin/python3.12"]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if path.exists():
            check = subprocess.run(
                [str(path), "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
            if check.stdout.strip() == "(3, 12)":
                return path
    found = shutil.which("python3.12")
    pytest.fail(
        "no working python3.12 found (needed by `sam build` for the python3.12 runtime); "
        f"looked in $PYTHON312, {pyenv_root}/versions/3.12*, /usr/bin (which: {found})",
        pytrace=False,
    )


def lambda_architecture() -> str:
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


@pytest.fixture(scope="session")
def stream_template() -> dict[str, Any]:
    return transformed()


@pytest.fixture(scope="session")
def buffered_template() -> dict[str, Any]:
    return transformed(StreamingMode="buffered")
