"""``llm-gateway keys`` against API Gateway, CloudFormation and DynamoDB as moto's server mode
serves them: real boto3 over HTTP (``AWS_ENDPOINT_URL``), as the CLI talks to AWS."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from llm_gateway.budgets.local import start_store_server
from llm_gateway.cli import main

STACK = "llm-gateway-test"
# The stack's budget table as template.yaml declares it (output BudgetsTableName).
BUDGET_STACK = {
    "Resources": {
        "BudgetsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            },
        }
    },
    "Outputs": {"BudgetsTableName": {"Value": {"Ref": "BudgetsTable"}}},
}


@pytest.fixture(scope="module")
def aws_url() -> Iterator[str]:
    url, stop = start_store_server()  # moto's server answers every AWS service
    yield url
    stop()


@pytest.fixture
def aws(aws_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh account behind ``aws_url``, selected for every boto3 client by the environment."""
    urllib.request.urlopen(urllib.request.Request(f"{aws_url}/moto-api/reset", method="POST"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_url)
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "GATEWAY_BUDGETS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    return aws_url


@pytest.fixture
def apigw(aws: str) -> Any:
    """A deployed-looking gateway: a REST API, a stage and the stack's two plans."""
    client = boto3.client("apigateway", region_name="us-east-1")
    api = client.create_rest_api(name=STACK)
    root = client.get_resources(restApiId=api["id"])["items"][0]["id"]
    client.put_method(
        restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE"
    )
    client.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK")
    client.create_deployment(restApiId=api["id"], stageName="dev")
    stage = [{"apiId": api["id"], "stage": "dev"}]
    for tier, rate in (("basic", 5), ("pro", 50)):
        client.create_usage_plan(
            name=f"{STACK}-{tier}",
            apiStages=stage,
            throttle={"rateLimit": rate, "burstLimit": rate * 2},
            quota={"limit": 1000, "period": "MONTH"},
        )
    # another stack's plan in the same account must be ignored
    client.create_usage_plan(name="other-stack-basic", apiStages=stage)
    return client


@pytest.fixture
def budget_table(apigw: Any) -> str:
    """Deploy the stack's budget table; its name, as the stack reports it."""
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(BUDGET_STACK))
    # a tier may carry default budgets (usage-plan tags) that `keys create` copies for the key
    api = apigw.get_rest_apis()["items"][0]["id"]
    apigw.create_usage_plan(
        name=f"{STACK}-metered",
        apiStages=[{"apiId": api, "stage": "dev"}],
        tags={"llm-gateway:tokens-per-day": "2000000"},
    )
    outputs = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    return str(outputs[0]["OutputValue"])


def stored_limits(table: str, key_id: str) -> dict[str, str]:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=table, Key={"pk": {"S": f"key#{key_id}"}, "sk": {"S": "limits"}}
    )
    return {k: next(iter(v.values())) for k, v in item.get("Item", {}).items()}


def plan_id(client: Any, name: str) -> str:
    return next(p["id"] for p in client.get_usage_plans()["items"] if p["name"] == name)


def keys(*args: str) -> list[str]:
    return ["keys", *args, "--stack", STACK, "--region", "us-east-1"]


def test_create_prints_the_key_once_and_attaches_it_to_the_plan(apigw, capsys):
    assert main(keys("create", "--name", "acme", "--plan", "pro")) == 0
    out = capsys.readouterr().out
    created = apigw.get_api_keys(nameQuery="acme", includeValues=True)["items"]
    assert len(created) == 1
    value = created[0]["value"]
    assert out.count(value) == 1 and "shown only now" in out
    assert created[0]["enabled"] is True
    assert created[0]["tags"] == {"llm-gateway:stack": STACK, "llm-gateway:plan": "pro"}
    attached = apigw.get_usage_plan_keys(usagePlanId=plan_id(apigw, f"{STACK}-pro"))["items"]
    assert [k["id"] for k in attached] == [created[0]["id"]]
    basic = apigw.get_usage_plan_keys(usagePlanId=plan_id(apigw, f"{STACK}-basic"))["items"]
    assert basic == []


