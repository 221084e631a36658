"""The Hugging Face LLM (TGI) container image URI for a region and TGI version, offline.

Mirrors the SageMaker Python SDK's ``get_huggingface_llm_image_uri("huggingface", region, version)``
(``image_uris.retrieve("huggingface-llm", …)``) over a copy of the SDK's own registry file,
``data/huggingface-llm.json``, so neither the SDK nor AWS credentials are needed:

1. no version: the larger of the first and last listed versions (the SDK compares just those two);
2. a version or an alias (``"3.3"`` → ``3.3.6``, ``"2.0"`` → ``2.4.0``), else ``ValueError``;
3. the registry account for the region, else ``ValueError``;
4. tag ``{tag_prefix}-gpu-{py_version}-{container_version}``;
5. ``{account}.dkr.{ecr hostname of the region}/{repository}:{tag}``.

>>> image_uri("us-east-1", "3.3")
'763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

FRAMEWORK = "huggingface-llm"
PROCESSOR = "gpu"


@cache
def registry() -> dict[str, Any]:
    """The ``inference`` section of the packaged registry file."""
    text = resources.files("llm_gateway.deploy").joinpath("data/huggingface-llm.json").read_text()
    return json.loads(text)["inference"]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def latest_version() -> str:
    """What the SDK picks without a version: the larger of the first and last keys."""
    versions = list(registry()["versions"])
    return max(versions[0], versions[-1], key=_version_key)


def supported_versions() -> list[str]:
    """Every accepted spelling: full versions, then aliases (the SDK's order)."""
    data = registry()
    return [*data["versions"], *data["version_aliases"]]


def resolve_version(version: str | None) -> str:
    data = registry()
    if version is None:
        return latest_version()
    if version in data["versions"]:
        return version
    if version in data["version_aliases"]:
        return data["version_aliases"][version]
    raise ValueError(
        f"Unsupported {FRAMEWORK} version: {version}. You may need to upgrade your SDK version "
        f"(pip install -U sagemaker) for newer {FRAMEWORK} versions. "
        f"Supported {FRAMEWORK} version(s): {', '.join(supported_versions())}."
    )


@cache
def ecr_hostname(region: str) -> str:
    """ECR's hostname in ``region`` from botocore's endpoint data (as the SDK resolves it)."""
    import botocore.regions
    import botocore.session

    resolver = botocore.regions.EndpointResolver(
        botocore.session.get_session().get_data("endpoints")
    )
    endpoint = resolver.construct_endpoint("ecr", region)
    if endpoint is None:  # a region botocore does not know yet: the commercial partition
        return f"ecr.{region}.amazonaws.com"
    return str(endpoint["hostname"])


@dataclass(frozen=True)
class ImageSpec:
    version: str
    account: str
    repository: str
    tag: str
    hostname: str

    @property
    def uri(self) -> str:
        return f"{self.account}.dkr.{self.hostname}/{self.repository}:{self.tag}"


def image_tag(version: str) -> str:
    spec = registry()["versions"][version]
    py_versions = spec["py_versions"]
    return "-".join(
        part
        for part in (
            spec["tag_prefix"],
            PROCESSOR,
            py_versions[0] if py_versions else None,
            spec["container_version"][PROCESSOR],
        )
        if part
    )


def image_spec(region: str, version: str | None = None) -> ImageSpec:
    resolved = resolve_version(version)
    spec = registry()["versions"][resolved]
    registries = spec["registries"]
    if region not in registries:
        raise ValueError(
            f"Unsupported region: {region}. You may need to upgrade your SDK version "
            f"(pip install -U sagemaker) for newer regions. "
            f"Supported region(s): {', '.join(registries)}."
        )
    return ImageSpec(
        version=resolved,
        account=registries[region],
        repository=spec["repository"],
        tag=image_tag(resolved),
        hostname=ecr_hostname(region),
    )


def image_uri(region: str, version: str | None = None) -> str:
    """The TGI image URI, exactly as ``get_huggingface_llm_image_uri`` returns it."""
    return image_spec(region, version).uri
