"""Both stacks rendered for every container × hosting mode, with the endpoint nested in the
gateway stack or deployed on its own: the models config the gateway function receives, the
SageMaker ARNs its IAM names, the dashboard's model widgets, and cfn-lint on every rendering
(what CloudFormation receives once its transforms ran: scripts/sam_transform.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.config.loader import parse_config
from tests.deploy.conftest import (
    ENDPOINT_TEMPLATE,
    TEMPLATE,
    load_cfn,
    rendered_endpoint,
    run,
    tool,
    transformed,
)
from tests.deploy.test_sam_transform import as_list, function, sagemaker_statements

CONTAINERS = ["tgi", "lmi", "vllm", "sglang"]
MODES = ["endpoint", "inference-component"]
ARN = "arn:aws:sagemaker:us-east-1:123456789012"  # scripts/sam_transform.py's account, region
WAKE = {"wait_seconds": 600, "retry_seconds": 20}


def expected_entry(container: str, mode: str, endpoint: str) -> dict[str, Any]:
    """The one model of the config, as the endpoint stack describes what it deployed."""
    entry: dict[str, Any] = {
        "name": "oasst-pythia-12b",
        "endpoint": endpoint,
        "model_id": "OpenAssistant/pythia-12b-sft-v8-7k-steps",
        "backend": "tgi" if container == "tgi" else "openai",  # TGI bodies only to TGI
        "limits": {"max_input_tokens": 1024, "max_total_tokens": 2048},
    }
    if container == "tgi":
        entry["template"] = "openassistant"
    if container == "sglang":
        entry["chat_only"] = True
    if mode == "inference-component":
        entry |= {"inference_component": f"{endpoint}-ic", "wake": WAKE}
    return entry


def models_config(template: dict[str, Any]) -> dict[str, Any]:
    raw = json.loads(function(template)["Environment"]["Variables"]["GATEWAY_CONFIG_JSON"])
    parse_config(raw, "GATEWAY_CONFIG_JSON")  # the gateway starts with it
    return raw


def invokable(template: dict[str, Any]) -> list[str]:
    statements = sagemaker_statements(template)
    assert {a for s in statements for a in as_list(s["Action"])} == {"sagemaker:InvokeEndpoint"}
    return sorted(r for s in statements for r in as_list(s["Resource"]))


def dashboard(template: dict[str, Any]) -> str:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    text = body["Fn::Sub"][0] if isinstance(body, dict) else body
    json.loads(re.sub(r"\$\{[^}]+\}", "x", text))  # valid JSON once CloudFormation substitutes
    return text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("container", CONTAINERS)
def test_nested_endpoint_reaches_the_gateway(container, mode):
    """DeployEndpoint=true: the generated config is the child's GatewayModelEntry (backend,
    chat_only, inference_component, wake) and IAM names the child's component."""
    template = transformed(
        DeployEndpoint="true",
        EndpointContainer=container,
        EndpointHostingMode=mode,
        EndpointNames="llama,other",
    )
    config = models_config(template)
    assert config == {
        "default_model": "oasst-pythia-12b",
        "models": [expected_entry(container, mode, "llama")],
    }
    arns = [f"{ARN}:endpoint/llama", f"{ARN}:endpoint/other"]
    if mode == "inference-component":
        arns.append(f"{ARN}:inference-component/llama-ic")
    assert invokable(template) == arns
    passed = template["Resources"]["TgiEndpoint"]["Properties"]["Parameters"]
    assert (passed["Container"], passed["HostingMode"]) == (container, mode)
    assert (passed["GatewayModelName"], passed["PromptTemplate"]) == (
        "oasst-pythia-12b",
        "openassistant",
    )
    widgets = dashboard(template)
    if mode == "inference-component":
        assert '"InferenceComponentName", "llama-ic"' in widgets
        assert '"/aws/sagemaker/InferenceComponents", "GPUUtilizationNormalized"' in widgets
        assert '"EndpointName"' not in widgets
        assert template["Outputs"]["NestedInferenceComponent"]["Value"] == "llama-ic"
    else:
        assert '"EndpointName", "llama", "VariantName", "AllTraffic"' in widgets
        assert "InferenceComponentName" not in widgets


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("container", CONTAINERS)
def test_separate_endpoint_stack_configures_the_gateway(container, mode):
    """The endpoint deployed on its own: its outputs (GatewayModelEntry, InferenceComponentName)
    given to the gateway stack as docs/deploy.md says give the same config and IAM."""
    endpoint = rendered_endpoint(Container=container, HostingMode=mode, EndpointName="llama")
    outputs = {name: body["Value"] for name, body in endpoint["Outputs"].items()}
    entry = json.loads(outputs["GatewayModelEntry"])
    assert entry == expected_entry(container, mode, "llama")
    component = outputs.get("InferenceComponentName", "")
    assert component == ("llama-ic" if mode == "inference-component" else "")
    inline = json.dumps({"models": [entry]})
    gateway = transformed(
        ModelsConfigJson=inline, EndpointNames="llama", InferenceComponentNames=component
    )
    assert models_config(gateway) == {"models": [entry]}
    arns = [f"{ARN}:endpoint/llama"] + (
        [f"{ARN}:inference-component/{component}"] * bool(component)
    )
    assert invokable(gateway) == arns
    if component:  # the generated one-model config calls it too
        generated = transformed(EndpointNames="llama", InferenceComponentNames=component)
        assert models_config(generated)["models"][0]["inference_component"] == "llama-ic"
        assert '"InferenceComponentName", "llama-ic"' in dashboard(generated)


