"""The models file's ``budgets:`` section (SPEC §4, §5.4): configuration, read by the budgets
package (which the configuration never imports).

BudgetLimits merge field by field: a key's entry in ``keys`` overrides ``default`` only for the fields
it sets, and an override stored in the table (``llm-gateway keys update``) overrides both the
same way. Signed-in users start from ``user_default`` (their override: ``llm-gateway users
update``); a tenant's limits are ``tenants[<id>]`` over ``tenants["default"]``. A field left
unset everywhere means "no limit of that kind".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# Strict: YAML `true` or "100" must not pass as a limit.
PositiveInt = Annotated[StrictInt, Field(gt=0)]

LIMIT_FIELDS = (
    "tokens_per_minute",
    "tokens_per_day",
    "requests_per_minute",
    "max_concurrent_streams",
)


class BudgetLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_minute: PositiveInt | None = None
    tokens_per_day: PositiveInt | None = None
    requests_per_minute: PositiveInt | None = None
    max_concurrent_streams: PositiveInt | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in LIMIT_FIELDS)

    def overridden_by(self, other: BudgetLimits | None) -> BudgetLimits:
        """These limits with every field ``other`` sets replaced."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_none=True))


class BudgetsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(default="llm-gateway-budgets", min_length=3, max_length=255)
    on_store_error: Literal["allow", "deny"] = "allow"
    default: BudgetLimits = BudgetLimits()
    keys: dict[str, BudgetLimits] = Field(default_factory=dict)
    user_default: BudgetLimits = BudgetLimits()  # each signed-in user
    tenants: dict[str, BudgetLimits] = Field(
        default_factory=dict
    )  # "default": any tenant not named

    def limits_for(self, key_id: str) -> BudgetLimits:
        """The models file's limits for a key (before any override stored in the table)."""
        return self.default.overridden_by(self.keys.get(key_id))

    def file_limits(self, kind: str, subject_id: str) -> BudgetLimits:
        """The models file's limits for any subject (``key``, ``user`` or ``tenant``, by id),
        before the table's override."""
        if kind == "user":
            return self.user_default
        if kind == "tenant":
            base = self.tenants.get("default", BudgetLimits())
            return (
                base.overridden_by(self.tenants.get(subject_id))
                if subject_id != "default"
                else base
            )
        return self.limits_for(subject_id)


def table_name(config: BudgetsConfig, env: dict[str, str] | None = None) -> str:
    """``GATEWAY_BUDGETS_TABLE`` (set by the stack on AWS) wins over the models file."""
    import os

    source = os.environ if env is None else env
    return source.get("GATEWAY_BUDGETS_TABLE") or config.table
