"""The templates' Rules: what they refuse before CloudFormation creates anything, compared with
the same arithmetic in Python (llm_gateway.deploy.capacity) over every combination; the
rules of signed-in users. CloudFormation evaluates Rules only on deploy: here they are evaluated
by tests/deploy/cfn_eval.refused_by, which accepts only the functions Rules allow."""

from __future__ import annotations

import itertools

import pytest

from llm_gateway.deploy.capacity import INSTANCE_GPUS, nested_refusals, refusals
from tests.deploy.cfn_eval import refused_by
from tests.deploy.conftest import ENDPOINT_TEMPLATE, TEMPLATE, load_cfn

ENDPOINT = load_cfn(ENDPOINT_TEMPLATE)
GATEWAY = load_cfn(TEMPLATE)
IC = "inference-component"
ONE_PER_GPU_COUNT = ["ml.g5.xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge"]  # 1, 4, 8 GPUs
KINDS = {  # rule name prefix → what capacity.refusals calls the reason
    "NumGpusFitOn": "gpus",
    "QuantizeIsForTgi": "quantize",
    "MinInstancesAtMost": "instances",
    "CopiesAtMost": "copies",
    "RoomFor": "room",
    "EndpointNumGpusFitOn": "gpus",
    "NestedQuantizeIsForTgi": "quantize",
    "NestedComponentHasNoMinimum": "min-instances",
    "NestedMinInstancesAtMost": "instances",
    "NestedRoomForAnUpdate": "room",
}


def kinds(rules: set[str]) -> set[str]:
    found = set()
    for rule in rules:
        (prefix,) = [p for p in KINDS if rule.startswith(p)]
        found.add(KINDS[prefix])
    return found


def test_the_instance_types_are_the_mapping_of_gpu_counts():
    allowed = ENDPOINT["Parameters"]["InstanceType"]["AllowedValues"]
    assert allowed == list(INSTANCE_GPUS)
    mapping = ENDPOINT["Mappings"]["InstanceGpus"]
    assert {name: int(row["Gpus"]) for name, row in mapping.items()} == INSTANCE_GPUS
    assert GATEWAY["Parameters"]["EndpointInstanceType"]["AllowedValues"] == ["", *INSTANCE_GPUS]


def test_component_mode_refuses_exactly_what_cannot_hold_its_copies_and_an_update():
    cases = 0
    for instance, gpus, instances, copies in itertools.product(
        ONE_PER_GPU_COUNT, range(1, 9), range(1, 18), range(1, 9)
    ):
        params = {
            "HostingMode": IC,
            "InstanceType": instance,
            "NumGpus": gpus,
            "MaxInstanceCount": instances,
            "MaxCopies": copies,
        }
        expected = refusals(
            instance_type=instance,
            num_gpus=gpus,
            hosting_mode=IC,
            max_instances=instances,
            max_copies=copies,
        )
        assert kinds(refused_by(ENDPOINT, params)) == set(expected), params
        cases += 1
    assert cases == 3 * 8 * 17 * 8


def test_the_defaults_and_samconfigs_scale_to_zero_environment_are_servable():
    assert refused_by(ENDPOINT, {}) == set()
    assert refused_by(ENDPOINT, {"HostingMode": IC}) == set()  # MaxInstanceCount 2: room
    # one instance holding one copy: no room to update the model
    assert kinds(refused_by(ENDPOINT, {"HostingMode": IC, "MaxInstanceCount": 1})) == {"room"}
    # four 1-GPU copies fit on one 4-GPU instance, with room for their update on two
    four = {"HostingMode": IC, "NumGpus": 1, "MaxCopies": 4}
    assert refused_by(ENDPOINT, {**four, "MaxInstanceCount": 2}) == set()
    assert kinds(refused_by(ENDPOINT, {**four, "MaxInstanceCount": 1})) == {"room"}


