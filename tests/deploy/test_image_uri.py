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
from llm_gateway.deploy.mappings import (
    missing_regions,
    registry_accounts,
    render_template,
    tgi_input_limit_env,
    version_choices,
)
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


ECR = "dkr.ecr.us-east-1.amazonaws.com"
GOV = "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com"


# What sagemaker-core 2.27.0's image_uris.retrieve(<framework>, region=…, version=…,
# image_scope="inference", instance_type="ml.g5.12xlarge") returned (the SDK v3 package; the
# test over every region and version is in the commit that added these containers).
@pytest.mark.parametrize(
    ("container", "region", "version", "expected"),
    [
        ("lmi", "us-east-1", None, f"763104351884.{ECR}/djl-inference:0.38.0-lmi29.0.0-cu130"),
        ("lmi", "us-east-1", "latest", f"763104351884.{ECR}/djl-inference:0.38.0-lmi29.0.0-cu130"),
        ("lmi", "us-gov-west-1", "0.35.0", f"{GOV}/djl-inference:0.35.0-lmi17.0.0-cu128"),
        (
            "vllm",
            "us-east-1",
            None,
            f"763104351884.{ECR}/vllm:0.30.0-gpu-py312-cu130-ubuntu24.04-sagemaker",
        ),
        (
            "vllm",
            "us-gov-west-1",
            "0.27",
            f"{GOV}/vllm:0.27.1-gpu-py312-cu130-ubuntu22.04-sagemaker",
        ),
        (
            "vllm",
            "eu-central-2",
            "0.30.0",
            "380420809688.dkr.ecr.eu-central-2.amazonaws.com/vllm"
            ":0.30.0-gpu-py312-cu130-ubuntu24.04-sagemaker",
        ),
        (
            "sglang",
            "us-east-1",
            None,
            f"763104351884.{ECR}/sglang:0.5.20-gpu-py312-cu130-ubuntu24.04-sagemaker",
        ),
        (
            "sglang",
            "us-gov-west-1",
            "0.5.18",
            f"{GOV}/sglang:0.5.18-gpu-py312-cu130-ubuntu24.04-sagemaker",
        ),
    ],
)
def test_other_containers_match_the_sagemaker_sdk(container, region, version, expected):
    assert iu.image_uri(region, version, container) == expected


def test_a_version_missing_in_a_region_is_refused_as_the_sdk_does():
    assert "us-gov-west-1" in missing_regions("vllm")["0.30.0"]
    with pytest.raises(ValueError, match=r"Unsupported region: us-gov-west-1\."):
        iu.image_uri("us-gov-west-1", None, "vllm")
    with pytest.raises(ValueError, match=r"Unsupported vllm version: 0\.1\."):
        iu.image_uri("us-east-1", "0.1", "vllm")
    with pytest.raises(ValueError, match="Unknown container: triton"):
        iu.image_uri("us-east-1", None, "triton")


def test_cli(capsys):
    assert main(["image-uri", "--region", "ap-east-2", "--version", "3.2"]) == 0
    assert capsys.readouterr().out == (
        f"975050140332.dkr.ecr.ap-east-2.amazonaws.com/{REPO}"
        ":2.6.0-tgi3.2.3-gpu-py311-cu124-ubuntu22.04\n"
    )
    assert main(["image-uri", "--region", "us-east-1", "--version", "7"]) == 2
    assert "Unsupported huggingface-llm version: 7" in capsys.readouterr().err
    for container, repository in [("tgi", REPO), ("lmi", "djl-inference"), ("vllm", "vllm")]:
        assert main(["image-uri", "--region", "us-east-1", "--container", container]) == 0
        assert capsys.readouterr().out == iu.image_uri("us-east-1", None, container) + "\n"
        assert f"/{repository}:" in iu.image_uri("us-east-1", None, container)
    assert (
        main(["image-uri", "--region", "us-east-1", "--container", "sglang", "--version", "0.5"])
        == 0
    )
    assert capsys.readouterr().out.endswith(
        "/sglang:0.5.20-gpu-py312-cu130-ubuntu24.04-sagemaker\n"
    )


def test_cli_rejects_an_unknown_container(capsys):
    with pytest.raises(SystemExit):
        main(["image-uri", "--region", "us-east-1", "--container", "triton"])
    assert "invalid choice: 'triton'" in capsys.readouterr().err


SOURCES = {  # data file -> (the package it was taken from, the path inside the wheel)
    "huggingface-llm.json": (
        "sagemaker==2.257.7",
        "sagemaker/image_uri_config/huggingface-llm.json",
    ),
    "djl-lmi.json": ("sagemaker==2.257.7", "sagemaker/image_uri_config/djl-lmi.json"),
    "vllm.json": ("sagemaker-core==2.27.0", "sagemaker/core/image_uri_config/vllm.json"),
    "sglang.json": ("sagemaker-core==2.27.0", "sagemaker/core/image_uri_config/sglang.json"),
}


