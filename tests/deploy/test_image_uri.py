"""Image URIs as the SageMaker SDK resolves them, and the endpoint template's generated parts."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys

import botocore.session
import pytest

from llm_gateway.cli import main
from llm_gateway.deploy import image_uri as iu
from llm_gateway.deploy.mappings import render_template, version_choices
from tests.deploy.conftest import ENDPOINT_TEMPLATE, ROOT, load_cfn

REPO = "huggingface-pytorch-tgi-inference"
US = f"763104351884.dkr.ecr.us-east-1.amazonaws.com/{REPO}"


# What sagemaker 2.257.7's get_huggingface_llm_image_uri("huggingface", region=…, version=…)
# returned (aws-serverless-facts.md §5).
@pytest.mark.parametrize(
    ("region", "version", "expected"),
    [
        ("us-east-1", None, f"{US}:2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"),
        ("us-east-1", "3.3.6", f"{US}:2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"),
        ("us-east-1", "3.3", f"{US}:2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"),
        ("us-east-1", "2.0", f"{US}:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04-v2.2"),
        ("us-east-1", "2.3", f"{US}:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04"),
        ("us-east-1", "0.8.2", f"{US}:2.0.0-tgi0.8.2-gpu-py39-cu118-ubuntu20.04"),
        (
            "eu-central-2",
            "3.3.6",
            f"380420809688.dkr.ecr.eu-central-2.amazonaws.com/{REPO}"
            ":2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04",
        ),
        (
            "cn-north-1",
            "3.3.6",
            f"727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/{REPO}"
            ":2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04",
        ),
    ],
)
def test_matches_the_sagemaker_sdk(region, version, expected):
    assert iu.image_uri(region, version) == expected


def test_latest_is_the_larger_of_first_and_last():
    assert iu.latest_version() == "3.3.6"


def test_unknown_version_and_region():
    with pytest.raises(ValueError, match=r"Unsupported huggingface-llm version: 9\.9\. .*3\.3\.6"):
        iu.image_uri("us-east-1", "9.9")
    with pytest.raises(ValueError, match=r"Unsupported region: mars-north-1\."):
        iu.image_uri("mars-north-1")


def test_cli(capsys):
    assert main(["image-uri", "--region", "ap-east-2", "--version", "3.2"]) == 0
    assert capsys.readouterr().out == (
        f"975050140332.dkr.ecr.ap-east-2.amazonaws.com/{REPO}"
        ":2.6.0-tgi3.2.3-gpu-py311-cu124-ubuntu22.04\n"
    )
    assert main(["image-uri", "--region", "us-east-1", "--version", "7"]) == 2
    assert "Unsupported huggingface-llm version: 7" in capsys.readouterr().err


def test_packaged_registry_is_the_sdk_file():
    data = json.loads((ROOT / "src/llm_gateway/deploy/data/huggingface-llm.json").read_text())
    assert set(data) == {"inference"}
    assert data["inference"]["processors"] == ["gpu"]
    assert len(data["inference"]["versions"]) >= 23


def test_generated_template_parts_match_the_data():
    """Fails when the data file changes and scripts/gen_image_mappings.py was not run."""
    text = ENDPOINT_TEMPLATE.read_text(encoding="utf-8")
    assert render_template(text) == text, "run scripts/gen_image_mappings.py"


@functools.cache
def _dns_suffix(region: str) -> str:
    endpoints = botocore.session.get_session().get_data("endpoints")
    for partition in endpoints["partitions"]:
        if region in partition["regions"] or re.match(partition["regionRegex"], region):
            return partition["dnsSuffix"]
    raise AssertionError(region)


def test_template_resolves_every_region_and_version_like_the_sdk():
    """Evaluate the template's image Fn::Sub for every region x version choice."""
    template = load_cfn(ENDPOINT_TEMPLATE)
    mappings = template["Mappings"]
    param = template["Parameters"]["TgiVersion"]
    assert param["AllowedValues"] == version_choices()
    assert param["Default"] == iu.latest_version()
    image = template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Image"]
    pattern, _ = image["Fn::If"][2]["Fn::Sub"]
    assert pattern == "${Account}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${Repository}:${Tag}"
    regions = mappings["TgiRegistry"]
    assert len(regions) == 42
    for region in regions:
        for version in version_choices():
            values = {
                "Account": regions[region]["Account"],
                "AWS::Region": region,
                "AWS::URLSuffix": _dns_suffix(region),
                "Repository": mappings["TgiImage"][version]["Repository"],
                "Tag": mappings["TgiImage"][version]["Tag"],
            }
            uri = re.sub(r"\$\{([^}]+)\}", lambda m, v=values: v[m.group(1)], pattern)
            assert uri == iu.image_uri(region, version), (region, version)


def test_generator_script_check_mode():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_image_mappings.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout
