"""The budget parts of the CLI: ``budgets create-table``, ``usage``, ``users update|show`` and
the limit flags of ``keys create|update`` (registered by :mod:`llm_gateway.deploy.cli`).

Every DynamoDB call goes through boto3, so ``AWS_ENDPOINT_URL_DYNAMODB`` points these commands
at any DynamoDB-compatible endpoint, as it does the gateway.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from llm_gateway.budgets.table import (
    create_table,
    read_overrides,
    stack_table,
    usage_rows,
    write_limits,
)
from llm_gateway.budgets.usage import hourly_price, render, report
from llm_gateway.budgets.windows import Subject, day_start
from llm_gateway.config.budgets import LIMIT_FIELDS, BudgetLimits


class BudgetCliError(Exception):
    """A user-facing failure of a budget command."""


def session(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(
        profile_name=getattr(args, "profile", None), region_name=getattr(args, "region", None)
    )


def add_limit_arguments(parser: argparse.ArgumentParser, whom: str = "key") -> None:
    for name in LIMIT_FIELDS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=_positive,
            metavar="N",
            help=f"budget: {name.replace('_', ' ')} for this {whom} (stored in the budget table)",
        )
    parser.add_argument(
        "--table",
        help="budget table (default: $GATEWAY_BUDGETS_TABLE, else the stack's BudgetsTableName)",
    )


def limits_from_args(args: argparse.Namespace) -> BudgetLimits:
    return BudgetLimits(
        **{name: getattr(args, name) for name in LIMIT_FIELDS if getattr(args, name)}
    )


def resolve_table(aws: Any, args: argparse.Namespace) -> str:
    """``--table``, else ``$GATEWAY_BUDGETS_TABLE``, else the stack's budget table."""
    if getattr(args, "table", None):
        return str(args.table)
    if os.environ.get("GATEWAY_BUDGETS_TABLE"):
        return os.environ["GATEWAY_BUDGETS_TABLE"]
    from botocore.exceptions import ClientError

    stack = getattr(args, "stack", None)
    try:
        found = stack_table(aws.client("cloudformation"), stack) if stack else None
    except ClientError as exc:  # most often: no such stack in this account and region
        raise BudgetCliError(
            f"no budget table for stack {stack}: {exc.response['Error'].get('Message', exc)}; "
            "pass --table NAME"
        ) from None
    if not found:
        raise BudgetCliError(
            f"no budget table for stack {stack} (no output BudgetsTableName); pass --table NAME"
        )
    return found


def store_limits(
    aws: Any, table: str, key_id: str, limits: BudgetLimits, name: str = ""
) -> BudgetLimits:
    return write_limits(aws.client("dynamodb"), table, key_id, limits, name)


def describe(limits: BudgetLimits) -> str:
    values = limits.model_dump(exclude_none=True)
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items()) or "none"


# ------------------------------------------------------------------ commands ---------------


