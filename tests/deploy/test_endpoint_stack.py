"""endpoint/template.yaml as CloudFormation creates it for each container and hosting mode
(conditions decided by tests/deploy/cfn_eval.py): the container environments, the
scale-to-zero inference component, and the models-file entry it prints."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from llm_gateway.config.loader import parse_config
from llm_gateway.config.schema import ModelConfig
from tests.deploy.cfn_eval import Evaluator, resolve
from tests.deploy.conftest import ENDPOINT_TEMPLATE, load_cfn, rendered_endpoint

IC = "inference-component"
SECRET = "{{resolve:secretsmanager:hf-token}}"


def stack(**overrides: Any) -> dict[str, Any]:
    return resolve(ENDPOINT_TEMPLATE, **overrides)


def kinds(template: dict[str, Any]) -> dict[str, str]:
    return {name: body["Type"] for name, body in template["Resources"].items()}


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][name]["Properties"]


def env(template: dict[str, Any]) -> dict[str, Any]:
    return props(template, "Model")["PrimaryContainer"]["Environment"]


def variant(template: dict[str, Any]) -> dict[str, Any]:
    (only,) = props(template, "EndpointConfig")["ProductionVariants"]
    return only


def sub(text: str, values: dict[str, Any]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m.group(1)]), text)


def render(node: Any, params: dict[str, Any]) -> str:
    """Fn::Join / Fn::Sub of an output value, with the template's parameter values."""
    if isinstance(node, str):
        return node
    if "Fn::Join" in node:
        separator, items = node["Fn::Join"]
        return separator.join(render(item, params) for item in items)
    argument = node["Fn::Sub"]
    if isinstance(argument, str):
        return sub(argument, params)
    text, variables = argument
    return sub(text, {**params, **variables})


def model_entry(**overrides: Any) -> dict[str, Any]:
    evaluator = Evaluator(load_cfn(ENDPOINT_TEMPLATE), overrides)
    output = evaluator.resolved()["Outputs"]["GatewayModelEntry"]["Value"]
    text = render(output, evaluator.params)
    return json.loads(text)


# ------------------------------------------------------------------------ endpoint mode ----


def test_default_is_todays_tgi_endpoint():
    template = stack()
    assert sorted(kinds(template).values()) == sorted(
        [
            "AWS::IAM::Role",
            "AWS::SageMaker::Model",
            "AWS::SageMaker::EndpointConfig",
            "AWS::SageMaker::Endpoint",
            "AWS::ApplicationAutoScaling::ScalableTarget",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            "AWS::CloudWatch::Alarm",
            "AWS::CloudWatch::Alarm",
            "AWS::CloudWatch::Alarm",
        ]
    )
    assert env(template) == {
        "HF_MODEL_ID": "OpenAssistant/pythia-12b-sft-v8-7k-steps",
        "SM_NUM_GPUS": 4,
        "MAX_INPUT_TOKENS": 1024,
        "MAX_TOTAL_TOKENS": 2048,
    }
    config = variant(template)
    assert config["ModelName"] == {"Fn::GetAtt": ["Model", "ModelName"]}
    assert config["InitialVariantWeight"] == 1
    assert config["ContainerStartupHealthCheckTimeoutInSeconds"] == "1200"
    assert config["ModelDataDownloadTimeoutInSeconds"] == 1200
    assert "ManagedInstanceScaling" not in config
    assert "InferenceAmiVersion" not in config  # TGI's CUDA 12 images run on the default AMI
    assert "ExecutionRoleArn" not in props(template, "EndpointConfig")
    assert "InferenceComponentName" not in template["Outputs"]


def test_config_changes_keep_the_autoscaled_instance_count():
    """Every endpoint-config property is create-only: each change is an UpdateEndpoint with a
    new config, which without RetainAllVariantProperties resets the variant to
    InitialInstanceCount (and weight 1), undoing autoscaling."""
    assert props(stack(), "Endpoint")["RetainAllVariantProperties"] is True
    assert props(stack(HostingMode=IC), "Endpoint")["RetainAllVariantProperties"] is True


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("0.8.2", "MAX_INPUT_LENGTH", "MAX_INPUT_TOKENS"),
        ("1.4.5", "MAX_INPUT_LENGTH", "MAX_INPUT_TOKENS"),
        ("1.4", "MAX_INPUT_LENGTH", "MAX_INPUT_TOKENS"),
        ("2.2.0", "MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH"),
        ("3.3.6", "MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH"),
    ],
)
def test_tgi_gets_the_input_limit_under_the_name_its_version_reads(version, present, absent):
    """TGI 1.x ignores MAX_INPUT_TOKENS (its limit silently stays 1000/1024); 2.1+ refuses to
    start with both names set. Exactly one, the right one."""
    environment = env(stack(TgiVersion=version, MaxInputTokens=3000, MaxTotalTokens=4096))
    assert environment[present] == 3000
    assert absent not in environment