def test_component_names_are_lower_case():
    """SageMaker lower-cases ARNs: a policy naming an upper-case component never matches, so
    both the names the gateway is given and the names the endpoint stack makes are lower case."""
    listed = re.compile(
        load_cfn(TEMPLATE)["Parameters"]["InferenceComponentNames"]["AllowedPattern"]
    )
    assert listed.fullmatch("llama-ic") and listed.fullmatch("")
    assert not listed.fullmatch("Llama-IC")
    endpoint = re.compile(
        load_cfn(ENDPOINT_TEMPLATE)["Parameters"]["EndpointName"]["AllowedPattern"]
    )
    assert not endpoint.fullmatch("Llama")  # the component is <EndpointName>-ic
    rendered = rendered_endpoint(EndpointName="llama", HostingMode="inference-component")
    assert rendered["Outputs"]["InferenceComponentName"]["Value"] == "llama-ic"
    assert rendered["Resources"]["InferenceComponent"]["Properties"]["InferenceComponentName"] == (
        "llama-ic"
    )


SIGN_IN = {
    "none": {},
    "cognito": {"CreateUserPool": "true", "FrontendCallbackUrls": "https://app.example.com/cb"},
    "issuer": {"JwtIssuer": "https://issuer.example.com/", "JwtAudience": "a,b"},
}


def test_every_rendering_is_cfn_lint_clean(tmp_path: Path):
    """cfn-lint on what CloudFormation receives for each combination. Ignored: what deciding the
    conditions leaves behind in a rendering (unused parameters, conditions and mappings)."""
    renders: dict[str, dict[str, Any]] = {}
    for container in CONTAINERS:
        for mode in MODES:
            renders[f"nested-{container}-{mode}"] = transformed(
                DeployEndpoint="true",
                EndpointContainer=container,
                EndpointHostingMode=mode,
                EndpointNames="llama,other",
            )
            renders[f"endpoint-{container}-{mode}"] = rendered_endpoint(
                Container=container, HostingMode=mode, EndpointName="llama"
            )
    renders["separate-components"] = transformed(
        EndpointNames="llama", InferenceComponentNames="llama-ic,other-ic"
    )
    for name, overrides in SIGN_IN.items():
        for streaming in ("stream", "buffered"):
            renders[f"sign-in-{name}-{streaming}"] = transformed(
                StreamingMode=streaming, **overrides
            )
    paths = []
    for name, template in renders.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(template))
        paths.append(str(path))
    ignored = ["W2001", "W7001", "W8001", "W8003"]
    result = run([tool("cfn-lint"), "--ignore-checks", *ignored, "--", *paths], timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # and nothing left half-substituted (SAM CLI's own expander leaves "${GatewayApi}" text)
    for name, template in renders.items():
        for output, body in template["Outputs"].items():
            value = body["Value"]
            if isinstance(value, str):
                assert "${" not in value, (name, output, value)
