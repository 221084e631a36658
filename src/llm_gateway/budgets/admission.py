"""Budgets as the core's :class:`~llm_gateway.core.admission.Admission`: each generation of a
key reserves ``prompt + max new tokens`` alongside its upstream call and is settled with the
real counts once the upstream is done (off the response path, on a budgets thread)."""

from __future__ import annotations

from collections.abc import Awaitable
from concurrent.futures import Executor
from typing import Any

from llm_gateway.budgets.reservation import Reservation
from llm_gateway.budgets.store import Budgets
from llm_gateway.core.admission import Caller, Usage


class BudgetAdmission:
    def __init__(self, budgets: Budgets, executor: Executor | None = None) -> None:
        self.budgets = budgets
        self.executor = executor

    def refuse_now(self, caller: Caller, tokens: int) -> None:
        """A key remembered as exhausted is refused with no store call and no upstream call."""
        budgets = self.budgets
        limits = budgets._cached_limits(str(caller.key_id))
        if limits is not None and not limits.empty:
            budgets.refuse_without_store(
                str(caller.key_id), max(0, tokens), limits, budgets.clock()
            )

    def admit(self, caller: Caller, tokens: int, *, stream: bool) -> Awaitable[Reservation]:
        return self.budgets.areserve(
            str(caller.key_id), caller.request_id, tokens, stream=stream, executor=self.executor
        )

    def settle(self, ticket: Any, usage: Usage) -> None:
        assert isinstance(ticket, Reservation)
        self.budgets._pool(self.executor).submit(
            self.budgets.settle,
            ticket,
            input_tokens=usage.input_tokens,
            generated_tokens=usage.generated_tokens,
            failed_before_generating=not usage.generated_anything,
        )
