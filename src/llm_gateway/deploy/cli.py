"""``llm-gateway image-uri``, ``keys``, ``budgets`` and ``usage``: deployment helpers.

Registered into the main parser by :func:`add_deploy_commands`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_STACK = "llm-gateway-dev"  # samconfig.toml's default environment


def image_uri_command(args: argparse.Namespace) -> int:
    from llm_gateway.deploy.image_uri import image_uri

    try:
        print(image_uri(args.region, args.version, args.container))
    except ValueError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


def _client(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(profile_name=args.profile, region_name=args.region).client(
        "apigateway"
    )


def _create_key(args: argparse.Namespace) -> None:
    """``keys create``: the key, then the budgets its tier carries (flags win) in the table."""
    from llm_gateway.budgets.cli import (
        describe,
        limits_from_args,
        resolve_table,
        session,
        store_limits,
    )
    from llm_gateway.deploy.keys import PartnerKeys

    aws = session(args)
    keys = PartnerKeys(aws.client("apigateway"), args.stack)
    limits = keys.plan(args.plan).limits().overridden_by(limits_from_args(args))
    table = None if limits.empty else resolve_table(aws, args)  # before anything is created
    key, value = keys.create(args.name, args.plan)
    print(f"Created API key '{key.name}' (id {key.id}) on plan {args.stack}-{key.tier}.")
    print("The key is shown only now; give it to the partner and do not store it here:")
    print(value)
    print("Send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'.")
    if table:
        stored = store_limits(aws, table, key.id, limits, key.name)
        print(f"Budgets of key id {key.id} in table {table}: {describe(stored)}.")


def _update_key(args: argparse.Namespace) -> None:
    """``keys update``: merge the given limits into the key's stored budgets."""
    from llm_gateway.budgets.cli import (
        describe,
        limits_from_args,
        resolve_table,
        session,
        store_limits,
    )
    from llm_gateway.deploy.keys import PartnerKeyError, PartnerKeys

    limits = limits_from_args(args)
    if limits.empty:
        raise PartnerKeyError("nothing to update: give at least one --tokens-per-minute, …")
    aws = session(args)
    if args.id:
        targets = [(args.id, "")]
    else:
        found = PartnerKeys(aws.client("apigateway"), args.stack).find(args.name)
        if not found:
            raise PartnerKeyError(f"no key named '{args.name}' on stack {args.stack}")
        targets = [(key.id, key.name) for key in found]
    table = resolve_table(aws, args)
    for key_id, name in targets:
        stored = store_limits(aws, table, key_id, limits, name)
        print(f"Budgets of key id {key_id} in table {table}: {describe(stored)}.")
    print("Gateways pick the change up within a minute (their limits cache).")


def keys_command(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from llm_gateway.budgets.cli import BudgetCliError
    from llm_gateway.deploy.keys import PartnerKeyError, PartnerKeys

    try:
        keys = PartnerKeys(_client(args), args.stack)
        if args.action == "create":
            _create_key(args)
        elif args.action == "update":
            _update_key(args)
        elif args.action == "list":
            rows = keys.list(args.plan)
            print(f"{'NAME':<32} {'PLAN':<10} {'KEY ID':<12} {'ENABLED':<8} CREATED")
            for key in rows:
                created = key.created.isoformat(timespec="seconds") if key.created else "-"
                enabled = "yes" if key.enabled else "no"
                print(f"{key.name:<32} {key.tier:<10} {key.id:<12} {enabled:<8} {created}")
        else:
            for key in keys.revoke(args.name, args.plan):
                print(
                    f"Revoked API key '{key.name}' (id {key.id}) from plan {args.stack}-{key.tier}."
                )
    except (PartnerKeyError, BudgetCliError) as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"llm-gateway: AWS call failed: {exc}", file=sys.stderr)
        return 1
    return 0


def add_deploy_commands(sub: Any) -> None:
    """Add ``image-uri``, ``keys``, ``budgets`` and ``usage`` to the ``llm-gateway`` subcommands."""
    p = sub.add_parser(
        "image-uri",
        help="print a serving container's image URI for a region (offline)",
        description="Resolve a container image URI as the SageMaker SDK's image_uris.retrieve "
        "does (for TGI: get_huggingface_llm_image_uri), from the packaged registry data.",
    )
    p.add_argument("--region", required=True, help="AWS region, e.g. us-east-1")
    p.add_argument(
        "--container",
        choices=["tgi", "lmi", "vllm", "sglang"],
        default="tgi",
        help="tgi (Hugging Face LLM DLC, default), lmi (AWS LMI / djl-inference), "
        "vllm (AWS vLLM DLC) or sglang (AWS SGLang DLC)",
    )
    p.add_argument(
        "--version",
        help="container version or alias (e.g. TGI 3.3.6 or 3.3); default: the SDK's pick",
    )
    p.set_defaults(func=image_uri_command)

    p = sub.add_parser(
        "keys",
        help="create, list or revoke partner API keys of a deployed gateway",
        description="Partner API keys in the gateway stack's usage plans (<stack>-<plan>).",
    )
    actions = p.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--stack",
        default=os.environ.get("LLM_GATEWAY_STACK", DEFAULT_STACK),
        help=f"gateway stack name (default: $LLM_GATEWAY_STACK or {DEFAULT_STACK})",
    )
    common.add_argument("--region", help="AWS region (default: the AWS environment's)")
    common.add_argument("--profile", help="AWS profile")

    from llm_gateway.budgets.cli import add_budget_commands, add_limit_arguments

    a = actions.add_parser("create", parents=[common], help="create a key in a plan")
    a.add_argument("--name", required=True, help="partner name (unique per stack)")
    a.add_argument("--plan", required=True, help="usage plan tier, e.g. basic or pro")
    add_limit_arguments(a)
    a.set_defaults(func=keys_command)

    a = actions.add_parser("update", parents=[common], help="change a key's token budgets")
    who = a.add_mutually_exclusive_group(required=True)
    who.add_argument("--name", help="partner name on the stack")
    who.add_argument("--id", help="key id as the gateway sees it (API key id, or a local name)")
    add_limit_arguments(a)
    a.set_defaults(func=keys_command)

    a = actions.add_parser("list", parents=[common], help="list keys (never their values)")
    a.add_argument("--plan", help="only this tier")
    a.set_defaults(func=keys_command)

    a = actions.add_parser("revoke", parents=[common], help="delete a partner's key")
    a.add_argument("--name", required=True)
    a.add_argument("--plan", help="only the key in this tier")
    a.set_defaults(func=keys_command)

    add_budget_commands(sub, common)
