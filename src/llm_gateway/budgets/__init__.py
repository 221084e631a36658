"""Per-key token budgets: reserve before the model call, reconcile after, in DynamoDB.

Framework-free (no web framework, nothing from ``http``/``dialects``): the request path calls
:class:`Budgets` and shapes :class:`BudgetRefusal` into each dialect's answer. See
``docs/budgets.md``.

The names below load on first use: a gateway without budgets never needs the store. The
models file's ``budgets:`` section is configuration (:mod:`llm_gateway.config.budgets`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_gateway.budgets.durations import format_duration
    from llm_gateway.budgets.errors import BudgetRefusal
    from llm_gateway.budgets.reservation import Reservation
    from llm_gateway.budgets.store import Budgets, MetricSink
    from llm_gateway.budgets.table import create_table, make_client
    from llm_gateway.config.budgets import BudgetLimits, BudgetsConfig, table_name

_HOMES = {
    "BudgetsConfig": "llm_gateway.config.budgets",
    "BudgetLimits": "llm_gateway.config.budgets",
    "table_name": "llm_gateway.config.budgets",
    "format_duration": "durations",
    "BudgetRefusal": "errors",
    "Reservation": "reservation",
    "Budgets": "store",
    "MetricSink": "store",
    "create_table": "table",
    "make_client": "table",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = home if home.startswith("llm_gateway.") else f"{__name__}.{home}"
    return getattr(import_module(module), name)


__all__ = [
    "BudgetLimits",
    "BudgetRefusal",
    "Budgets",
    "BudgetsConfig",
    "MetricSink",
    "Reservation",
    "create_table",
    "format_duration",
    "make_client",
    "table_name",
]