def test_tgi_options():
    environment = env(
        stack(Quantize="awq", HfModelRevision="main", HfTokenSecret="hf-token", NumGpus=2)
    )
    assert environment["HF_MODEL_QUANTIZE"] == "awq"
    assert environment["HF_MODEL_REVISION"] == "main"
    assert environment["SM_NUM_GPUS"] == 2
    assert environment["HF_TOKEN"] == {"Fn::Sub": "{{resolve:secretsmanager:${HfTokenSecret}}}"}
    assert environment["HUGGING_FACE_HUB_TOKEN"] == environment["HF_TOKEN"]


CONTAINER_ENV = {
    "lmi": {
        "HF_MODEL_ID": "Qwen/Qwen3-8B",
        "HF_REVISION": "main",
        "TENSOR_PARALLEL_DEGREE": 2,
        "OPTION_MAX_MODEL_LEN": 8192,
    },
    "vllm": {
        "SM_VLLM_MODEL": "Qwen/Qwen3-8B",
        "SM_VLLM_REVISION": "main",
        "SM_VLLM_TENSOR_PARALLEL_SIZE": 2,
        "SM_VLLM_MAX_MODEL_LEN": 8192,
    },
    "sglang": {
        "SM_SGLANG_MODEL_PATH": "Qwen/Qwen3-8B",
        "SM_SGLANG_REVISION": "main",
        "SM_SGLANG_TP": 2,
        "SM_SGLANG_CONTEXT_LENGTH": 8192,
    },
}
AMI = {
    "lmi": "al2-ami-sagemaker-inference-gpu-3-1",
    "vllm": "al2-ami-sagemaker-inference-gpu-3-1",
    "sglang": "al2023-ami-sagemaker-inference-gpu-4-1",
}


@pytest.mark.parametrize("mode", ["endpoint", IC])
@pytest.mark.parametrize("container", sorted(CONTAINER_ENV))
def test_each_container_gets_its_own_environment(container, mode):
    template = stack(
        Container=container,
        HostingMode=mode,
        HfModelId="Qwen/Qwen3-8B",
        HfModelRevision="main",
        NumGpus=2,
        MaxTotalTokens=8192,
        Quantize="awq",  # TGI only: not passed to the others
    )
    assert env(template) == CONTAINER_ENV[container]
    config = variant(template)
    assert config["InferenceAmiVersion"] == AMI[container]  # CUDA 13 images
    timeout = "1800"
    if mode == IC:
        startup = props(template, "InferenceComponent")["Specification"]["StartupParameters"]
        assert startup["ContainerStartupHealthCheckTimeoutInSeconds"] == timeout
    else:
        assert config["ContainerStartupHealthCheckTimeoutInSeconds"] == timeout
    with_token = env(stack(Container=container, HfTokenSecret="hf-token"))
    assert "HF_TOKEN" in with_token and "HUGGING_FACE_HUB_TOKEN" not in with_token


