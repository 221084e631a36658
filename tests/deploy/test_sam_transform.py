"""template.yaml as CloudFormation sees it after its transforms, in both streaming modes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from llm_gateway.config.loader import parse_config
from tests.deploy.cfn_eval import Evaluator
from tests.deploy.conftest import TEMPLATE, load_cfn, transformed

STREAM_URI = re.compile(
    r"^arn:aws:apigateway:\$\{AWS::Region\}:lambda:path/2021-11-15/functions/"
    r"\$\{GatewayFunction\.Arn\}/response-streaming-invocations$"
)
BUFFERED_URI = re.compile(
    r"^arn:aws:apigateway:\$\{AWS::Region\}:lambda:path/2015-03-31/functions/"
    r"\$\{GatewayFunction\.Arn\}/invocations$"
)
ACCOUNT, REGION = "123456789012", "us-east-1"  # scripts/sam_transform.py's pseudo parameters
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch"}


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def api_body(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["GatewayApi"]["Properties"]["Body"]


def operations(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    ops = {}
    for path, item in api_body(template)["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS or method == "x-amazon-apigateway-any-method":
                ops[(path, "ANY" if method.startswith("x-") else method.upper())] = op
    return ops


def function(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["GatewayFunction"]["Properties"]


def uri(op: dict[str, Any]) -> str:
    value = op["x-amazon-apigateway-integration"]["uri"]
    return value["Fn::Sub"] if isinstance(value, dict) else value


OPEN_STATIC = {("/ui", "GET"), ("/ui/{asset+}", "GET")}  # the chat page: static, no key


def test_routes_proxy_everything_and_only_health_and_preflights_are_open(stream_template):
    ops = operations(stream_template)
    assert set(ops) == {
        ("/health", "GET"),
        ("/", "ANY"),
        ("/{proxy+}", "ANY"),
        ("/", "OPTIONS"),
        ("/{proxy+}", "OPTIONS"),
        *OPEN_STATIC,
    }
    for (path, method), op in ops.items():
        integration = op["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy" and integration["httpMethod"] == "POST"
        schemes = {name for requirement in op["security"] for name in requirement}
        if path == "/health" or method == "OPTIONS" or (path, method) in OPEN_STATIC:
            assert schemes <= {"NONE"}, (path, method, op["security"])
        else:  # a key is required, through the authorizer
            assert schemes == {"KeyAuthorizer", "api_key"}, (path, method)


def test_stream_mode_every_route_streams(stream_template):
    ops = operations(stream_template)
    for key, op in ops.items():
        integration = op["x-amazon-apigateway-integration"]
        assert STREAM_URI.match(uri(op)), (key, uri(op))
        assert integration["responseTransferMode"] == "STREAM", key
        assert integration["timeoutInMillis"] == 900_000, key


def test_stream_mode_function_runs_the_web_adapter(stream_template):
    props = function(stream_template)
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "run.sh"
    assert props["Timeout"] == 900
    env = props["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert env["AWS_LWA_PORT"] == "8080"
    assert env["AWS_LWA_READINESS_CHECK_MIN_UNHEALTHY_STATUS"] == "400"  # LWA 0.9.x
    assert env["AWS_LWA_READINESS_CHECK_HEALTHY_STATUS"] == "200-399"  # LWA 1.x
    assert "GATEWAY_API_KEYS" not in env  # API Gateway checks keys
    layers = props["Layers"]
    assert layers[0] == {"Ref": next(iter(resources(stream_template, "AWS::Lambda::LayerVersion")))}
    assert layers[1] == "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerX86:25"
    arm = function(transformed(Architecture="arm64", WebAdapterLayerVersion="26"))
    assert arm["Layers"][1] == (
        "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerArm64:26"
    )


def test_buffered_mode_uses_mangum_behind_buffered_integrations(buffered_template):
    for key, op in operations(buffered_template).items():
        integration = op["x-amazon-apigateway-integration"]
        assert BUFFERED_URI.match(uri(op)), (key, uri(op))
        assert "responseTransferMode" not in integration, key
        assert integration["timeoutInMillis"] == 29_000, key
    props = function(buffered_template)
    assert props["Handler"] == "llm_gateway.handler.handler"
    assert props["Timeout"] == 29
    assert not any(k.startswith("AWS_LWA") for k in props["Environment"]["Variables"])
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in props["Environment"]["Variables"]
    assert len(props["Layers"]) == 1  # the dependency layer only, no Web Adapter


def test_one_function_serves_the_api_and_api_gateway_may_invoke_it(stream_template):
    functions = resources(stream_template, "AWS::Lambda::Function")
    assert set(functions) == {"GatewayFunction", "AuthorizerFunction"}
    permissions = resources(stream_template, "AWS::Lambda::Permission")
    targets = {
        name["Ref"] if "Ref" in name else name["Fn::GetAtt"][0]
        for name in (p["Properties"]["FunctionName"] for p in permissions.values())
    }
    assert targets == {"GatewayFunction", "AuthorizerFunction"}
    for permission in permissions.values():
        assert permission["Properties"]["Action"] == "lambda:InvokeFunction"
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_regional_api_with_authorizer_key_source(stream_template):
    props = stream_template["Resources"]["GatewayApi"]["Properties"]
    assert props["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert props["ApiKeySourceType"] == "AUTHORIZER"
    schemes = api_body(stream_template)["components"]["securitySchemes"]
    authorizer = schemes["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    # caching off and no identity sources, so either header alone reaches the authorizer
    assert authorizer["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in authorizer
    assert authorizer["authorizerUri"]["Fn::Sub"][1]["__FunctionArn__"] == {
        "Fn::GetAtt": ["AuthorizerFunction", "Arn"]
    }
    auth_fn = stream_template["Resources"]["AuthorizerFunction"]["Properties"]
    assert auth_fn["Handler"] == "app.handler" and auth_fn["MemorySize"] == 256


def test_usage_plan_tiers(stream_template):
    plans = resources(stream_template, "AWS::ApiGateway::UsagePlan")
    assert len(plans) >= 2
    names = {p["Properties"]["UsagePlanName"] for p in plans.values()}
    assert names == {"llm-gateway-test-basic", "llm-gateway-test-pro"}
    stage = next(iter(resources(stream_template, "AWS::ApiGateway::Stage")))
    for plan in plans.values():
        props = plan["Properties"]
        assert props["ApiStages"] == [{"ApiId": {"Ref": "GatewayApi"}, "Stage": {"Ref": stage}}]
        assert props["Throttle"]["RateLimit"] > 0 and props["Throttle"]["BurstLimit"] > 0
        assert props["Quota"]["Limit"] > 0 and props["Quota"]["Period"] == "MONTH"
    basic, pro = plans["BasicUsagePlan"]["Properties"], plans["ProUsagePlan"]["Properties"]
    assert pro["Throttle"]["RateLimit"] > basic["Throttle"]["RateLimit"]
    assert pro["Quota"]["Limit"] > basic["Quota"]["Limit"]
    # no key is created by the stack itself: partners get theirs from `llm-gateway keys`
    assert not resources(stream_template, "AWS::ApiGateway::ApiKey")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("UNAUTHORIZED", 401),
        ("INVALID_API_KEY", 403),
        ("ACCESS_DENIED", 403),
        ("MISSING_AUTHENTICATION_TOKEN", 404),
        ("THROTTLED", 429),
        ("QUOTA_EXCEEDED", 429),
        ("DEFAULT_4XX", None),
        ("DEFAULT_5XX", None),
    ],
)
def test_gateway_responses_are_json_with_error_and_cors(stream_template, kind, status):
    response = api_body(stream_template)["x-amazon-apigateway-gateway-responses"][kind]
    if status is not None:
        assert response["statusCode"] == str(status)
    template = response["responseTemplates"]["application/json"]
    # $context.error.messageString is API Gateway's message as a quoted JSON string
    body = json.loads(template.replace("$context.error.messageString", '"Forbidden"'))
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["error_type"], str)
    headers = response["responseParameters"]
    assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
    restricted = transformed(CorsAllowOrigins="https://app.example.com")
    headers = api_body(restricted)["x-amazon-apigateway-gateway-responses"][kind][
        "responseParameters"
    ]
    assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == (
        "'https://app.example.com'"
    )
    assert headers["gatewayresponse.header.Vary"] == "'Origin'"


@pytest.mark.parametrize("kind", ["UNAUTHORIZED", "INVALID_API_KEY", "THROTTLED", "DEFAULT_4XX"])
def test_gateway_responses_never_echo_an_unchecked_origin(kind):
    """With a list of origins API Gateway's own errors must not reflect whatever Origin the
    caller sent (method.request.header.Origin): a gateway response cannot check it against the
    list, so it names the first allowed origin; with CORS off it names none."""
    listed = transformed(CorsAllowOrigins="https://a.example.com,https://b.example.com")
    headers = api_body(listed)["x-amazon-apigateway-gateway-responses"][kind]["responseParameters"]
    assert "method.request.header.Origin" not in json.dumps(headers)
    assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == (
        "'https://a.example.com'"
    )
    off = transformed(CorsAllowOrigins="")
    headers = api_body(off)["x-amazon-apigateway-gateway-responses"][kind]["responseParameters"]
    assert "gatewayresponse.header.Access-Control-Allow-Origin" not in headers


def created(template: dict[str, Any], resource: dict[str, Any]) -> bool:
    """Whether CloudFormation creates the resource (its condition, decided)."""
    if "Condition" not in resource:
        return True
    return Evaluator(template, {}).condition(resource["Condition"])


def gateway_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements = []
    role = template["Resources"]["GatewayFunctionRole"]["Properties"]
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": "GatewayFunctionRole"} in policy["Properties"]["Roles"]:
            if created(template, policy):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


BUDGET_ACTIONS = {"dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"}


def sagemaker_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in gateway_role_statements(template)
        if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_iam_invokes_only_the_configured_endpoints(stream_template):
    template = transformed(EndpointNames="tgi-a,tgi-b")
    every = {a for s in gateway_role_statements(template) for a in as_list(s["Action"])}
    assert every == {"sagemaker:InvokeEndpoint"} | BUDGET_ACTIONS
    statements = sagemaker_statements(template)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {"sagemaker:InvokeEndpoint"}
    arns = sorted(r for s in statements for r in as_list(s["Resource"]))
    assert arns == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/tgi-a",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/tgi-b",
    ]
    assert all(s["Effect"] == "Allow" for s in statements)
    role = template["Resources"]["GatewayFunctionRole"]["Properties"]
    assert set(role["ManagedPolicyArns"]) <= {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    }
    # the default: the one endpoint of the default config
    default_arns = [
        r for s in sagemaker_statements(stream_template) for r in as_list(s["Resource"])
    ]
    assert default_arns == [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/oasst-pythia-12b-tgi"]


def test_iam_reads_only_its_own_config_parameter():
    template = transformed(ModelsConfigSsmParameter="/llm-gateway/models")
    statements = gateway_role_statements(template)
    ssm = [s for s in statements if "ssm:GetParameter" in as_list(s["Action"])]
    assert len(ssm) == 1 and as_list(ssm[0]["Action"]) == ["ssm:GetParameter"]
    assert ssm[0]["Resource"] == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/llm-gateway/models"
    assert {a for s in statements for a in as_list(s["Action"])} == {
        "ssm:GetParameter",
        "sagemaker:InvokeEndpoint",
        *BUDGET_ACTIONS,
    }
    env = function(template)["Environment"]["Variables"]
    assert env["GATEWAY_CONFIG_SSM"] == "/llm-gateway/models"
    assert "GATEWAY_CONFIG_JSON" not in env


def test_authorizer_has_no_permissions_beyond_logs(stream_template):
    role = stream_template["Resources"]["AuthorizerFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    assert not role.get("Policies")


def test_default_models_config_is_a_valid_gateway_config(stream_template):
    env = function(stream_template)["Environment"]["Variables"]
    config = parse_config(json.loads(env["GATEWAY_CONFIG_JSON"]), "template.yaml")
    assert config.default.name == "oasst-pythia-12b"
    assert config.default.endpoint == "oasst-pythia-12b-tgi"
    inline = '{"models": [{"name": "m", "endpoint": "e"}]}'
    assert (
        function(transformed(ModelsConfigJson=inline))["Environment"]["Variables"][
            "GATEWAY_CONFIG_JSON"
        ]
        == inline
    )


def test_nested_endpoint_only_when_asked(stream_template):
    # the rendering decides conditions as CloudFormation will: no nested stack by default
    assert "TgiEndpoint" not in stream_template["Resources"]
    assert load_cfn(TEMPLATE)["Resources"]["TgiEndpoint"]["Condition"] == "DeployEndpointStack"
    template = transformed(DeployEndpoint="true", EndpointNames="my-tgi,other")
    stack = template["Resources"]["TgiEndpoint"]
    assert stack["Type"] == "AWS::CloudFormation::Stack"
    assert stack["Properties"]["Parameters"]["EndpointName"] == "my-tgi"


def test_logs_are_retained_and_outputs_are_there(stream_template):
    groups = resources(stream_template, "AWS::Logs::LogGroup")
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}
    for name in ("GatewayFunction", "AuthorizerFunction"):
        log_group = stream_template["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]
        assert log_group["Ref"] in groups
    outputs = stream_template["Outputs"]
    assert {"ApiUrl", "BasicUsagePlanId", "ProUsagePlanId", "ApiStreamingMode"} <= set(outputs)
    assert outputs["ApiStreamingMode"]["Value"] == "stream"
    # SAM CLI's local resolver renames outputs named like parameters (or crashes on lists)
    assert not set(outputs) & set(stream_template["Parameters"])
    alarms = resources(stream_template, "AWS::CloudWatch::Alarm")
    assert {"FunctionErrorsAlarm", "FunctionThrottlesAlarm", "Api5xxAlarm"} <= set(alarms)


def test_dashboard_and_alarms_watch_the_gateways_own_metrics(stream_template):
    resources = stream_template["Resources"]
    error_rate = resources["ErrorRateAlarm"]["Properties"]
    assert (error_rate["MetricName"], error_rate["Statistic"]) == ("ErrorRate", "Average")
    assert error_rate["Dimensions"] == [{"Name": "service", "Value": "llm-gateway"}]
    # the language-extensions pass resolves parameter references to their values
    assert error_rate["Namespace"] in ({"Ref": "MetricsNamespace"}, "LLMGateway")
    assert error_rate["Threshold"] in ({"Ref": "ErrorRateAlarmPercent"}, 5)
    ttft = resources["TimeToFirstTokenAlarm"]["Properties"]
    assert (ttft["MetricName"], ttft["ExtendedStatistic"]) == ("TimeToFirstToken", "p95")
    assert ttft["Threshold"] in ({"Ref": "TtftP95AlarmMs"}, 5000)
    topic = "arn:aws:sns:us-east-1:123456789012:llm-gateway-alarms"
    with_topic = transformed(AlarmTopicArn=topic)["Resources"]
    for name in (
        "ErrorRateAlarm",
        "TimeToFirstTokenAlarm",
        "FunctionThrottlesAlarm",
        "Api5xxAlarm",
    ):
        assert with_topic[name]["Properties"]["AlarmActions"] == [topic], name
        assert "AlarmActions" not in resources[name]["Properties"]  # no topic, no actions
    body = resources["Dashboard"]["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # still an Fn::Sub: fill the names in
        body, _ = body["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(rendered)["widgets"]  # valid JSON once substituted
    titles = " | ".join(w["properties"]["title"] for w in widgets)
    for needle in (
        "Requests by model",
        "Errors by kind",
        "Latency p50 / p95",
        "Time to first token",
        "Tokens per second",
        "GPU",
    ):
        assert needle in titles
    assert "SEARCH('{LLMGateway,model,service}" in rendered  # per model, whatever the config


def test_iam_invokes_the_inference_components():
    """An inference component is invoked through its endpoint: the policy names the endpoint
    ARN and the component ARN, and nothing else."""
    template = transformed(EndpointNames="llama", InferenceComponentNames="llama-ic,other-ic")
    arns = sorted(r for s in sagemaker_statements(template) for r in as_list(s["Resource"]))
    assert arns == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/llama",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/llama-ic",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/other-ic",
    ]
    assert {a for s in sagemaker_statements(template) for a in as_list(s["Action"])} == {
        "sagemaker:InvokeEndpoint"  # covers InvokeEndpointWithResponseStream
    }
    assert template["Outputs"]["InvokableInferenceComponents"]["Value"] in (
        "llama-ic,other-ic",  # the language-extensions pass resolves the Join
        {"Fn::Join": [",", ["llama-ic", "other-ic"]]},
    )
    # the generated one-model config calls the first component
    env = function(template)["Environment"]["Variables"]
    config = parse_config(json.loads(env["GATEWAY_CONFIG_JSON"]), "template.yaml")
    assert config.default.endpoint == "llama"
    assert config.default.inference_component == "llama-ic"


def test_budget_table(stream_template):
    table = stream_template["Resources"]["BudgetsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in props
    assert sorted(props["KeySchema"], key=lambda k: k["KeyType"]) == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "TableName" not in props  # a retained table must not block a redeploy by its name
    env = function(stream_template)["Environment"]["Variables"]
    assert env["GATEWAY_BUDGETS_TABLE"] == {"Ref": "BudgetsTable"}
    assert stream_template["Outputs"]["BudgetsTableName"]["Value"] == {"Ref": "BudgetsTable"}
    # the function may only update, read and query that table
    dynamo = [
        s
        for s in gateway_role_statements(stream_template)
        if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    assert len(dynamo) == 1
    assert set(as_list(dynamo[0]["Action"])) == BUDGET_ACTIONS
    assert dynamo[0]["Resource"] == {"Fn::GetAtt": ["BudgetsTable", "Arn"]}


def test_dashboard_has_budget_and_warming_widgets(stream_template):
    body = stream_template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        body, _ = body["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "LLMGateway", body))["widgets"]
    by_title = {w["properties"]["title"]: w["properties"] for w in widgets}

    def metric_names(title_part: str) -> set[str]:
        (props,) = [p for t, p in by_title.items() if title_part in t]
        names, previous = set(), None
        for row in props["metrics"]:
            name = row[1] if row[1] != "." else previous
            previous = name
            names.add(name)
            assert row[0] in ("LLMGateway", ".")  # the gateway's namespace
            assert row[2:4] in (["service", "llm-gateway"], [".", "."])  # same dimensions
        return names

    assert metric_names("budget") == {
        "BudgetRejections",
        "ReservedTokens",
        "RefundedTokens",
        "BudgetStoreErrors",
    }
    (warming,) = [p for t, p in by_title.items() if "warming" in t]
    searches = [row[0]["expression"] for row in warming["metrics"]]
    assert all(e.startswith("SEARCH('{LLMGateway,model,service} ") for e in searches)  # by model
    assert {re.search(r'MetricName="(\w+)"', e).group(1) for e in searches} == {
        "WarmingWaits",
        "WarmingWaitSeconds",
        "Fallbacks",
    }
    # no two widgets overlap on the grid
    cells = set()
    for widget in widgets:
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells, widget["properties"]["title"]
                cells.add((x, y))


def test_tracing_mode_description_says_passthrough_gets_xray_permissions(stream_template):
    """SAM attaches AWSXrayWriteOnlyAccess for PassThrough too, not only for Active."""
    description = load_cfn(TEMPLATE)["Parameters"]["TracingMode"]["Description"]
    assert "PassThrough" in description and "both" in description
    for mode in ("PassThrough", "Active"):
        role = transformed(TracingMode=mode)["Resources"]["GatewayFunctionRole"]["Properties"]
        assert "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess" in role["ManagedPolicyArns"]


def test_nested_endpoint_passes_hosting_mode_and_container():
    template = transformed(
        DeployEndpoint="true",
        EndpointHostingMode="inference-component",
        EndpointContainer="vllm",
    )
    params = template["Resources"]["TgiEndpoint"]["Properties"]["Parameters"]
    assert params["HostingMode"] == "inference-component"
    assert params["Container"] == "vllm"
    assert (
        "HostingMode"
        not in transformed(DeployEndpoint="true")["Resources"]["TgiEndpoint"]["Properties"][
            "Parameters"
        ]
    )


def test_the_rendering_keeps_unfinished_subs_and_answers_nested_outputs(stream_template):
    """SAM CLI's own expander turns ``!Sub https://${GatewayApi}…`` into a string with a literal
    ``${GatewayApi}`` (cfn-lint E1029) and pastes a ``Ref`` into the dashboard as Python text;
    scripts/sam_transform.py keeps what it cannot finish as an Fn::Sub."""
    assert stream_template["Outputs"]["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${GatewayApi}.execute-api.us-east-1.amazonaws.com/dev"
    }
    body = stream_template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    text, variables = body["Fn::Sub"]
    assert variables == {"Function": {"Ref": "GatewayFunction"}}
    assert "{'Ref'" not in text and "${Function}" in text and "${AWS::Region}" not in text
    # !GetAtt TgiEndpoint.Outputs.X: the child's output rendered with what the parent passes
    nested = transformed(DeployEndpoint="true", EndpointNames="my-tgi", DefaultModelName="m")
    config = json.loads(function(nested)["Environment"]["Variables"]["GATEWAY_CONFIG_JSON"])
    assert config["models"][0]["name"] == "m"  # GatewayModelName, passed to the child
    assert config["models"][0]["endpoint"] == "my-tgi"