def test_packaged_registries_are_the_sdk_files_and_say_where_from():
    data = json.loads((ROOT / "src/llm_gateway/deploy/data/huggingface-llm.json").read_text())
    assert set(data) == {"inference"}
    assert data["inference"]["processors"] == ["gpu"]
    assert len(data["inference"]["versions"]) >= 23
    notes = (ROOT / "src/llm_gateway/deploy/data/SOURCES.md").read_text()
    for name, (package, path) in SOURCES.items():
        assert (ROOT / "src/llm_gateway/deploy/data" / name).exists()
        assert f"| `{name}` | `{package}` | `{path}` |" in notes, name
    for container in iu.CONTAINERS:
        assert len(iu.supported_versions(container)) >= 8, container
        assert registry_accounts(container)["us-east-1"] == "763104351884"


@pytest.mark.parametrize(
    ("version", "env"),
    [
        ("0.8.2", "MAX_INPUT_LENGTH"),
        ("1.4", "MAX_INPUT_LENGTH"),
        ("1.4.5", "MAX_INPUT_LENGTH"),
        ("2.0.2", "MAX_INPUT_LENGTH"),  # the old name is accepted by every version
        ("2.2.0", "MAX_INPUT_TOKENS"),
        ("2.0", "MAX_INPUT_TOKENS"),  # the alias means 2.4.0
        ("3.3.6", "MAX_INPUT_TOKENS"),
    ],
)
def test_tgi_input_limit_variable_per_version(version, env):
    """TGI 1.x ignores MAX_INPUT_TOKENS; 2.1+ refuses both variables together."""
    assert tgi_input_limit_env(version) == env
    tgi_image = load_cfn(ENDPOINT_TEMPLATE)["Mappings"]["TgiImage"]
    assert tgi_image[version]["InputLimitEnv"] == env


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


VERSION_PARAMETERS = {
    "tgi": "TgiVersion",
    "lmi": "LmiVersion",
    "vllm": "VllmVersion",
    "sglang": "SglangVersion",
}
IMAGE_MAPS = {"tgi": "TgiImage", "lmi": "LmiImage", "vllm": "VllmImage", "sglang": "SglangImage"}


def _tag_for(tag_expression, container, version):
    """Walk the template's Fn::If chain over the container conditions to the FindInMap."""
    conditions = {"IsTgi": "tgi", "IsLmi": "lmi", "IsVllm": "vllm", "IsSglang": "sglang"}
    while "Fn::If" in tag_expression:
        condition, yes, no = tag_expression["Fn::If"]
        tag_expression = yes if conditions[condition] == container else no
    mapping, key, attribute = tag_expression["Fn::FindInMap"]
    assert mapping == IMAGE_MAPS[container] and key == {"Ref": VERSION_PARAMETERS[container]}
    return mapping, attribute


@pytest.mark.parametrize("container", iu.CONTAINERS)
def test_template_resolves_every_region_and_version_like_the_sdk(container):
    """Evaluate the template's image Fn::Sub for every region x version the SDK knows."""
    template = load_cfn(ENDPOINT_TEMPLATE)
    mappings = template["Mappings"]
    param = template["Parameters"][VERSION_PARAMETERS[container]]
    assert param["AllowedValues"] == version_choices(container)
    assert param["Default"] == iu.latest_version(container)
    assert set(template["Parameters"]["Container"]["AllowedValues"]) == set(iu.CONTAINERS)
    image = template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Image"]
    assert image["Fn::If"][:2] == ["HasImageUri", {"Ref": "ImageUri"}]
    pattern, variables = image["Fn::If"][2]["Fn::Sub"]
    assert pattern == "${Account}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${Repository}:${Tag}"
    assert variables["Account"] == {
        "Fn::FindInMap": ["ImageRegistry", {"Ref": "AWS::Region"}, {"Ref": "Container"}]
    }
    assert variables["Repository"] == {
        "Fn::FindInMap": ["ImageRepository", {"Ref": "Container"}, "Name"]
    }
    mapping, attribute = _tag_for(variables["Tag"], container, None)
    # the ImageUri output and the ECR policy use the same lookups
    output = template["Outputs"]["ImageUri"]["Value"]["Fn::If"][2]["Fn::Sub"][1]
    assert output == variables
    checked = 0
    for region, accounts in mappings["ImageRegistry"].items():
        for version in version_choices(container):
            spec = iu.registry(container)["versions"][iu.resolve_version(version, container)]
            if region not in spec["registries"]:
                continue  # the SDK refuses it too (docs/deploy.md lists these gaps)
            values = {
                "Account": accounts[container],
                "AWS::Region": region,
                "AWS::URLSuffix": _dns_suffix(region),
                "Repository": mappings["ImageRepository"][container]["Name"],
                "Tag": mappings[mapping][version][attribute],
            }
            uri = re.sub(r"\$\{([^}]+)\}", lambda m, v=values: v[m.group(1)], pattern)
            assert uri == iu.image_uri(region, version, container), (region, version)
            checked += 1
    assert checked >= 200


def test_generator_script_check_mode():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_image_mappings.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout


def test_generator_check_fails_on_a_stale_template():
    text = ENDPOINT_TEMPLATE.read_text(encoding="utf-8")
    stale = text.replace("0.5.20-gpu-py312", "0.5.19-gpu-py312", 1)
    assert stale != text
    assert render_template(stale) == text
