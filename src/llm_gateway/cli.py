"""``llm-gateway``: run the gateway (``serve``) or the SageMaker simulator (``emulate``)."""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from llm_gateway import __version__

if TYPE_CHECKING:
    from llm_gateway.config.schema import GatewayConfig


def _banner(
    url: str, backend: str, models: list[str], keys: bool, ui: bool = False, users: bool = False
) -> str:
    auth = ' -H "x-api-key: $GATEWAY_KEY"' if keys else ""
    if users and not keys:  # auth.jwt: nothing is anonymous any more
        auth = ' -H "Authorization: Bearer $TOKEN"'
    generate = shlex.quote(
        '{"inputs": "What does a gateway do?", "parameters": {"max_new_tokens": 40}}'
    )
    stream = shlex.quote(
        '{"inputs": "What does a gateway do?", "parameters": {"max_new_tokens": 40, "details": true}}'
    )
    default = next((m.split(" ")[0] for m in models if m.endswith("(default)")), "tgi")
    messages = shlex.quote(
        f'{{"model": "{default}", "max_tokens": 40, '
        '"messages": [{"role": "user", "content": "What does a gateway do?"}]}'
    )
    return "\n".join(
        [
            f"SageMaker LLM Gateway {__version__} listening on {url}",
            f"Backend: {backend}",
            f"Models: {', '.join(models)}",
            *([f"Chat UI: {url}/ui/"] if ui else []),
            "",
            "Try it:",
            f"  curl -s {url}/generate -H 'Content-Type: application/json'{auth} -d {generate}",
            f"  curl -sN {url}/generate_stream -H 'Content-Type: application/json'{auth} -d {stream}",
            f"  curl -s {url}/info{auth}",
            f"  curl -s {url}/v1/messages -H 'Content-Type: application/json'{auth} -d {messages}",
            "",
        ]
    )


def _local_switches(args: argparse.Namespace, env: MutableMapping[str, str]) -> None:
    """The chat page is on by default here (not on AWS): --no-ui or GATEWAY_UI decide otherwise."""
    if args.no_ui:
        env["GATEWAY_UI"] = "false"
    elif not env.get("GATEWAY_UI"):
        env["GATEWAY_UI"] = "true"
    if args.no_metrics:
        env["POWERTOOLS_METRICS_DISABLED"] = "true"


def _models(args: argparse.Namespace, env: MutableMapping[str, str]) -> tuple[GatewayConfig, str]:
    """The models to serve and a description of where they run: the configured ones, or the
    demo models on the embedded emulator (started here) when nothing is configured."""
    from llm_gateway.config import config_source, load_config
    from llm_gateway.config.loader import parse_config
    from llm_gateway.local import BackgroundServer, use_emulator

    runtime = env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
    if config_source(env, args.config) is not None:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "the default region"
        where = f"at {runtime}" if runtime else f"in {region}"
        return load_config(args.config), f"SageMaker Runtime {where}"
    from llm_gateway.emulator.demo import demo_config, demo_endpoints

    if runtime:
        backend = f"SageMaker Runtime at {runtime} (demo models)"
    else:
        from llm_gateway.emulator import Emulator

        emulator = BackgroundServer(Emulator(demo_endpoints()).app()).start()
        use_emulator(emulator.url)
        backend = f"embedded SageMaker emulator (simulated TGI, not a real model) at {emulator.url}"
    return parse_config(demo_config(), "the embedded demo configuration"), backend


def _run(app: Any, args: argparse.Namespace, banner: str) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(banner, flush=True)

    # The gateway writes its own JSON line per request; uvicorn's access log would repeat it.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="off",
        access_log=False,
        # Keep idle connections longer than clients do (httpx: 5 s, aiohttp: 15 s): when both
        # sides give up at the same moment, a request sent on a closing connection is lost.
        timeout_keep_alive=75,
    )
    Server(config).run()


