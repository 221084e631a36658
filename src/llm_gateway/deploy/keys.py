"""Partner API keys on the deployed gateway: create, list, revoke (API Gateway via boto3).

The gateway stack (``template.yaml``) has one usage plan per tier, named
``<stack name>-<tier>`` (``basic``, ``pro``). A partner key is an API Gateway API key attached to
one of those plans; API Gateway enforces the plan's throttle and quota per key. The key value is
printed once, at creation, and never again (``list`` shows names and ids only).

A tier is one word (letters, digits, ``_``): that is what makes a plan name belong to exactly one
stack, so stack ``gw`` never claims ``gw-eu-basic``, the ``basic`` plan of stack ``gw-eu``.

A tier may also carry default token budgets as usage-plan tags (``PLAN_LIMIT_TAGS``, e.g.
``llm-gateway:tokens-per-day: "2000000"``); ``keys create`` copies them into the budget table
for the new key, where ``keys update`` can change them later.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llm_gateway.config.budgets import LIMIT_FIELDS, BudgetLimits

TAG_STACK = "llm-gateway:stack"
TAG_PLAN = "llm-gateway:plan"
# Usage-plan tags holding a tier's default budgets: llm-gateway:tokens-per-minute, ...
PLAN_LIMIT_TAGS = {f"llm-gateway:{name.replace('_', '-')}": name for name in LIMIT_FIELDS}


class PartnerKeyError(Exception):
    """A user-facing failure (unknown plan, duplicate name, …)."""


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    tier: str
    tags: tuple[tuple[str, str], ...] = ()

    def limits(self) -> BudgetLimits:
        """The default budgets the tier's tags carry (empty when it has none)."""
        tags = dict(self.tags)
        values = {field: tags[tag] for tag, field in PLAN_LIMIT_TAGS.items() if tag in tags}
        try:
            return BudgetLimits(**{field: int(value) for field, value in values.items()})
        except ValueError as exc:
            raise PartnerKeyError(
                f"usage plan {self.name} has an invalid budget tag: {exc}"
            ) from None


@dataclass(frozen=True)
class PartnerKey:
    id: str
    name: str
    tier: str
    enabled: bool
    created: datetime | None


def _pages(call: Callable[..., dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    position = None
    while True:
        page = call(**kwargs, **({"position": position} if position else {}))
        items.extend(page.get("items", []))
        position = page.get("position")
        if not position:
            return items


class PartnerKeys:
    def __init__(self, client: Any, stack: str) -> None:
        self.client = client
        self.stack = stack

    def plans(self) -> dict[str, Plan]:
        """The stack's usage plans by tier: names ``<stack>-<one-word tier>``, nothing else."""
        pattern = re.compile(re.escape(self.stack) + r"-(\w+)", re.ASCII)
        found = {}
        for plan in _pages(self.client.get_usage_plans, limit=500):
            name = plan.get("name", "")
            match = pattern.fullmatch(name)
            if match:
                tags = tuple(sorted((plan.get("tags") or {}).items()))
                found[match[1]] = Plan(id=plan["id"], name=name, tier=match[1], tags=tags)
        return found

    def plan(self, tier: str) -> Plan:
        plans = self.plans()
        if tier not in plans:
            available = ", ".join(sorted(plans)) or "none"
            raise PartnerKeyError(
                f"no usage plan '{self.stack}-{tier}' (tiers of stack {self.stack}: {available}); "
                "is --stack the gateway's stack name?"
            )
        return plans[tier]

    def list(self, tier: str | None = None) -> builtins.list[PartnerKey]:
        plans = [self.plan(tier)] if tier else sorted(self.plans().values(), key=lambda p: p.tier)
        keys = []
        for plan in plans:
            for item in _pages(self.client.get_usage_plan_keys, usagePlanId=plan.id, limit=500):
                details = self.client.get_api_key(apiKey=item["id"], includeValue=False)
                # A key this tool created names its stack: one attached by hand to a plan that
                # merely looks like ours is still listed, but never one of another stack.
                if details.get("tags", {}).get(TAG_STACK, self.stack) != self.stack:
                    continue
                keys.append(
                    PartnerKey(
                        id=item["id"],
                        name=item.get("name", ""),
                        tier=plan.tier,
                        enabled=bool(details.get("enabled")),
                        created=details.get("createdDate"),
                    )
                )
        return sorted(keys, key=lambda k: (k.name, k.tier))

    def find(self, name: str) -> builtins.list[PartnerKey]:
        return [key for key in self.list() if key.name == name]

    def create(self, name: str, tier: str) -> tuple[PartnerKey, str]:
        """A new enabled key in the tier's plan; returns it and its value (shown once)."""
        plan = self.plan(tier)
        if self.find(name):
            raise PartnerKeyError(f"a key named '{name}' already exists on stack {self.stack}")
        created = self.client.create_api_key(
            name=name,
            description=f"llm-gateway partner key, stack {self.stack}, plan {tier}",
            enabled=True,
            tags={TAG_STACK: self.stack, TAG_PLAN: tier},
        )
        try:
            self.client.create_usage_plan_key(
                usagePlanId=plan.id, keyId=created["id"], keyType="API_KEY"
            )
        except Exception:
            self.client.delete_api_key(apiKey=created["id"])  # no orphan key without a plan
            raise
        key = PartnerKey(
            id=created["id"],
            name=name,
            tier=tier,
            enabled=True,
            created=created.get("createdDate"),
        )
        return key, created["value"]

    def revoke(self, name: str, tier: str | None = None) -> builtins.list[PartnerKey]:
        """Detach and delete the key(s) named ``name``; requests with them then get 403."""
        keys = [key for key in self.find(name) if tier is None or key.tier == tier]
        if not keys:
            raise PartnerKeyError(f"no key named '{name}' on stack {self.stack}")
        plans = self.plans()
        for key in keys:
            self.client.delete_usage_plan_key(usagePlanId=plans[key.tier].id, keyId=key.id)
            self.client.delete_api_key(apiKey=key.id)
        return keys
