"""The AWS region from ``AWS_REGION`` alone (what Lambda sets and the README tells users to set):
botocore reads only ``AWS_DEFAULT_REGION`` and the profile, so the gateway passes it itself.
No AWS call is made here: clients are built and their region read, and ``llm-gateway serve``
is started against "real AWS" and asked only what needs no model."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import httpx
import pytest

from llm_gateway.budgets import make_client as dynamodb_client
from llm_gateway.config import Settings
from llm_gateway.config.settings import aws_region
from llm_gateway.transport.sagemaker import make_client
from tests.processes import serving


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with no region anywhere: no variables, no profile file."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    return monkeypatch


def test_botocore_alone_ignores_aws_region(no_region: pytest.MonkeyPatch) -> None:
    no_region.setenv("AWS_REGION", "eu-west-3")
    assert boto3.session.Session().region_name is None  # why the gateway passes it


def test_clients_take_aws_region(no_region: pytest.MonkeyPatch) -> None:
    no_region.setenv("AWS_REGION", "eu-west-3")
    assert make_client(Settings()).meta.region_name == "eu-west-3"
    assert dynamodb_client(region=aws_region()).meta.region_name == "eu-west-3"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        ({"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-west-2"}, "eu-west-3"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
    ],
)
def test_aws_region_first_then_botocores_own(
    no_region: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        no_region.setenv(name, value)
    assert make_client(Settings()).meta.region_name == expected


def test_serve_against_aws_with_only_aws_region(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - name: llama\n    endpoint: llama-tgi\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_ENDPOINT_URL") and k not in ("AWS_DEFAULT_REGION", "AWS_PROFILE")
    }
    env |= {"AWS_REGION": "eu-west-3", "AWS_CONFIG_FILE": str(tmp_path / "no-config")}
    log = tmp_path / "serve.log"
    with serving("--config", str(config), "--no-metrics", env=env, log=log) as url:
        assert "Backend: SageMaker Runtime in eu-west-3" in log.read_text()
        info = httpx.get(f"{url}/info", timeout=10)  # answered from the config, no AWS call
        assert info.status_code == 200 and info.json()["model_id"] == "llama"
