"""``llm-gateway image-uri`` and ``llm-gateway keys``: deployment helpers.

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
        print(image_uri(args.region, args.version))
    except ValueError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


def _client(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(profile_name=args.profile, region_name=args.region).client(
        "apigateway"
    )


def keys_command(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from llm_gateway.deploy.keys import PartnerKeyError, PartnerKeys

    try:
        keys = PartnerKeys(_client(args), args.stack)
        if args.action == "create":
            key, value = keys.create(args.name, args.plan)
            print(f"Created API key '{key.name}' (id {key.id}) on plan {args.stack}-{key.tier}.")
            print("The key is shown only now; give it to the partner and do not store it here:")
            print(value)
            print("Send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'.")
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
    except PartnerKeyError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"llm-gateway: API Gateway call failed: {exc}", file=sys.stderr)
        return 1
    return 0


def add_deploy_commands(sub: Any) -> None:
    """Add ``image-uri`` and ``keys`` to the ``llm-gateway`` subcommands."""
    p = sub.add_parser(
        "image-uri",
        help="print the Hugging Face LLM (TGI) image URI for a region (offline)",
        description="Resolve the TGI container image URI as the SageMaker SDK's "
        "get_huggingface_llm_image_uri does, from the packaged registry data.",
    )
    p.add_argument("--region", required=True, help="AWS region, e.g. us-east-1")
    p.add_argument("--version", help="TGI version or alias (e.g. 3.3.6, 3.3); default: newest")
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

    a = actions.add_parser("create", parents=[common], help="create a key in a plan")
    a.add_argument("--name", required=True, help="partner name (unique per stack)")
    a.add_argument("--plan", required=True, help="usage plan tier, e.g. basic or pro")
    a.set_defaults(func=keys_command)

    a = actions.add_parser("list", parents=[common], help="list keys (never their values)")
    a.add_argument("--plan", help="only this tier")
    a.set_defaults(func=keys_command)

    a = actions.add_parser("revoke", parents=[common], help="delete a partner's key")
    a.add_argument("--name", required=True)
    a.add_argument("--plan", help="only the key in this tier")
    a.set_defaults(func=keys_command)