def create_table_command(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        create_table(session(args).client("dynamodb"), args.table)
    except (BotoCoreError, ClientError) as exc:
        print(f"llm-gateway: could not create table {args.table}: {exc}", file=sys.stderr)
        return 1
    print(f"Created budget table {args.table} (on-demand, TTL on expires_at).")
    return 0


def usage_command(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cost = args.endpoint_cost_per_hour
        if args.instance_type:
            cost = hourly_price(args.instance_type)
        first, last = _period(args.from_day, args.to_day)
        aws = session(args)
        table = resolve_table(aws, args)
        rows = list(usage_rows(aws.client("dynamodb"), table, first, last))
        names = _key_names(aws) if not args.table and rows else {}
    except (ValueError, BudgetCliError) as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    except (BotoCoreError, ClientError) as exc:
        print(f"llm-gateway: reading usage failed: {exc}", file=sys.stderr)
        return 1
    lines = report(
        rows,
        names=names,
        cost_per_hour=cost,
        instances=args.instances,
        generated_weight=args.generated_weight,
    )
    sys.stdout.write(render(lines, args.format, with_cost=cost is not None))
    if cost is not None and args.format == "table":
        print(
            f"Cost: {cost} USD/hour x {args.instances} instance(s) x 24 h per day, apportioned "
            f"by each key's share of the day's tokens (generated weight {args.generated_weight})."
        )
    return 0


def users_command(args: argparse.Namespace) -> int:
    """``users update|show``: a signed-in user's own limits, stored in the table (they win
    over the models file's ``budgets.user_default``, field by field)."""
    from botocore.exceptions import BotoCoreError, ClientError

    subject = Subject("user", args.user)
    try:
        aws = session(args)
        table = resolve_table(aws, args)
        client = aws.client("dynamodb")
        if args.action == "update":
            limits = limits_from_args(args)
            if limits.empty:
                raise BudgetCliError("give at least one limit, e.g. --tokens-per-day 200000")
            stored: BudgetLimits | None = write_limits(client, table, "", limits, subject=subject)
        else:
            stored = read_overrides(client, table, [subject])[subject]
    except BudgetCliError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"llm-gateway: AWS call failed: {exc}", file=sys.stderr)
        return 1
    print(f"Budgets of user {args.user} in table {table}: {describe(stored or BudgetLimits())}.")
    if args.action == "update":
        print("Gateways pick the change up within a minute (their limits cache).")
    return 0


def _period(first: str | None, last: str | None) -> tuple[str, str]:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    last = last or today
    for day in (first, last):
        if day is not None:
            time.strptime(day, "%Y-%m-%d")  # ValueError names the bad one
    if first is None:
        first = time.strftime("%Y-%m-%d", time.gmtime(day_start(last) - 6 * 86400))
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    return first, last


def _key_names(aws: Any) -> dict[str, str]:
    """API key id → name (the usage table knows ids only)."""
    client = aws.client("apigateway")
    names: dict[str, str] = {}
    position = None
    while True:
        page = client.get_api_keys(limit=500, **({"position": position} if position else {}))
        names.update({item["id"]: item.get("name", "") for item in page.get("items", [])})
        position = page.get("position")
        if not position:
            return names


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def add_budget_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``budgets create-table`` and ``usage``; ``common`` has --stack, --region, --profile."""
    p = sub.add_parser("budgets", help="the per-key budget table")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser(
        "create-table",
        help="create the budget table (any DynamoDB endpoint: AWS_ENDPOINT_URL_DYNAMODB)",
    )
    a.add_argument("--table", required=True)
    a.add_argument("--region", help="AWS region (default: the AWS environment's)")
    a.add_argument("--profile", help="AWS profile")
    a.set_defaults(func=create_table_command)

    p = sub.add_parser(
        "usage",
        parents=[common],
        help="tokens, requests and apportioned endpoint cost per key, user and tenant per day",
    )
    p.add_argument("--table", help="budget table (default: the stack's)")
    p.add_argument("--from", dest="from_day", metavar="DAY", help="YYYY-MM-DD (default: --to - 6)")
    p.add_argument("--to", dest="to_day", metavar="DAY", help="YYYY-MM-DD, UTC (default: today)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    cost = p.add_mutually_exclusive_group()
    cost.add_argument("--endpoint-cost-per-hour", type=float, metavar="USD")
    cost.add_argument("--instance-type", help="look the hourly price up in the shipped table")
    p.add_argument("--instances", type=_positive, default=1, help="instances behind the endpoint")
    p.add_argument(
        "--generated-weight",
        type=float,
        default=1.0,
        help="weight of a generated token against an input token in the cost share",
    )
    p.set_defaults(func=usage_command)

    p = sub.add_parser(
        "users", help="signed-in users' own budgets (overrides of budgets.user_default)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    for action, summary in (("update", "set a user's limits"), ("show", "print them")):
        a = actions.add_parser(action, parents=[common], help=summary)
        a.add_argument("--user", required=True, help="the user's id (the token's user_claim)")
        if action == "update":
            add_limit_arguments(a, "user")
        else:
            a.add_argument("--table", help="budget table (default: the stack's)")
        a.set_defaults(func=users_command)
