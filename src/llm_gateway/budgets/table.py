"""The budget table: its schema, the boto3 client the gateway uses, limit overrides, usage rows.

The table is the stack's (``template.yaml``): partition key ``pk`` (S), sort key ``sk`` (S),
on-demand billing, TTL on ``expires_at``. Item layout: :mod:`llm_gateway.budgets.windows`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llm_gateway.budgets.windows import Subject, day_sk, pk
from llm_gateway.config.budgets import LIMIT_FIELDS, BudgetLimits

LIMITS_SK = "limits"
TTL_ATTRIBUTE = "expires_at"


def make_client(*, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A DynamoDB client for the request path (``AWS_ENDPOINT_URL_DYNAMODB`` is honoured by boto3).

    Short timeouts and one retry: the reservation sits in front of every generation, and a store
    that does not answer in about a second is treated as down (``on_store_error``) rather than
    holding the request. The pool is as large as the executor that calls it may be.
    """
    import boto3
    from botocore.config import Config

    # No automatic retry: a conditional ``ADD`` whose answer timed out may have been applied,
    # and botocore would apply it again (a slow store then charged a request twice). A failed
    # call is a store error, handled by ``on_store_error``.
    config = Config(
        connect_timeout=1,
        read_timeout=10,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=64,
    )
    session = boto3.session.Session(region_name=region)
    return session.client("dynamodb", endpoint_url=endpoint_url, config=config)


def create_table(client: Any, name: str) -> None:
    """Create the table as the stack does (on-demand, TTL on ``expires_at``) and wait for it."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def key(key_id: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk(key_id)}, "sk": {"S": sk}}


def item_key(subject: Subject, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": subject.pk}, "sk": {"S": sk}}


def num(value: int) -> dict[str, str]:
    return {"N": str(value)}


def read_int(item: dict[str, Any] | None, name: str) -> int:
    if not item or name not in item:
        return 0
    return int(item[name]["N"])


# ------------------------------------------------------------------ limit overrides ------


def _limits(item: dict[str, Any] | None) -> BudgetLimits | None:
    if not item:
        return None
    return BudgetLimits(**{f: read_int(item, f) for f in LIMIT_FIELDS if f in item})


def read_limits(client: Any, table: str, key_id: str) -> BudgetLimits | None:
    """The override stored for a key, or None."""
    return _limits(client.get_item(TableName=table, Key=key(key_id, LIMITS_SK)).get("Item"))


def read_overrides(
    client: Any, table: str, subjects: list[Subject]
) -> dict[Subject, BudgetLimits | None]:
    """The overrides stored for several subjects, in one round trip (``BatchGetItem``)."""
    if len(subjects) == 1:
        item = client.get_item(TableName=table, Key=item_key(subjects[0], LIMITS_SK)).get("Item")
        return {subjects[0]: _limits(item)}
    by_pk = {s.pk: s for s in subjects}
    found: dict[Subject, BudgetLimits | None] = dict.fromkeys(subjects)
    request: dict[str, Any] = {table: {"Keys": [item_key(s, LIMITS_SK) for s in subjects]}}
    while request:
        answer = client.batch_get_item(RequestItems=request)
        for item in answer.get("Responses", {}).get(table, []):
            found[by_pk[item["pk"]["S"]]] = _limits(item)
        request = answer.get("UnprocessedKeys") or {}
    return found


def write_limits(
    client: Any,
    table: str,
    key_id: str,
    limits: BudgetLimits,
    name: str = "",
    subject: Subject | None = None,
) -> BudgetLimits:
    """Merge ``limits`` (fields set) into the key's stored override; returns the result.

    UpdateItem rather than PutItem: the gateway's role may only update, and fields not given
    keep their stored value.
    """
    values = limits.model_dump(exclude_none=True)
    names = {f"#{f}": f for f in values}
    sets = [f"#{f} = :{f}" for f in values] + ["updated_at = :now"]
    attrs = {f":{f}": num(v) for f, v in values.items()} | {":now": num(int(time.time()))}
    if name:
        sets.append("key_name = :name")
        attrs[":name"] = {"S": name}
    kwargs: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
    answer = client.update_item(
        TableName=table,
        Key=item_key(subject or Subject("key", key_id), LIMITS_SK),
        UpdateExpression="SET " + ", ".join(sets),
        ExpressionAttributeValues=attrs,
        ReturnValues="ALL_NEW",
        **kwargs,
    )
    stored = answer["Attributes"]
    return BudgetLimits(**{f: read_int(stored, f) for f in LIMIT_FIELDS if f in stored})


# ------------------------------------------------------------------ usage ------------------


@dataclass(frozen=True)
class DayUsage:
    day: str
    key_id: str
    requests: int
    failed: int
    input_tokens: int
    generated_tokens: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.generated_tokens


def principal(partition: str) -> str:
    """A partition's id in the usage report: a key's bare id, ``user:<sub>``, ``tenant:<id>``."""
    kind, _, ident = partition.partition("#")
    return ident if kind == "key" else f"{kind}:{ident}"


def usage_rows(client: Any, table: str, first: str, last: str) -> Iterator[DayUsage]:
    """Every key's day items from ``first`` to ``last`` (``YYYY-MM-DD``, inclusive).

    A Scan, because the report wants all keys and keys are partitions. It runs from the
    operator's CLI, never on the request path, and window items expire within days, so the
    table stays small.
    """
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {":first": {"S": day_sk(first)}, ":last": {"S": day_sk(last)}},
    }
    while True:
        page = client.scan(**kwargs)
        for item in page.get("Items", []):
            yield DayUsage(
                day=item["sk"]["S"].removeprefix("day#"),
                key_id=principal(item["pk"]["S"]),
                requests=read_int(item, "requests"),
                failed=read_int(item, "failed"),
                input_tokens=read_int(item, "input_tokens"),
                generated_tokens=read_int(item, "generated_tokens"),
            )
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ------------------------------------------------------------------ the stack's table -----

# The gateway stack names its table in this output (and this logical id, as a fallback).
STACK_OUTPUT = "BudgetsTableName"
STACK_RESOURCE = "BudgetsTable"


def stack_table(cloudformation: Any, stack: str) -> str | None:
    """The budget table of a deployed gateway stack, or None when it has none."""
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output.get("OutputKey") == STACK_OUTPUT:
            return str(output["OutputValue"])
    try:
        detail = cloudformation.describe_stack_resource(
            StackName=stack, LogicalResourceId=STACK_RESOURCE
        )["StackResourceDetail"]
    except cloudformation.exceptions.ClientError:
        return None
    return str(detail["PhysicalResourceId"])
