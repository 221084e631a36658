"""``llm-gateway keys`` against API Gateway's control plane (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llm_gateway.cli import main

STACK = "llm-gateway-test"


@pytest.fixture
def apigw(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A deployed-looking gateway: a REST API, a stage and the stack's two plans."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
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
        yield client


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
