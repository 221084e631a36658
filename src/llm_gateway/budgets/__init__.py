"""Per-key token budgets: reserve before the model call, reconcile after, in DynamoDB.

Framework-free (no web framework, nothing from ``http``/``dialects``): the request path calls
:class:`Budgets` and shapes :class:`BudgetRefusal` into each dialect's answer. See
``docs/budgets.md``.
"""

from llm_gateway.budgets.config import BudgetsConfig, Limits, table_name
from llm_gateway.budgets.durations import format_duration
from llm_gateway.budgets.errors import BudgetRefusal
from llm_gateway.budgets.reservation import Reservation
from llm_gateway.budgets.store import Budgets, MetricSink
from llm_gateway.budgets.table import create_table, make_client

__all__ = [
    "BudgetRefusal",
    "Budgets",
    "BudgetsConfig",
    "Limits",
    "MetricSink",
    "Reservation",
    "create_table",
    "format_duration",
    "make_client",
    "table_name",
]
