"""``llm-gateway usage`` and ``budgets create-table`` against moto's server over HTTP."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
import uuid

import boto3
import pytest

from llm_gateway.budgets import Budgets, BudgetsConfig
from llm_gateway.budgets.local import local_client
from llm_gateway.budgets.usage import hourly_price, price_table
from llm_gateway.cli import main

# 2026-11-29 12:00 UTC and the day after
DAY1, DAY2 = 1_796_040_000 - 86400, 1_796_040_000


@pytest.fixture
def aws_url(store_server: str) -> str:
    return store_server  # the suite's one store server (conftest)


@pytest.fixture
def table(aws_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A table made by ``budgets create-table`` through AWS_ENDPOINT_URL_DYNAMODB, with usage."""
    urllib.request.urlopen(urllib.request.Request(f"{aws_url}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", aws_url)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "GATEWAY_BUDGETS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    name = f"usage-{uuid.uuid4().hex[:6]}"
    assert main(["budgets", "create-table", "--table", name]) == 0
    ttl = local_client(aws_url).describe_time_to_live(TableName=name)
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    for when, key_id, prompt, generated in (
        (DAY1, "acme", 300, 100),
        (DAY1, "globex", 100, 300),  # same weighted tokens as acme at weight 1
        (DAY1, "acme", 0, 0),
        (DAY2, "acme", 10, 30),
    ):
        budgets = Budgets(
            BudgetsConfig(table=name), client=local_client(aws_url), clock=lambda w=when: w
        )
        res = budgets.reserve(key_id, "r", prompt + generated, stream=False)
        budgets.settle(
            res,
            input_tokens=prompt,
            generated_tokens=generated,
            failed_before_generating=not (prompt or generated),
        )
    return name


def usage(table: str, *args: str) -> list[str]:
    return ["usage", "--table", table, "--from", "2026-11-29", "--to", "2026-11-30", *args]


def test_usage_json_with_apportioned_cost(table, capsys):
    assert main(usage(table, "--format", "json", "--endpoint-cost-per-hour", "1.5")) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {(r["day"], r["key_id"]): r for r in rows}
    acme = by[("2026-11-29", "acme")]
    assert (acme["requests"], acme["failed"], acme["input_tokens"], acme["generated_tokens"]) == (
        2,
        1,
        300,
        100,
    )
    assert acme["share"] == 0.5 and acme["cost"] == 18.0  # 1.5 $/h x 24 h / 2
    assert by[("2026-11-30", "acme")]["cost"] == 36.0  # alone that day
    assert sum(r["cost"] for r in rows if r["day"] == "2026-11-29") == 36.0


def test_usage_generated_weight_and_instance_price(table, capsys):
    args = usage(table, "--format", "csv", "--instance-type", "ml.g5.12xlarge")
    assert main([*args, "--generated-weight", "3", "--instances", "2"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    day1 = {r["key_id"]: r for r in rows if r["day"] == "2026-11-29"}
    # acme 300 + 3*100 = 600, globex 100 + 3*300 = 1000
    assert float(day1["acme"]["share"]) == pytest.approx(600 / 1600)
    assert float(day1["globex"]["cost"]) == pytest.approx(7.09 * 2 * 24 * 1000 / 1600, abs=1e-3)


def test_usage_table_and_period(table, capsys):
    assert main(["usage", "--table", table, "--from", "2026-11-30", "--to", "2026-11-30"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["DAY", "KEY", "ID"] and "COST" not in lines[0]
    assert len(lines) == 2 and lines[1].split()[:2] == ["2026-11-30", "acme"]
    assert main(["usage", "--table", table, "--from", "2020-01-01", "--to", "2020-01-02"]) == 0
    assert "(no usage recorded in this period)" in capsys.readouterr().out


def test_usage_errors(table, capsys):
    assert main(usage(table, "--instance-type", "ml.nope")) == 2
    assert "no price for 'ml.nope'" in capsys.readouterr().err
    assert main(["usage", "--table", table, "--from", "2026-12-01", "--to", "2026-11-01"]) == 2
    assert "is after" in capsys.readouterr().err
    assert main(["usage", "--table", table, "--from", "yesterday"]) == 2
    with pytest.raises(SystemExit):
        main(usage(table, "--instance-type", "ml.g5.xlarge", "--endpoint-cost-per-hour", "1"))


def test_usage_by_stack_names_the_keys(table, aws_url, capsys, monkeypatch):
    """--stack finds the table in the stack's outputs and the key names in API Gateway."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_url)
    apigw = boto3.client("apigateway")
    key = apigw.create_api_key(name="Acme Corp", enabled=True)
    cfn = boto3.client("cloudformation")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BudgetsTableName": {"Value": table}},
    }
    cfn.create_stack(StackName="gw", TemplateBody=json.dumps(template))
    # usage rows are keyed by API key id on AWS: rename acme's rows to the real id
    client = local_client(aws_url)
    for item in client.scan(TableName=table)["Items"]:
        if item["pk"]["S"] == "key#acme" and item["sk"]["S"].startswith("day#"):
            item["pk"] = {"S": f"key#{key['id']}"}
            client.put_item(TableName=table, Item=item)
    args = ["usage", "--stack", "gw", "--from", "2026-11-30", "--to", "2026-11-30", "--format"]
    assert main([*args, "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["key_id"], r["key_name"]) for r in rows} == {("acme", ""), (key["id"], "Acme Corp")}


def test_price_table_names_its_source_and_date():
    table = price_table()
    assert "fmbench" in table.source and table.recorded == "2026-11-30"
    assert hourly_price("ml.g5.12xlarge") == 7.09