def _budget_store(config: GatewayConfig, env: MutableMapping[str, str]) -> str | None:
    """With budgets and no ``AWS_ENDPOINT_URL_DYNAMODB``: start the embedded DynamoDB-compatible
    store (moto's server mode, in memory) with the table, as the SageMaker emulator is started
    for the demo models. Returns a description for the banner."""
    if config.budgets is None:
        return None
    from llm_gateway.budgets import table_name

    table = table_name(config.budgets, dict(env))
    if env.get("AWS_ENDPOINT_URL_DYNAMODB"):
        return f"table {table} at {env['AWS_ENDPOINT_URL_DYNAMODB']}"
    from llm_gateway.budgets.local import start_embedded_store

    url, _stop = start_embedded_store(table)  # lives as long as the process
    env["AWS_ENDPOINT_URL_DYNAMODB"] = url
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    if not (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")):
        env["AWS_DEFAULT_REGION"] = "us-east-1"
    return f"table {table} in an embedded DynamoDB-compatible store (in memory) at {url}"


# serve --sign-in with the demo models: each signed-in user's budget (budgets.user_default).
DEMO_USER_BUDGET = {"tokens_per_minute": 20_000, "tokens_per_day": 200_000}


def _sign_in(
    args: argparse.Namespace, config: GatewayConfig, demo: bool
) -> tuple[GatewayConfig, str | None]:
    """``--sign-in``: start the OpenID Connect TEST provider and make ``auth.jwt`` name it
    (issuer, the page's registered client as audience and ``client_id``, ``tenant`` claim);
    with the demo models, each user also gets a budget. Returns the config and the banner's
    lines about it."""
    if not args.sign_in:
        return config, None
    from llm_gateway.config.loader import parse_config
    from llm_gateway.local import TENANT_CLAIM, TEST_USERS, start_test_issuer

    try:
        issuer = start_test_issuer(f"http://{args.host}:{args.port}/ui/")
    except RuntimeError as exc:
        raise SignInError(str(exc)) from exc
    data = config.model_dump(exclude_unset=True)
    replaced = bool((data.get("auth") or {}).get("jwt"))
    data["auth"] = {
        **(data.get("auth") or {}),
        "jwt": {
            "issuer": issuer.issuer,
            "audience": [issuer.client_id],
            "client_id": issuer.client_id,
            "tenant_claim": TENANT_CLAIM,
        },
    }
    budget = demo and "budgets" not in data
    if budget:  # in the embedded DynamoDB-compatible store, so the page shows what is left
        data["budgets"] = {"user_default": DEMO_USER_BUDGET}
    config = parse_config(data, "the --sign-in test provider's settings")
    users = ", ".join(f"{sub} ({claims[TENANT_CLAIM]})" for sub, claims in TEST_USERS.items())
    lines = [
        f"Sign-in: TEST OpenID Connect provider (oidc-provider-mock: anyone signs in as anyone;"
        f" never for real users) at {issuer.issuer}",
        f"  auth.jwt: issuer {issuer.issuer}, audience and client_id {issuer.client_id}"
        + (" (replacing the models file's auth.jwt)" if replaced else ""),
        f"  Open http://{args.host}:{args.port}/ui/, press Sign in, pick or type a user: {users}",
        "  The API now wants a user's token ($TOKEN below: the ID token, which the page keeps "
        "in sessionStorage) or a GATEWAY_API_KEYS key",
        *(
            [
                f"  Each user may use {DEMO_USER_BUDGET['tokens_per_minute']:,} tokens a minute "
                f"and {DEMO_USER_BUDGET['tokens_per_day']:,} a day (budgets.user_default)"
            ]
            if budget
            else []
        ),
    ]
    return config, "\n".join(lines)


class SignInError(Exception):
    """``--sign-in`` cannot start its test provider (e.g. the optional dependency is missing)."""


def serve(args: argparse.Namespace) -> int:
    from botocore.exceptions import NoRegionError

    from llm_gateway.app import create_app
    from llm_gateway.config import ConfigError, Settings, SettingsError, config_source

    env = os.environ
    _local_switches(args, env)
    try:
        settings = Settings.from_env()
        config, backend = _models(args, env)
        demo = config_source(env, args.config) is None
        config, sign_in = _sign_in(args, config, demo)
        budgets = _budget_store(config, env)
        app = create_app(config, settings)
    except (ConfigError, SettingsError, SignInError) as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2
    except NoRegionError:
        print("llm-gateway: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)", file=sys.stderr)
        return 2
    url = f"http://{args.host}:{args.port}"
    models = [m.name + (" (default)" if m is config.default else "") for m in config.models]
    signed_in = config.auth is not None and config.auth.jwt is not None
    banner = _banner(url, backend, models, bool(settings.api_keys), settings.ui, signed_in)
    if budgets is not None:
        banner = banner.replace("\nTry it:", f"\nBudgets: {budgets}\nTry it:", 1)
    if sign_in is not None:
        banner = banner.replace("\nTry it:", f"\n{sign_in}\nTry it:", 1)
    _run(app, args, banner)
    return 0


def emulate(args: argparse.Namespace) -> int:
    import uvicorn
    import yaml

    from llm_gateway.emulator import Emulator, EndpointSpec
    from llm_gateway.emulator.demo import demo_endpoints

    if args.endpoints:
        with open(args.endpoints, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
        endpoints = {name: EndpointSpec.model_validate(spec or {}) for name, spec in raw.items()}
    else:
        endpoints = demo_endpoints()
    print(
        f"SageMaker Runtime emulator (a simulator, not AWS) on http://{args.host}:{args.port}\n"
        f"Endpoints: {', '.join(endpoints)}\n"
        f"Point boto3 at it: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(
        Emulator(endpoints).app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="off",
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"llm-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway with uvicorn (streams for real)")
    p.add_argument("--config", help="models file (YAML or JSON); default: $GATEWAY_CONFIG")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--no-metrics",
        action="store_true",
        help="do not print CloudWatch EMF metric lines (JSON request logs remain)",
    )
    p.add_argument(
        "--no-ui",
        action="store_true",
        help="do not serve the chat page at /ui/ (on by default unless GATEWAY_UI says otherwise)",
    )
    p.add_argument(
        "--sign-in",
        action="store_true",
        help="start an OpenID Connect TEST provider (oidc-provider-mock, on loopback) and set "
        "auth.jwt for it, so the chat page offers Sign in (needs: pip install "
        "'llm-gateway[sign-in]')",
    )
    p.set_defaults(func=serve)

    p = sub.add_parser("emulate", help="run the SageMaker Runtime emulator (simulated TGI)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--endpoints", help="YAML mapping endpoint name -> EndpointSpec")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=emulate)

    from llm_gateway.deploy.cli import add_deploy_commands

    add_deploy_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
