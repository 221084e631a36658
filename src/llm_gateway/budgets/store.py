"""Reserve before the call, reconcile after it: per-key budgets in one DynamoDB table.

``reserve`` charges each limited window with one conditional ``UpdateItem`` (reference B6.2):
``ADD used :cost`` only if ``used <= limit - cost``, so concurrent requests can never charge a
window past its limit, whatever the number of gateway processes. A refusal comes back with the
window's item (``ALL_OLD``), so the 429 says how much was used without another read. If a later
window refuses after an earlier one was charged, the earlier charges are taken back.

``settle`` replaces each token charge by the real count (``ADD used :actual-reserved``, so a
refund is a negative add) and adds the day's totals, in one ``TransactWriteItems`` that also
creates a ledger item only if it does not exist yet: a retried reconcile (botocore's retry after
a lost answer, or a second call) cancels itself instead of refunding twice.

Both methods block (boto3 does); :meth:`Budgets.areserve` / :meth:`Budgets.asettle` run them in
an executor. ``settle`` never raises.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llm_gateway.budgets import errors
from llm_gateway.budgets.config import BudgetsConfig, Limits
from llm_gateway.budgets.memory import ExhaustedMemory
from llm_gateway.budgets.reservation import Charge, Reservation, rate_headers
from llm_gateway.budgets.table import key, num, read_int, read_limits
from llm_gateway.budgets.windows import Window, day_window, minute_window

log = logging.getLogger("llm_gateway.budgets")

StoreError = (BotoCoreError, ClientError)
# (metric name, value, key id): BudgetRejections, ReservedTokens, RefundedTokens,
# BudgetStoreErrors. Called from whichever thread runs reserve/settle.
MetricSink = Callable[[str, int, str], None]

# A stream cannot outlive Lambda's 15 minutes: when no stream started for longer than that,
# every slot still counted belongs to a process that died mid-stream, and the count restarts.
STREAM_LEASE_SECONDS = 15 * 60 + 60
LEDGER_SECONDS = 86400  # retries come within seconds; a day is ample
LIMITS_FAILURE_SECONDS = 5.0  # after a failed override read, use the file's limits this long


def _conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class Budgets:
    """Per-key budgets over one table. Thread-safe; one instance per process."""

    def __init__(
        self,
        config: BudgetsConfig,
        *,
        client: Any,
        table: str | None = None,
        clock: Callable[[], float] = time.time,
        on_metric: MetricSink | None = None,
        limits_cache_seconds: float = 60.0,
        recheck_seconds: float = 5.0,
    ) -> None:
        self.config = config
        self.client = client
        self.table = table or config.table
        self.clock = clock
        self.on_metric = on_metric
        self.limits_cache_seconds = limits_cache_seconds
        self.memory = ExhaustedMemory(recheck_seconds)
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._overrides: dict[str, tuple[Limits | None, float]] = {}
        self._executor: Executor | None = None

    # ------------------------------------------------------------------ limits ----------

    def limits(self, key_id: str) -> Limits:
        """The models file's limits with the table's override, read once per cache period."""
        now = self.clock()
        with self._lock:
            cached = self._overrides.get(key_id)
        if cached is None or now >= cached[1]:
            try:
                override = read_limits(self.client, self.table, key_id)
                cached = (override, now + self.limits_cache_seconds)
            except StoreError as exc:
                self._store_error("reading limits of", key_id, exc)
                cached = (None, now + LIMITS_FAILURE_SECONDS)
            with self._lock:
                self._overrides[key_id] = cached
        return self.config.limits_for(key_id).overridden_by(cached[0])

    def _cached_limits(self, key_id: str) -> Limits | None:
        with self._lock:
            cached = self._overrides.get(key_id)
        if cached is None or self.clock() >= cached[1]:
            return None
        return self.config.limits_for(key_id).overridden_by(cached[0])

    # ------------------------------------------------------------------ reserve ---------

    def _plan(self, limits: Limits, tokens: int, now: float) -> list[tuple[Window, int, int]]:
        """(window, cost, limit) for each limited window, requests first (cheapest to undo)."""
        plan = []
        if limits.requests_per_minute:
            plan.append((minute_window("rpm", now), 1, limits.requests_per_minute))
        if limits.tokens_per_minute:
            plan.append((minute_window("tpm", now), tokens, limits.tokens_per_minute))
        if limits.tokens_per_day:
            plan.append((day_window(now), tokens, limits.tokens_per_day))
        return plan

    def refuse_without_store(self, key_id: str, tokens: int, limits: Limits, now: float) -> None:
        """Raise at once, with no store call, what is already known to be refused."""
        for window, cost, limit in self._plan(limits, tokens, now):
            if cost > limit:  # no window will ever hold it
                raise self._rejected(key_id, window, limit, 0, cost, now)
            known = self.memory.refusing(key_id, window.kind, cost, limit, now)
            if known is not None:
                raise self._rejected(key_id, window, limit, known.used, cost, now)

    def reserve(self, key_id: str, request_id: str, tokens: int, *, stream: bool) -> Reservation:
        """Reserve ``tokens`` (prompt + max new tokens) for one request. Blocking.

        Raises :class:`~llm_gateway.budgets.errors.BudgetRefusal`: 429 when a limit refuses,
        503 when the store cannot be reached and ``on_store_error`` is ``deny``.
        """
        now = self.clock()
        limits = self.limits(key_id)
        res = Reservation(key_id, request_id, max(0, tokens), stream, limits, day_window(now))
        if limits.empty:
            return res
        self.refuse_without_store(key_id, res.tokens, limits, now)
        try:
            if stream and limits.max_concurrent_streams:
                self._acquire_stream(res, limits.max_concurrent_streams, now)
            for window, cost, limit in self._plan(limits, res.tokens, now):
                res.charges.append(self._charge(res, window, cost, limit, now))
        except StoreError as exc:
            res.store_errors += 1
            self._store_error("reserving for", key_id, exc)
            if self.config.on_store_error == "deny":
                self._roll_back(res)
                raise errors.store_unavailable(key_id) from None
            # allow: serve; what was charged so far is reconciled by settle as usual.
            res.admitted_without_store = True
        if res.reserved_tokens:
            self._count("ReservedTokens", res.reserved_tokens, key_id)
        return res

    def _charge(
        self, res: Reservation, window: Window, cost: int, limit: int, now: float
    ) -> Charge:
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=key(res.key_id, window.sk),
                UpdateExpression="ADD used :cost SET expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(used) OR used <= :room",
                ExpressionAttributeValues={
                    ":cost": num(cost),
                    ":room": num(limit - cost),
                    ":ttl": num(window.expires_at),
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            used = read_int(exc.response.get("Item"), "used")
            self._roll_back(res)
            self.memory.remember(
                res.key_id, window.kind, used=used, reset_at=window.reset_at, now=now
            )
            raise self._rejected(res.key_id, window, limit, used, cost, now) from None
        return Charge(window, cost, limit, read_int(answer.get("Attributes"), "used"))

    def _acquire_stream(self, res: Reservation, limit: int, now: float) -> None:
        attrs = {":one": num(1), ":max": num(limit), ":lease": num(int(now) + STREAM_LEASE_SECONDS)}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key(res.key_id, "streams"),
                UpdateExpression="ADD used :one SET lease_until = :lease",
                ConditionExpression="attribute_not_exists(used) OR used < :max",
                ExpressionAttributeValues=attrs,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            res.stream_slot = True
            return
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            item = exc.response.get("Item")
        lease = read_int(item, "lease_until")
        if lease and lease < now:
            # Every slot counted is older than any stream can live: start the count again.
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=key(res.key_id, "streams"),
                    UpdateExpression="SET used = :one, lease_until = :lease",
                    ConditionExpression="lease_until = :old",
                    ExpressionAttributeValues={
                        ":one": attrs[":one"],
                        ":lease": attrs[":lease"],
                        ":old": num(lease),
                    },
                )
                res.stream_slot = True
                return
            except ClientError as exc:
                if not _conditional_failure(exc):
                    raise
        self._count("BudgetRejections", 1, res.key_id)
        raise errors.too_many_streams(res.key_id, limit)

    def _rejected(
        self, key_id: str, window: Window, limit: int, used: int, cost: int, now: float
    ) -> errors.BudgetRefusal:
        self._count("BudgetRejections", 1, key_id)
        state = Charge(window, 0, limit, used)
        headers = rate_headers(
            state if window.kind != "rpm" else None, state if window.kind == "rpm" else None, now
        )
        return errors.over_limit(
            key_id,
            window.kind,
            limit=limit,
            used=used,
            requested=cost,
            reset_at=window.reset_at,
            now=now,
            headers=headers,
        )

    def _roll_back(self, res: Reservation) -> None:
        """Undo what a refused or denied reservation charged (never raises)."""
        undo = [(c.window.sk, -c.amount) for c in res.charges]
        if res.stream_slot:
            undo.append(("streams", -1))
        for sk, amount in undo:
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=key(res.key_id, sk),
                    UpdateExpression="ADD used :amount",
                    ExpressionAttributeValues={":amount": num(amount)},
                )
            except StoreError as exc:
                self._store_error("rolling back", res.key_id, exc)
        res.charges.clear()
        res.stream_slot = False

    # ------------------------------------------------------------------ settle ----------

    def settle(
        self,
        reservation: Reservation,
        *,
        input_tokens: int | None,
        generated_tokens: int | None,
        failed_before_generating: bool,
    ) -> None:
        """Replace the reservation by the real counts and add the day's totals. Blocking.

        Idempotent (a second call, or a retried write, changes nothing) and never raises.
        Unknown counts (``None``) leave the reservation charged: the safe direction.
        """
        if reservation.settled:
            return
        reservation.settled = True
        if failed_before_generating:
            actual: int | None = 0
            input_tokens = generated_tokens = 0
        elif input_tokens is not None and generated_tokens is not None:
            actual = input_tokens + generated_tokens
        else:
            actual = None
        try:
            self._settle(
                reservation,
                actual,
                input_tokens or 0,
                generated_tokens or 0,
                failed_before_generating,
            )
        except StoreError as exc:
            reservation.store_errors += 1
            self._store_error("settling", reservation.key_id, exc)
        except Exception:  # a reconcile must never fail the response
            log.exception("budget reconcile failed for key id %s", reservation.key_id)

    def _settle(
        self,
        res: Reservation,
        actual: int | None,
        input_tokens: int,
        generated_tokens: int,
        failed: bool,
    ) -> None:
        now = self.clock()
        deltas: dict[str, int] = {}
        for charge in res.charges:
            if charge.window.kind == "rpm":
                deltas[charge.window.sk] = -1 if failed else 0
            else:
                deltas[charge.window.sk] = 0 if actual is None else actual - charge.amount
        day_adds = {
            "requests": 1,
            "failed": 1 if failed else 0,
            "input_tokens": input_tokens,
            "generated_tokens": generated_tokens,
            "used": deltas.pop(res.day.sk, 0),
        }
        adds = {name: value for name, value in day_adds.items() if value}
        items: list[dict[str, Any]] = [
            self._update(
                res.key_id,
                res.day.sk,
                "ADD "
                + ", ".join(f"{name} :{name}" for name in adds)
                + " SET expires_at = if_not_exists(expires_at, :ttl)",
                {f":{name}": num(value) for name, value in adds.items()}
                | {":ttl": num(res.day.expires_at)},
            ),
            self._update(
                res.key_id,
                f"settle#{res.ledger_id}",
                "SET expires_at = :ttl, request_id = :rid",
                {":ttl": num(int(now) + LEDGER_SECONDS), ":rid": {"S": res.request_id}},
                condition="attribute_not_exists(pk)",
            ),
        ]
        for sk, delta in deltas.items():
            if delta:
                items.append(self._update(res.key_id, sk, "ADD used :d", {":d": num(delta)}))
        if res.stream_slot:
            items.append(
                self._update(
                    res.key_id,
                    "streams",
                    "ADD used :d",
                    {":d": num(-1), ":zero": num(0)},
                    condition="used > :zero",
                )
            )
        if not self._transact(items, releases_stream=res.stream_slot):
            return
        refunded = 0 if actual is None else max(0, res.tokens - actual)
        if res.reserved_tokens and refunded:
            res.refunded_tokens = refunded
            self._count("RefundedTokens", refunded, res.key_id)
            for charge in res.charges:
                if charge.window.kind != "rpm":
                    self.memory.refunded(res.key_id, charge.window.kind, refunded)

    def _update(
        self,
        key_id: str,
        sk: str,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": key(key_id, sk),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _transact(self, items: list[dict[str, Any]], *, releases_stream: bool) -> bool:
        """Write the reconcile; False when the ledger shows it was written already.

        ``items`` are the day item, the ledger item, window deltas and, last, the stream
        release when ``releases_stream``.
        """
        try:
            self.client.transact_write_items(TransactItems=items)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            return False  # the ledger item exists: this reconcile already happened
        if releases_stream and reasons and reasons[-1] == "ConditionalCheckFailed":
            # The stream count was restarted under us (stale lease): nothing left to release.
            return self._transact(items[:-1], releases_stream=False)
        raise RuntimeError(f"budget reconcile cancelled: {reasons}")

    # ------------------------------------------------------------------ async ------------

    async def areserve(
        self,
        key_id: str,
        request_id: str,
        tokens: int,
        *,
        stream: bool,
        executor: Executor | None = None,
    ) -> Reservation:
        """:meth:`reserve` in ``executor`` (default: a small pool of this object's).

        A key already known to be exhausted is refused here, on the event loop, with no thread
        hop. If the awaiting task is cancelled (say the upstream call failed first), a
        reservation that still completes is refunded in full, so nothing leaks.
        """
        limits = self._cached_limits(key_id)
        if limits is not None and not limits.empty:
            self.refuse_without_store(key_id, max(0, tokens), limits, self.clock())
        future = self._pool(executor).submit(
            self.reserve, key_id, request_id, tokens, stream=stream
        )
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._refund_orphan)
            raise

    def _refund_orphan(self, future: Future[Reservation]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        self.settle(
            future.result(), input_tokens=None, generated_tokens=None, failed_before_generating=True
        )

    async def asettle(
        self,
        reservation: Reservation,
        *,
        input_tokens: int | None,
        generated_tokens: int | None,
        failed_before_generating: bool,
        executor: Executor | None = None,
    ) -> None:
        """:meth:`settle` in ``executor``. Never raises."""
        future = self._pool(executor).submit(
            self.settle,
            reservation,
            input_tokens=input_tokens,
            generated_tokens=generated_tokens,
            failed_before_generating=failed_before_generating,
        )
        await asyncio.wrap_future(future)

    def _pool(self, executor: Executor | None) -> Executor:
        if executor is not None:
            return executor
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(16, thread_name_prefix="budgets")
            return self._executor

    # ------------------------------------------------------------------ reporting --------

    def _count(self, name: str, value: int, key_id: str) -> None:
        with self._lock:
            self.counters[name] += value
        if self.on_metric is not None:
            try:
                self.on_metric(name, value, key_id)
            except Exception:  # metrics must never fail a request
                log.exception("budget metric hook failed")

    def _store_error(self, doing: str, key_id: str, exc: Exception) -> None:
        self._count("BudgetStoreErrors", 1, key_id)
        log.warning(
            "budget store error while %s key id %s (on_store_error=%s): %s",
            doing,
            key_id,
            self.config.on_store_error,
            exc,
        )
