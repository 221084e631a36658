"""Budgets as the core's :class:`~llm_gateway.core.admission.Admission`.

Whose budget a generation spends: a signed-in user's and their tenant's (``Caller.user`` /
``Caller.tenant``, set by the web layer from a verified token), else the API key's. The
generation service calls :meth:`BudgetAdmission.admit` on its worker thread *before* the
upstream call, and :meth:`~BudgetAdmission.settle` once the upstream call has returned.
"""

from __future__ import annotations

from llm_gateway.budgets.reservation import Reservation
from llm_gateway.budgets.store import Budgets
from llm_gateway.budgets.windows import Subject
from llm_gateway.core.admission import Caller, Usage


def subjects(caller: Caller) -> list[Subject]:
    """The budgets a caller's generations are charged to (none for an anonymous caller)."""
    if caller.user:
        found = [Subject("user", caller.user)]
        if caller.tenant:
            found.append(Subject("tenant", caller.tenant))
        return found
    if caller.key_id:
        return [Subject("key", caller.key_id)]
    return []


class BudgetAdmission:
    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets

    def applies(self, caller: Caller) -> bool:
        return bool(caller.user or caller.key_id)

    def refuse_now(self, caller: Caller, tokens: int) -> None:
        """A caller remembered as exhausted is refused with no store call (limits cached)."""
        budgets = self.budgets
        now = budgets.clock()
        for subject in subjects(caller):
            limits = budgets.cached_limits(subject)
            if limits is not None and not limits.empty:
                budgets.refuse_without_store(subject, max(0, tokens), limits, now)

    def admit(self, caller: Caller, tokens: int, *, stream: bool) -> Reservation | None:
        found = subjects(caller)
        if not found:
            return None
        return self.budgets.reserve_for(found, caller.request_id, tokens, stream=stream)

    def settle(self, ticket: object, usage: Usage) -> None:
        assert isinstance(ticket, Reservation)
        self.budgets.settle(
            ticket,
            input_tokens=usage.input_tokens,
            generated_tokens=usage.generated_tokens,
            failed_before_generating=not usage.generated_anything,
        )