def test_ami_and_health_check_can_be_set():
    config = variant(
        stack(
            Container="vllm",
            InferenceAmiVersion="none",
            ContainerStartupHealthCheckTimeout=900,
        )
    )
    assert "InferenceAmiVersion" not in config
    assert config["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    config = variant(stack(InferenceAmiVersion="al2-ami-sagemaker-inference-gpu-3-1"))
    assert config["InferenceAmiVersion"] == "al2-ami-sagemaker-inference-gpu-3-1"


# -------------------------------------------------------------- inference-component mode ----


def test_inference_component_mode_resources():
    template = stack(
        HostingMode=IC,
        MaxCopies=2,
        MaxInstanceCount=4,
        CopyScaleInCooldownSeconds=1200,
        InstanceScaleInCooldownMinutes=30,
    )
    assert kinds(template) == {
        "ExecutionRole": "AWS::IAM::Role",
        "Model": "AWS::SageMaker::Model",
        "EndpointConfig": "AWS::SageMaker::EndpointConfig",
        "Endpoint": "AWS::SageMaker::Endpoint",
        "InferenceComponent": "AWS::SageMaker::InferenceComponent",
        "ComponentScalableTarget": "AWS::ApplicationAutoScaling::ScalableTarget",
        "ComponentTargetTracking": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "ScaleFromZeroPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "NoCapacityAlarm": "AWS::CloudWatch::Alarm",
        "Invocation5xxAlarm": "AWS::CloudWatch::Alarm",
        "ModelLatencyAlarm": "AWS::CloudWatch::Alarm",
    }
    # the endpoint: no model on the variant, instances managed down to zero, role on the config
    config = props(template, "EndpointConfig")
    assert config["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    production = variant(template)
    assert "ModelName" not in production
    assert "ContainerStartupHealthCheckTimeoutInSeconds" not in production
    assert production["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        "MaxInstanceCount": 4,
        # set explicitly: instances without a copy are released, 30 minutes after the last
        # endpoint operation
        "ScaleInPolicy": {"Strategy": "IDLE_RELEASE", "CooldownInMinutes": 30},
    }
    assert production["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert production["InitialInstanceCount"] == 1

    # the component: the model, its GPUs and memory per copy, created with one copy
    component = props(template, "InferenceComponent")
    name = {"Fn::Sub": "${EndpointName}-ic"}
    assert component["InferenceComponentName"] == name
    assert component["EndpointName"] == {"Fn::GetAtt": ["Endpoint", "EndpointName"]}
    assert component["VariantName"] == "AllTraffic"
    spec = component["Specification"]
    assert spec["ModelName"] == {"Fn::GetAtt": ["Model", "ModelName"]}
    assert spec["ComputeResourceRequirements"] == {
        "NumberOfAcceleratorDevicesRequired": 4,
        "MinMemoryRequiredInMb": 1024,
        "NumberOfCpuCoresRequired": 1,
    }
    assert spec["StartupParameters"]["ModelDataDownloadTimeoutInSeconds"] == 1200
    assert component["RuntimeConfig"] == {"CopyCount": 1}
    # the container environment is the same as in endpoint mode
    assert env(template) == env(stack())

    # copies scale between 0 and MaxCopies
    target = template["Resources"]["ComponentScalableTarget"]
    assert target["DependsOn"] == "InferenceComponent"
    assert target["Properties"] == {
        "ServiceNamespace": "sagemaker",
        "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
        "ResourceId": {"Fn::Sub": "inference-component/${EndpointName}-ic"},
        "MinCapacity": 0,
        "MaxCapacity": 2,
    }
    tracking = props(template, "ComponentTargetTracking")
    assert tracking["PolicyType"] == "TargetTrackingScaling"
    assert tracking["ScalingTargetId"] == {"Ref": "ComponentScalableTarget"}
    config = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
    )
    # the time between two copy removals, which is all ScaleInCooldown is (it adds nothing
    # before the first one, so none before 1 -> 0)
    assert config["ScaleInCooldown"] == 1200
    assert "DisableScaleIn" not in config

    # 0 -> 1: the step policy, fired by one no-capacity failure
    step = props(template, "ScaleFromZeroPolicy")
    assert step["PolicyType"] == "StepScaling"
    assert step["ScalingTargetId"] == {"Ref": "ComponentScalableTarget"}
    assert step["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Maximum",
        "Cooldown": 60,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    alarm = props(template, "NoCapacityAlarm")
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["MetricName"] == "NoCapacityInvocationFailures"
    assert alarm["Dimensions"] == [{"Name": "InferenceComponentName", "Value": name}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    assert (alarm["Statistic"], alarm["Period"]) == ("Maximum", 60)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "missing"
    assert alarm["AlarmActions"] == [{"Fn::GetAtt": ["ScaleFromZeroPolicy", "Arn"]}]

    # the component's own metrics in the alarms; outputs name it
    assert props(template, "Invocation5xxAlarm")["Dimensions"] == [
        {"Name": "InferenceComponentName", "Value": name}
    ]
    assert template["Outputs"]["InferenceComponentName"]["Value"] == name
    assert template["Outputs"]["InferenceComponentArn"]["Value"] == {
        "Fn::GetAtt": ["InferenceComponent", "InferenceComponentArn"]
    }


def test_component_copies_can_stay_warm_and_the_logs_are_allowed():
    template = stack(HostingMode=IC, MinCopies=1, InitialCopyCount=2, MemoryPerCopyMb=32768)
    assert props(template, "ComponentScalableTarget")["MinCapacity"] == 1
    assert props(template, "InferenceComponent")["RuntimeConfig"] == {"CopyCount": 2}
    spec = props(template, "InferenceComponent")["Specification"]
    assert spec["ComputeResourceRequirements"]["MinMemoryRequiredInMb"] == 32768
    role = props(template, "ExecutionRole")
    statements = {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}
    logs = [r["Fn::Sub"] for r in statements["EndpointLogs"]["Resource"]]
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    # the log group itself (CreateLogGroup, DescribeLogStreams) and its streams
    assert logs == [
        f"{group}/aws/sagemaker/Endpoints/${{EndpointName}}",
        f"{group}/aws/sagemaker/Endpoints/${{EndpointName}}:*",
        f"{group}/aws/sagemaker/InferenceComponents/${{EndpointName}}-ic",
        f"{group}/aws/sagemaker/InferenceComponents/${{EndpointName}}-ic:*",
    ]


@pytest.mark.parametrize(
    ("instance", "num_gpus", "gpus"),
    [("ml.g5.12xlarge", 4, 4), ("ml.g5.48xlarge", 2, 8), ("ml.g6.2xlarge", 1, 1)],
)
def test_gpu_memory_alarm_divides_by_the_instances_gpus(instance, num_gpus, gpus):
    """GPUMemoryUtilization sums over every GPU of the instance, whatever the model uses."""
    template = rendered_endpoint(InstanceType=instance, NumGpus=str(num_gpus))
    (per_gpu,) = [m for m in props(template, "GpuMemoryAlarm")["Metrics"] if m["Id"] == "perGpu"]
    assert per_gpu["Expression"] == f"gpumem / {gpus}"


def test_component_name_fits_sagemakers_limit():
    name = load_cfn(ENDPOINT_TEMPLATE)["Parameters"]["EndpointName"]
    assert name["MaxLength"] + len("-ic") <= 63


# --------------------------------------------------------------------- models-file entry ----


def test_model_entry_for_todays_tgi_endpoint_is_a_valid_gateway_config():
    entry = model_entry()
    assert entry == {
        "name": "oasst-pythia-12b",
        "endpoint": "oasst-pythia-12b-tgi",
        "model_id": "OpenAssistant/pythia-12b-sft-v8-7k-steps",
        "backend": "tgi",
        "template": "openassistant",
        "limits": {"max_input_tokens": 1024, "max_total_tokens": 2048},
    }
    if "backend" not in ModelConfig.model_fields:  # the backend setting is not in yet
        entry.pop("backend")
    config = parse_config({"models": [entry]}, "GatewayModelEntry")
    assert config.default.endpoint == "oasst-pythia-12b-tgi"


@pytest.mark.parametrize(
    ("container", "mode", "expected"),
    [
        ("vllm", "endpoint", {"backend": "openai"}),
        ("lmi", "endpoint", {"backend": "openai"}),
        ("sglang", "endpoint", {"backend": "openai", "chat_only": True}),
        (
            "tgi",
            IC,
            {
                "backend": "tgi",
                "template": "llama3",
                "inference_component": "llama-ic",
                "wake": {"wait_seconds": 600, "retry_seconds": 20},
            },
        ),
        (
            "sglang",
            IC,
            {
                "backend": "openai",
                "chat_only": True,
                "inference_component": "llama-ic",
                "wake": {"wait_seconds": 600, "retry_seconds": 20},
            },
        ),
    ],
)
def test_model_entry_matches_the_deployed_container(container, mode, expected):
    entry = model_entry(
        Container=container,
        HostingMode=mode,
        EndpointName="llama",
        GatewayModelName="llama-3-8b",
        HfModelId="meta-llama/Meta-Llama-3-8B-Instruct",
        PromptTemplate="llama3",
        MaxInputTokens=4000,
        MaxTotalTokens=8192,
    )
    assert entry == {
        "name": "llama-3-8b",
        "endpoint": "llama",
        "model_id": "meta-llama/Meta-Llama-3-8B-Instruct",
        "limits": {"max_input_tokens": 4000, "max_total_tokens": 8192},
        **expected,
    }
    known = set(ModelConfig.model_fields)
    if {"backend", "wake", "chat_only"} <= known:  # once the gateway has these settings
        parse_config({"models": [entry]}, "GatewayModelEntry")
