"""Shared helpers for the budget tests: a gateway with budgets over a fresh table in the suite's
one store server (``store_server`` in conftest), the table read back, and the emulated
endpoints' invocation counts (the proof that a refused request never reached the model)."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from llm_gateway.budgets.local import local_client
from llm_gateway.budgets.table import create_table
from llm_gateway.config import Settings
from llm_gateway.config.loader import parse_config
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import env

KEYS = ("acme:sk-acme", "beta:sk-beta")
ACME = {"x-api-key": "sk-acme"}
BETA = {"authorization": "Bearer sk-beta"}
PROMPT = "Hello"  # 1 token by the documented estimate
_tables = itertools.count()

# Endpoints only these tests call, so their invocation counts are theirs.
ENDPOINTS: dict[str, dict[str, Any]] = {
    "budget-tgi": {"tgi_version": "3.x", "output_tokens": 12},
    "budget-vllm": {"server": "vllm", "model_id": "Qwen/Qwen3-4B", "output_tokens": 12},
    "budget-slow": {"tgi_version": "3.x", "pacing": {"first_token_ms": 1500, "token_ms": 5}},
    "budget-paced": {"tgi_version": "3.x", "output_tokens": 200, "pacing": {"token_ms": 30}},
    "budget-late": {
        "tgi_version": "3.x",
        "output_tokens": 12,
        "faults": [{"kind": "slow_first_byte", "seconds": 4}],  # outlives a 1 s deadline
    },
}
MODELS: list[dict[str, Any]] = [
    {"name": "b-tgi", "endpoint": "budget-tgi", "template": "chatml"},
    {"name": "b-vllm", "endpoint": "budget-vllm", "backend": "openai"},
    {"name": "b-tgi-chat", "endpoint": "budget-tgi", "backend": "tgi-messages"},
    {"name": "b-slow", "endpoint": "budget-slow", "template": "chatml"},
    {"name": "b-paced", "endpoint": "budget-paced", "template": "chatml"},
    {"name": "b-late", "endpoint": "budget-late", "template": "chatml"},
]


@dataclass
class Budgeted:
    """A running gateway with budgets, its table, and the emulator behind it."""

    url: str
    table: str
    store: str
    emulator: Emulator

    def calls(self, endpoint: str) -> int:
        """Invocations the emulated endpoint has received (buffered and streamed)."""
        return self.emulator.stats_for(endpoint).requests

    def items(self, pk: str) -> dict[str, dict[str, Any]]:
        """Every item of one budget subject (``key#acme``, ``user#alice``…), by sort key."""
        client = local_client(self.store)
        answer = client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        return {item["sk"]["S"]: item for item in answer["Items"]}

    def used(self, pk: str, kind: str) -> int:
        """What the subject's windows of one kind (``tpm``, ``rpm``, ``day``) hold, summed over
        windows (a test that crosses a minute boundary still sees all it charged)."""
        return sum(
            int(item.get("used", {"N": "0"})["N"])
            for sk, item in self.items(pk).items()
            if sk.startswith(f"{kind}#")
        )

    def day(self, pk: str) -> dict[str, int]:
        """The subject's day totals (requests, failed, input_tokens, generated_tokens, used)."""
        totals: dict[str, int] = {}
        for sk, item in self.items(pk).items():
            if sk.startswith("day#"):
                for name, value in item.items():
                    if "N" in value and name != "expires_at":
                        totals[name] = totals.get(name, 0) + int(value["N"])
        return totals

    def settled(self, pk: str, requests: int, timeout: float = 15) -> dict[str, int]:
        """Wait until ``requests`` requests of the subject are settled (their totals are in
        the day item), then return the day totals. Nothing else writes ``requests``."""
        deadline = time.monotonic() + timeout
        while True:
            totals = self.day(pk)
            if totals.get("requests", 0) >= requests or time.monotonic() > deadline:
                return totals
            time.sleep(0.05)

    def charge(self, pk: str, sk: str, used: int) -> None:
        """Write a window's count directly, as other gateway processes would have."""
        local_client(self.store).put_item(
            TableName=self.table,
            Item={"pk": {"S": pk}, "sk": {"S": sk}, "used": {"N": str(used)}},
        )


def within_one_minute(needed: float = 15.0) -> None:
    """Wait, if need be, so that the next ``needed`` seconds fall in one minute: a test of a
    per-minute window must not see it turn over while it runs."""
    into_minute = time.time() % 60
    if into_minute > 60 - needed:
        time.sleep(60.2 - into_minute)


def start_budgeted(
    store_server: str, start_gateway: Callable[..., str], emulator: Emulator
) -> Iterator[Callable[..., Budgeted]]:
    """The ``budgeted`` fixture (conftest): ``budgeted(settings=None, url=None,
    config_extra=None, **budgets)`` starts a gateway whose models file has ``budgets`` (as
    given) over a fresh table."""
    for name, spec in ENDPOINTS.items():
        emulator.set_endpoint(name, EndpointSpec.model_validate(spec))

    def start(
        settings: Settings | None = None,
        url: str | None = None,
        config_extra: dict[str, Any] | None = None,
        **budgets: Any,
    ) -> Budgeted:
        table = f"budgets-{next(_tables)}"
        create_table(local_client(store_server), table)
        within_one_minute()
        config = parse_config(
            {
                "default_model": "b-tgi",
                "models": MODELS,
                "budgets": {"table": table, **budgets},
                **(config_extra or {}),
            },
            "tests",
        )
        settings = settings or Settings(api_keys=KEYS)
        with env(AWS_ENDPOINT_URL_DYNAMODB=url or store_server):
            gateway = start_gateway(config, settings)
        return Budgeted(gateway, table, store_server, emulator)

    yield start
    for name in ENDPOINTS:
        emulator.endpoints.pop(name, None)


class DelayProxy:
    """A TCP proxy in front of the store that holds every chunk a client sends for ``delay``
    seconds: a store that answers in about ``delay`` per call, as DynamoDB does from Lambda
    (a few ms in-region) or slower."""

    def __init__(self, target: str, delay: float) -> None:
        host, _, port = target.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        self.delay = delay
        self.calls = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="delay-proxy").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for args in ((client, upstream, self.delay), (upstream, client, 0.0)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                if delay:
                    self.calls += 1
                    time.sleep(delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._server.close()
