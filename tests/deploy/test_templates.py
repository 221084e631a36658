"""Both templates pass cfn-lint and `sam validate`; samconfig.toml; the endpoint stack."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.deploy.cfn_eval import refused_by
from tests.deploy.conftest import ENDPOINT_TEMPLATE, ROOT, TEMPLATE, load_cfn, run, tool

SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
ENVIRONMENTS = {
    "default": "template.yaml",
    "prod": "template.yaml",
    "endpoint-dev": "endpoint/template.yaml",
    "endpoint-prod": "endpoint/template.yaml",
    "endpoint-zero": "endpoint/template.yaml",
}


def test_cfn_lint_both_templates():
    result = run([tool("cfn-lint"), str(TEMPLATE), str(ENDPOINT_TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_the_stream_pitfall(tmp_path):
    """The linter is really looking: a raw Method with RESPONSE_STREAM is rejected."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "Resources:\n"
        "  Api: {Type: AWS::ApiGateway::RestApi, Properties: {Name: x}}\n"
        "  Method:\n"
        "    Type: AWS::ApiGateway::Method\n"
        "    Properties:\n"
        "      RestApiId: !Ref Api\n"
        "      ResourceId: !GetAtt Api.RootResourceId\n"
        "      HttpMethod: GET\n"
        "      AuthorizationType: NONE\n"
        "      Integration: {Type: MOCK, ResponseTransferMode: RESPONSE_STREAM}\n"
    )
    result = run([tool("cfn-lint"), str(bad)])
    assert result.returncode != 0 and "RESPONSE_STREAM" in result.stdout


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_sam_validate_lint(environment):
    result = run([tool("sam"), "validate", "--lint", "--config-env", environment])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{ENVIRONMENTS[environment]} is a valid SAM Template" in result.stdout


def test_sam_validate_translates_offline():
    """Without --lint, `sam validate` runs the SAM translator (region from samconfig)."""
    result = run([tool("sam"), "validate"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_samconfig_environments(environment):
    env = SAMCONFIG[environment]
    assert env["global"]["parameters"]["region"]  # `sam validate` needs it offline
    deploy = env["deploy"]["parameters"]
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["confirm_changeset"] is True and deploy["resolve_s3"] is True
    assert env["global"]["parameters"]["stack_name"] == env["delete"]["parameters"]["stack_name"]
    if ENVIRONMENTS[environment] == "template.yaml":
        assert env["global"]["parameters"]["language_extensions"] is True  # build + deploy
        assert 'StreamingMode="stream"' in deploy["parameter_overrides"]
    else:
        assert env["global"]["parameters"]["template_file"] == "endpoint/template.yaml"


def test_endpoint_stack_resources():
    """The template's shape; what each container and hosting mode creates is in
    test_endpoint_stack.py."""
    template = load_cfn(ENDPOINT_TEMPLATE)
    params = template["Parameters"]
    assert params["InstanceType"]["Default"] == "ml.g5.12xlarge"
    assert params["NumGpus"]["Default"] == 4
    assert params["HfModelId"]["Default"] == "OpenAssistant/pythia-12b-sft-v8-7k-steps"
    assert params["Container"]["Default"] == "tgi"
    assert params["HostingMode"]["AllowedValues"] == ["endpoint", "inference-component"]
    resources = template["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    assert {
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::InferenceComponent",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    } <= kinds
    container = resources["Model"]["Properties"]["PrimaryContainer"]
    assert container["Image"]["Fn::If"][:2] == ["HasImageUri", {"Ref": "ImageUri"}]
    assert "secretsmanager" in str(container["Environment"]["HF_TOKEN"])
    policy = resources["ConcurrencyScalingPolicy"]["Properties"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
        "PredefinedMetricType"
    ] == ("SageMakerVariantConcurrentRequestsPerModelHighResolution")
    metrics = set()
    for alarm in (r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"):
        props = alarm["Properties"]
        if "MetricName" in props:
            metrics.add(props["MetricName"])
        for metric in props.get("Metrics", []):
            if "MetricStat" in metric:
                metrics.add(metric["MetricStat"]["Metric"]["MetricName"])
    assert {
        "Invocation5XXErrors",
        "ModelLatency",
        "GPUMemoryUtilization",
        "NoCapacityInvocationFailures",
    } <= metrics


def test_endpoint_execution_role_is_narrow():
    role = load_cfn(ENDPOINT_TEMPLATE)["Resources"]["ExecutionRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert "ManagedPolicyArns" not in role  # no AmazonSageMakerFullAccess
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    wildcard = {s["Sid"] for s in statements if s["Resource"] == "*"}
    # only actions that have no resource-level permissions may use "*"
    assert wildcard == {"EcrAuth", "EndpointMetrics"}
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["EcrAuth"]["Action"] == "ecr:GetAuthorizationToken"
    assert by_sid["EndpointMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }


def test_gateway_nests_the_endpoint_template():
    app = load_cfn(TEMPLATE)["Resources"]["TgiEndpoint"]
    assert app["Type"] == "AWS::Serverless::Application"
    assert app["Properties"]["Location"] == "endpoint/template.yaml"
    child = set(load_cfn(ENDPOINT_TEMPLATE)["Parameters"])
    assert set(app["Properties"]["Parameters"]) <= child


def test_scale_to_zero_environment():
    overrides = SAMCONFIG["endpoint-zero"]["deploy"]["parameters"]["parameter_overrides"]
    assert 'HostingMode="inference-component"' in overrides
    assert 'MinCopies="0"' in overrides


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_samconfig_environments_pass_the_rules(environment):
    """Every environment deploys: its parameters pass the template's Rules."""
    overrides = SAMCONFIG[environment]["deploy"]["parameters"]["parameter_overrides"]
    values = dict(re.findall(r'(\w+)="([^"]*)"', overrides))
    template = load_cfn(ROOT / ENVIRONMENTS[environment])
    assert refused_by(template, values) == set()


@pytest.mark.parametrize("environment", ["endpoint-dev", "endpoint-prod", "endpoint-zero"])
def test_endpoint_environments_build(environment, tmp_path):
    """`sam build --config-env endpoint-…` (no code: it stages the template for deploy)."""
    build_dir = tmp_path / "build"
    result = run([tool("sam"), "build", "--config-env", environment, "--build-dir", str(build_dir)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert load_cfn(build_dir / "template.yaml")["Resources"]["Endpoint"]["Type"] == (
        "AWS::SageMaker::Endpoint"
    )