def test_list_shows_names_and_ids_but_never_values(apigw, capsys):
    assert main(keys("create", "--name", "acme", "--plan", "pro")) == 0
    assert main(keys("create", "--name", "globex", "--plan", "basic")) == 0
    capsys.readouterr()
    assert main(keys("list")) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["NAME", "PLAN", "KEY"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["acme"][1] == "pro" and rows["globex"][1] == "basic"
    assert rows["acme"][3] == "yes"
    for item in apigw.get_api_keys(includeValues=True)["items"]:
        assert item["value"] not in out
        assert item["id"] in out
    assert main(keys("list", "--plan", "basic")) == 0
    assert "acme" not in capsys.readouterr().out


def test_revoke_detaches_and_deletes_the_key(apigw, capsys):
    assert main(keys("create", "--name", "acme", "--plan", "basic")) == 0
    assert main(keys("create", "--name", "globex", "--plan", "basic")) == 0
    assert main(keys("revoke", "--name", "acme")) == 0
    assert "Revoked API key 'acme'" in capsys.readouterr().out
    names = [k["name"] for k in apigw.get_api_keys()["items"]]
    assert names == ["globex"]
    attached = apigw.get_usage_plan_keys(usagePlanId=plan_id(apigw, f"{STACK}-basic"))["items"]
    assert [k["name"] for k in attached] == ["globex"]


def test_errors_are_reported_not_raised(apigw, capsys):
    assert main(keys("create", "--name", "acme", "--plan", "gold")) == 1
    err = capsys.readouterr().err
    assert f"no usage plan '{STACK}-gold'" in err and "basic, pro" in err
    assert apigw.get_api_keys()["items"] == []  # nothing half-created

    assert main(keys("create", "--name", "acme", "--plan", "basic")) == 0
    assert main(keys("create", "--name", "acme", "--plan", "pro")) == 1
    assert "already exists" in capsys.readouterr().err

    assert main(keys("revoke", "--name", "nobody")) == 1
    assert "no key named 'nobody'" in capsys.readouterr().err

    wrong_stack = ["keys", "list", "--stack", "missing-stack", "--region", "us-east-1"]
    assert main([*wrong_stack, "--plan", "basic"]) == 1
    assert "tiers of stack missing-stack: none" in capsys.readouterr().err


def test_revoke_matches_the_stack_name_exactly(apigw, capsys):
    """Stack `gw` must not touch the plans (or keys) of a stack named `gw-eu`."""
    api = apigw.get_rest_apis()["items"][0]["id"]
    other = apigw.create_usage_plan(
        name=f"{STACK}-eu-basic", apiStages=[{"apiId": api, "stage": "dev"}]
    )
    foreign = apigw.create_api_key(name="acme", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=other["id"], keyId=foreign["id"], keyType="API_KEY")
    assert main(keys("create", "--name", "acme", "--plan", "basic")) == 0
    capsys.readouterr()

    assert main(keys("list")) == 0
    assert "eu-basic" not in capsys.readouterr().out
    assert main(keys("revoke", "--name", "acme")) == 0
    assert capsys.readouterr().out.count("Revoked") == 1
    left = [k["id"] for k in apigw.get_api_keys()["items"]]
    assert left == [foreign["id"]]


def key_id(client: Any, name: str) -> str:
    return next(k["id"] for k in client.get_api_keys()["items"] if k["name"] == name)


def test_create_copies_the_tiers_budgets_and_flags_win(apigw, budget_table, capsys):
    args = keys("create", "--name", "acme", "--plan", "metered", "--tokens-per-minute", "900")
    assert main(args) == 0
    out = capsys.readouterr().out
    acme = key_id(apigw, "acme")
    assert f"Budgets of key id {acme} in table {budget_table}" in out
    assert "tokens per minute 900, tokens per day 2000000" in out
    stored = stored_limits(budget_table, acme)
    assert stored["tokens_per_day"] == "2000000" and stored["tokens_per_minute"] == "900"
    assert stored["key_name"] == "acme"


def test_create_without_budgets_needs_no_table(apigw, capsys):
    assert main(keys("create", "--name", "acme", "--plan", "basic")) == 0
    assert "Budgets" not in capsys.readouterr().out


def test_create_with_budgets_but_no_table_creates_nothing(apigw, capsys):
    """The stack check happens before the key exists: no half-onboarded partner."""
    assert main(keys("create", "--name", "acme", "--plan", "pro", "--tokens-per-day", "9")) == 1
    err = capsys.readouterr().err
    assert f"no budget table for stack {STACK}" in err and "--table" in err
    assert apigw.get_api_keys()["items"] == []


def test_update_merges_limits_by_name_or_id(apigw, budget_table, capsys):
    assert main(keys("create", "--name", "acme", "--plan", "metered")) == 0
    acme = key_id(apigw, "acme")
    assert main(keys("update", "--name", "acme", "--requests-per-minute", "30")) == 0
    stored = stored_limits(budget_table, acme)
    assert (stored["tokens_per_day"], stored["requests_per_minute"]) == ("2000000", "30")
    # a local key id (GATEWAY_API_KEYS name:key) is addressed with --id and --table
    args = ["keys", "update", "--id", "local-dev", "--table", budget_table, "--tokens-per-day", "5"]
    assert main(args) == 0
    assert stored_limits(budget_table, "local-dev")["tokens_per_day"] == "5"
    capsys.readouterr()
    assert main(keys("update", "--name", "acme")) == 1
    assert "nothing to update" in capsys.readouterr().err
    assert main(keys("update", "--name", "nobody", "--tokens-per-day", "5")) == 1
    assert "no key named 'nobody'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(keys("update", "--name", "acme", "--tokens-per-day", "0"))
