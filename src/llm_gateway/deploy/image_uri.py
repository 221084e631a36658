"""Container image URIs for a region, container and version, offline.

Mirrors the SageMaker Python SDK's ``image_uris.retrieve(framework, region, version,
image_scope="inference")`` over copies of the SDK's own registry files in ``data/`` (their source
package and version are in ``data/SOURCES.md``), so neither the SDK nor AWS credentials are
needed. Four containers:

========= ================= =================================================================
container  registry file     image
========= ================= =================================================================
``tgi``    huggingface-llm   Hugging Face LLM DLC (TGI), ``get_huggingface_llm_image_uri``
``lmi``    djl-lmi           AWS LMI (DJL Serving + vLLM), ``djl-inference``
``vllm``   vllm              AWS vLLM DLC, ``vllm``
``sglang`` sglang            AWS SGLang DLC, ``sglang``
========= ================= =================================================================

The SDK's steps, for each:

1. no version: the ``latest`` alias if the file has one, else the larger of the first and last
   listed versions (the SDK compares just those two);
2. a version or an alias (``"3.3"`` → ``3.3.6``), else ``ValueError``;
3. the registry account for the region, else ``ValueError``;
4. tag ``{tag_prefix}-{processor}-{py_version}-{container_version}``, leaving out the parts a
   file does not have (LMI's tag is its ``tag_prefix`` alone);
5. ``{account}.dkr.{ecr hostname of the region}/{repository}:{tag}``.

>>> image_uri("us-east-1", "3.3")
'763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

#: container → the SDK framework name (and registry file stem) it resolves with
FRAMEWORKS: Final[dict[str, str]] = {
    "tgi": "huggingface-llm",
    "lmi": "djl-lmi",
    "vllm": "vllm",
    "sglang": "sglang",
}
CONTAINERS: Final[tuple[str, ...]] = tuple(FRAMEWORKS)
FRAMEWORK = FRAMEWORKS["tgi"]  # kept for callers of the TGI-only API
PROCESSOR = "gpu"


def _check(container: str) -> str:
    if container not in FRAMEWORKS:
        raise ValueError(f"Unknown container: {container}. Choose one of: {', '.join(CONTAINERS)}.")
    return FRAMEWORKS[container]


@cache
def registry(container: str = "tgi") -> dict[str, Any]:
    """The inference section of a packaged registry file: ``versions``, ``version_aliases``
    and ``processors`` (empty when the file has none, as LMI's)."""
    framework = _check(container)
    text = resources.files("llm_gateway.deploy").joinpath(f"data/{framework}.json").read_text()
    data = json.loads(text)
    # Most files nest under "inference"; djl-lmi.json holds its versions at the top with
    # "scope": ["inference"].
    section = data.get("inference", data)
    return {
        "versions": section["versions"],
        "version_aliases": section.get("version_aliases", {}),
        "processors": section.get("processors", []),
    }


def _version_key(version: str) -> tuple[int, ...]:
    """Numeric versions (every key in these files is one) compared as ``packaging`` would."""
    return tuple(int(part) for part in version.split("."))


def latest_version(container: str = "tgi") -> str:
    """What the SDK picks without a version."""
    data = registry(container)
    if "latest" in data["version_aliases"]:
        return str(data["version_aliases"]["latest"])
    versions: list[str] = list(data["versions"])
    return max(versions[0], versions[-1], key=_version_key)


def supported_versions(container: str = "tgi") -> list[str]:
    """Every accepted spelling: full versions, then aliases (the SDK's order)."""
    data = registry(container)
    return [*data["versions"], *data["version_aliases"]]


def resolve_version(version: str | None, container: str = "tgi") -> str:
    data = registry(container)
    if version is None:
        return latest_version(container)
    if version in data["versions"]:
        return version
    if version in data["version_aliases"]:
        return str(data["version_aliases"][version])
    framework = FRAMEWORKS[container]
    raise ValueError(
        f"Unsupported {framework} version: {version}. You may need to upgrade your SDK version "
        f"(pip install -U sagemaker) for newer {framework} versions. "
        f"Supported {framework} version(s): {', '.join(supported_versions(container))}."
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
    container: str
    version: str
    account: str
    repository: str
    tag: str
    hostname: str

    @property
    def uri(self) -> str:
        return f"{self.account}.dkr.{self.hostname}/{self.repository}:{self.tag}"


def image_tag(version: str, container: str = "tgi") -> str:
    """The tag of a resolved version, as the SDK's ``_format_tag`` builds it."""
    data = registry(container)
    spec = data["versions"][version]
    processor = PROCESSOR if data["processors"] else None
    py_versions = spec.get("py_versions") or []
    container_version = (spec.get("container_version") or {}).get(PROCESSOR)
    parts = (spec["tag_prefix"], processor, py_versions[0] if py_versions else None)
    return "-".join(part for part in (*parts, container_version) if part)


def image_spec(region: str, version: str | None = None, container: str = "tgi") -> ImageSpec:
    resolved = resolve_version(version, container)
    spec = registry(container)["versions"][resolved]
    registries = spec["registries"]
    if region not in registries:
        raise ValueError(
            f"Unsupported region: {region}. You may need to upgrade your SDK version "
            f"(pip install -U sagemaker) for newer regions. "
            f"Supported region(s): {', '.join(registries)}."
        )
    return ImageSpec(
        container=container,
        version=resolved,
        account=registries[region],
        repository=spec["repository"],
        tag=image_tag(resolved, container),
        hostname=ecr_hostname(region),
    )


def image_uri(region: str, version: str | None = None, container: str = "tgi") -> str:
    """The image URI, exactly as the SDK's ``image_uris.retrieve`` returns it."""
    return image_spec(region, version, container).uri