@pytest.mark.parametrize("mode", ["endpoint", IC])
def test_copy_counts_and_instance_bounds(mode):
    for low, high in itertools.product(range(0, 9), range(1, 9)):
        params = {"HostingMode": mode, "MinCopies": low, "MaxCopies": high, "MaxInstanceCount": 16}
        expected = refusals(hosting_mode=mode, min_copies=low, max_copies=high, max_instances=16)
        assert kinds(refused_by(ENDPOINT, params)) == set(expected), params
        params = {"HostingMode": mode, "InitialCopyCount": low or 1, "MaxCopies": high}
        params["MaxInstanceCount"] = 16
        expected = refusals(
            hosting_mode=mode, initial_copies=low or 1, max_copies=high, max_instances=16
        )
        assert kinds(refused_by(ENDPOINT, params)) == set(expected), params
    for low, high in itertools.product(range(1, 11), range(1, 13)):
        params = {"HostingMode": mode, "MinInstanceCount": low, "MaxInstanceCount": high}
        if mode == IC:
            params["MaxCopies"] = 1
        expected = refusals(hosting_mode=mode, min_instances=low, max_instances=high)
        assert kinds(refused_by(ENDPOINT, params)) == set(expected), params


def test_quantize_is_refused_for_the_openai_containers():
    for container in ("tgi", "lmi", "vllm", "sglang"):
        refused = kinds(refused_by(ENDPOINT, {"Container": container, "Quantize": "awq"}))
        assert refused == ({"quantize"} if container != "tgi" else set())


def test_the_gateway_refuses_what_the_nested_stack_would_refuse():
    """The nested stack's own Rules run only when CloudFormation creates it, after the
    gateway's resources: the gateway checks its Endpoint* values first ("" = the default)."""
    cases = 0
    for instance, gpus, low, high, mode in itertools.product(
        ["", *ONE_PER_GPU_COUNT],
        ["", "1", "2", "4", "8"],
        ["", "1", "2", "3"],
        ["", "1", "2", "3", "11"],
        ["", "endpoint", IC],
    ):
        params = {
            "DeployEndpoint": "true",
            "EndpointInstanceType": instance,
            "EndpointNumGpus": gpus,
            "EndpointMinInstanceCount": low,
            "EndpointMaxInstanceCount": high,
            "EndpointHostingMode": mode,
        }
        expected = nested_refusals(
            deploy=True,
            hosting_mode=mode,
            instance_type=instance,
            num_gpus=gpus,
            min_instances=low,
            max_instances=high,
        )
        assert kinds(refused_by(GATEWAY, params)) == set(expected), params
        cases += 1
    assert cases == 4 * 5 * 4 * 5 * 3
    quantized = {"DeployEndpoint": "true", "EndpointQuantize": "awq"}
    assert refused_by(GATEWAY, {**quantized, "EndpointContainer": "vllm"}) == {
        "NestedQuantizeIsForTgi"
    }
    assert refused_by(GATEWAY, quantized) == set()  # tgi by default


def test_endpoint_settings_without_deploy_endpoint_are_refused():
    assert refused_by(GATEWAY, {"EndpointContainer": "vllm"}) == {
        "EndpointSettingsNeedDeployEndpoint"
    }
    assert refused_by(GATEWAY, {"EndpointMaxInstanceCount": "1"}) == {
        "EndpointSettingsNeedDeployEndpoint"
    }
    assert refused_by(GATEWAY, {}) == set()


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({}, set()),
        ({"CreateUserPool": "true"}, set()),
        ({"CreateUserPool": "true", "UserPoolDomainPrefix": "acme-chat"}, set()),
        ({"CreateUserPool": "true", "FrontendCallbackUrls": "https://app.example.com/cb"}, set()),
        ({"JwtIssuer": "https://issuer.example.com/", "JwtAudience": "api"}, set()),
        (
            {"JwtIssuer": "https://issuer.example.com/", "JwtClientId": "c", "JwtAudience": "c"},
            set(),
        ),
        ({"JwtIssuer": "https://issuer.example.com/", "JwtClientId": "chat"}, set()),
        ({"JwtIssuer": "https://issuer.example.com/"}, {"IssuerNeedsAudience"}),
        (
            {"CreateUserPool": "true", "JwtIssuer": "https://i.example.com/", "JwtAudience": "a"},
            {"OneIssuer"},
        ),
        ({"JwtAudience": "a"}, {"JwtSettingsNeedAnIssuer"}),
        ({"UserPoolDomainPrefix": "acme"}, {"JwtSettingsNeedAnIssuer"}),
        ({"FrontendCallbackUrls": "https://app.example.com/cb"}, {"JwtSettingsNeedAnIssuer"}),
    ],
)
def test_sign_in_rules(params, refused):
    assert refused_by(GATEWAY, params) == refused
