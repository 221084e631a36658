"""Reserve before the call, reconcile after it: budgets in one DynamoDB table.

A request's budget subjects are its API key, or a signed-in user and the user's tenant. Each
limited window of each subject is charged with one conditional ``UpdateItem`` (reference
B6.2): ``ADD used :cost`` only if ``used <= limit - cost``, so concurrent requests can never
charge a window past its limit, whatever the number of gateway processes. The writes of one
reservation go out together (one round trip of latency); if any window refuses, the others
are taken back, so a reservation is all or nothing. A refusal comes back with the window's
item (``ALL_OLD``), so the 429 says how much was used without another read.

``settle`` replaces each token charge by the real count (``ADD used :actual-reserved``, so a
refund is a negative add) and adds the day's totals, in one ``TransactWriteItems`` that also
creates a ledger item only if it does not exist yet: a retried reconcile (botocore's retry after
a lost answer, or a second call) cancels itself instead of refunding twice.

Both methods block (boto3 does): the generation service calls them on its worker threads.
``settle`` never raises.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llm_gateway.budgets import errors
from llm_gateway.budgets.memory import ExhaustedMemory
from llm_gateway.budgets.reservation import Charge, Reservation, Share, rate_headers
from llm_gateway.budgets.table import item_key, num, read_int, read_overrides
from llm_gateway.budgets.windows import Subject, Window, day_window, minute_window
from llm_gateway.config.budgets import BudgetLimits, BudgetsConfig

log = logging.getLogger("llm_gateway.budgets")

StoreError = (BotoCoreError, ClientError)
# (metric name, value, subject id): BudgetRejections, ReservedTokens, RefundedTokens,
# BudgetStoreErrors. Called from whichever thread runs reserve/settle.
MetricSink = Callable[[str, int, str], None]

# A stream slot is a lease: renewed every third of it while the stream lives, so a process
# that died mid-stream gives its slot back within about a minute.
STREAM_LEASE_SECONDS = 60
LEASE_PREFIX = "lease_"
LEDGER_SECONDS = 86400  # retries come within seconds; a day is ample
LIMITS_FAILURE_SECONDS = 5.0  # after a failed override read, use the file's limits this long


def _conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def key_subject(key_id: str) -> Subject:
    return Subject("key", key_id)


class Budgets:
    """Budgets over one table. Thread-safe; one instance per process."""

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
        lease_seconds: float = STREAM_LEASE_SECONDS,
    ) -> None:
        self.config = config
        self.client = client
        self.table = table or config.table
        self.clock = clock
        self.on_metric = on_metric
        self.limits_cache_seconds = limits_cache_seconds
        self.lease_seconds = lease_seconds
        self.memory = ExhaustedMemory(recheck_seconds)
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._overrides: dict[Subject, tuple[BudgetLimits | None, float]] = {}
        self._refreshing: set[Subject] = set()  # overrides being read in the background
        self._refresher: ThreadPoolExecutor | None = None  # background limit refreshes
        self._writes: ThreadPoolExecutor | None = None
        self._leases: dict[str, Subject] = {}  # live stream leases, renewed by the keeper
        self._keeper: threading.Thread | None = None

    # ------------------------------------------------------------------ limits ----------

    def limits(self, key_id: str) -> BudgetLimits:
        return self.limits_of([key_subject(key_id)])[0]

    def limits_of(self, subjects: Sequence[Subject]) -> list[BudgetLimits]:
        """The models file's limits with the table's overrides. A subject seen for the first
        time is read before its request (all such subjects in one round trip); after that the
        overrides are refreshed once per cache period in the background, so no request waits
        for a read."""
        now = self.clock()
        with self._lock:
            unknown = [s for s in subjects if s not in self._overrides]
            stale = [
                s
                for s in subjects
                if s in self._overrides
                and now >= self._overrides[s][1]
                and s not in self._refreshing
            ]
            self._refreshing.update(stale)
        if unknown:
            self._read_overrides(unknown)
        if stale:
            self._background().submit(self._read_overrides, stale)
        with self._lock:
            cached = [self._overrides[s][0] for s in subjects]
        return [
            self.config.file_limits(s.kind, s.id).overridden_by(o)
            for s, o in zip(subjects, cached, strict=True)
        ]

    def _read_overrides(self, subjects: list[Subject]) -> None:
        now = self.clock()
        try:
            found = read_overrides(self.client, self.table, subjects)
            fresh = {s: (found[s], now + self.limits_cache_seconds) for s in subjects}
        except StoreError as exc:
            self._store_error("reading limits of", subjects[0], exc)
            with self._lock:  # keep what was known; try again in a few seconds
                fresh = {
                    s: (self._overrides.get(s, (None, 0.0))[0], now + LIMITS_FAILURE_SECONDS)
                    for s in subjects
                }
        with self._lock:
            self._overrides.update(fresh)
            self._refreshing.difference_update(subjects)

    def cached_limits(self, subject: Subject) -> BudgetLimits | None:
        with self._lock:
            cached = self._overrides.get(subject)
        if cached is None:
            return None
        return self.config.file_limits(subject.kind, subject.id).overridden_by(cached[0])

    # ------------------------------------------------------------------ reserve ---------

    def _plan(self, limits: BudgetLimits, tokens: int, now: float) -> list[tuple[Window, int, int]]:
        """(window, cost, limit) for each limited window."""
        plan = []
        if limits.requests_per_minute:
            plan.append((minute_window("rpm", now), 1, limits.requests_per_minute))
        if limits.tokens_per_minute:
            plan.append((minute_window("tpm", now), tokens, limits.tokens_per_minute))
        if limits.tokens_per_day:
            plan.append((day_window(now), tokens, limits.tokens_per_day))
        return plan

    def refuse_without_store(
        self, subject: Subject | str, tokens: int, limits: BudgetLimits, now: float
    ) -> None:
        """Raise at once, with no store call, what is already known to be refused."""
        if isinstance(subject, str):
            subject = key_subject(subject)
        for window, cost, limit in self._plan(limits, tokens, now):
            if cost > limit:  # no window will ever hold it
                raise self._rejected(subject, window, limit, 0, cost, now)
            known = self.memory.refusing(subject.pk, window.kind, cost, limit, now)
            if known is not None:
                raise self._rejected(subject, window, limit, known.used, cost, now)

    def reserve(self, key_id: str, request_id: str, tokens: int, *, stream: bool) -> Reservation:
        """:meth:`reserve_for` an API key."""
        return self.reserve_for([key_subject(key_id)], request_id, tokens, stream=stream)

    def reserve_for(
        self, subjects: Sequence[Subject], request_id: str, tokens: int, *, stream: bool
    ) -> Reservation:
        """Reserve ``tokens`` (prompt + everything the request may generate) in every limited
        window of every subject, all or nothing. Blocking.

        Raises :class:`~llm_gateway.budgets.errors.BudgetRefusal`: 429 when a limit refuses
        (naming the subject and the limit), 503 when the store cannot be reached and
        ``on_store_error`` is ``deny``.
        """
        now = self.clock()
        tokens = max(0, tokens)
        limits = self.limits_of(subjects)
        res = Reservation(
            request_id,
            tokens,
            stream,
            [Share(s, lim, day_window(now)) for s, lim in zip(subjects, limits, strict=True)],
        )
        if not res.budgeted:
            return res
        for share in res.shares:
            self.refuse_without_store(share.subject, tokens, share.limits, now)
        writes: list[tuple[Share, Callable[[], None]]] = []
        for share in res.shares:
            most = share.limits.max_concurrent_streams
            if stream and most:
                writes.append((share, self._stream_write(share, most, now)))
            for window, cost, limit in self._plan(share.limits, tokens, now):
                writes.append((share, self._charge_write(share, window, cost, limit, now)))
        failures = self._all_at_once([write for _, write in writes])
        refusal = next((f for f in failures if isinstance(f, errors.BudgetRefusal)), None)
        if refusal is not None:
            self._roll_back(res)
            raise refusal
        failed = [(share, f) for (share, _), f in zip(writes, failures, strict=True) if f]
        if failed:
            share, first = failed[0]
            if not isinstance(first, StoreError):
                self._roll_back(res)
                raise first
            res.store_errors += len(failed)
            for share, failure in failed:
                self._store_error("reserving for", share.subject, failure)
            if self.config.on_store_error == "deny":
                self._roll_back(res)
                raise errors.store_unavailable(failed[0][0].subject) from None
            # allow: serve; what was charged so far is reconciled by settle as usual.
            res.admitted_without_store = True
        if res.reserved_tokens:
            self._count("ReservedTokens", res.reserved_tokens, res.subject)
        return res

    def _all_at_once(self, writes: list[Callable[[], None]]) -> list[BaseException | None]:
        """Run the writes concurrently (the first on this thread): one round trip of latency.
        Returns each write's exception, or None."""

        def run(write: Callable[[], None]) -> BaseException | None:
            try:
                write()
            except Exception as exc:
                return exc
            return None

        if len(writes) <= 1:
            return [run(w) for w in writes]
        with self._lock:  # its own pool: the reservation itself may run on a pool thread
            if self._writes is None:
                self._writes = ThreadPoolExecutor(32, thread_name_prefix="budget-writes")
            pool = self._writes
        others = [pool.submit(run, w) for w in writes[1:]]
        first = run(writes[0])
        return [first, *(f.result() for f in others)]

    def _charge_write(
        self, share: Share, window: Window, cost: int, limit: int, now: float
    ) -> Callable[[], None]:
        def charge() -> None:
            try:
                answer = self.client.update_item(
                    TableName=self.table,
                    Key=item_key(share.subject, window.sk),
                    UpdateExpression=(
                        "ADD used :cost SET expires_at = if_not_exists(expires_at, :ttl)"
                    ),
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
                self.memory.remember(
                    share.subject.pk, window.kind, used=used, reset_at=window.reset_at, now=now
                )
                raise self._rejected(share.subject, window, limit, used, cost, now) from None
            used = read_int(answer.get("Attributes"), "used")
            share.charges.append(Charge(window, cost, limit, used))

        return charge

    # ------------------------------------------------------------------ stream slots ----

    def _stream_write(self, share: Share, limit: int, now: float) -> Callable[[], None]:
        def acquire() -> None:
            lease = f"{LEASE_PREFIX}{uuid.uuid4().hex[:16]}"
            for attempt in range(2):
                try:
                    self.client.update_item(
                        TableName=self.table,
                        Key=item_key(share.subject, "streams"),
                        UpdateExpression="ADD used :one SET #lease = :until",
                        ConditionExpression="attribute_not_exists(used) OR used < :max",
                        ExpressionAttributeNames={"#lease": lease},
                        ExpressionAttributeValues={
                            ":one": num(1),
                            ":max": num(limit),
                            ":until": num(int(self.clock() + self.lease_seconds)),
                        },
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                except ClientError as exc:
                    if not _conditional_failure(exc):
                        raise
                    if attempt == 0 and self._reclaim(share.subject, exc.response.get("Item")):
                        continue
                    break
                share.stream_lease = lease
                self._keep(lease, share.subject)
                return
            self._count("BudgetRejections", 1, share.subject)
            raise errors.too_many_streams(share.subject, limit)

        return acquire

    def _reclaim(self, subject: Subject, item: dict[str, Any] | None) -> bool:
        """Take back the slots of streams whose lease ran out (their process died): ``used``
        becomes the number of live leases, if nobody changed the item meanwhile."""
        if not item:
            return False
        now = self.clock()
        leases = {k: read_int(item, k) for k in item if k.startswith(LEASE_PREFIX)}
        expired = [k for k, until in leases.items() if until < now]
        live = len(leases) - len(expired)
        used = read_int(item, "used")
        if used <= live:
            return False
        names = {f"#x{i}": name for i, name in enumerate(expired)}
        expression = "SET used = :live" + (f" REMOVE {', '.join(names)}" if names else "")
        try:
            self.client.update_item(
                TableName=self.table,
                Key=item_key(subject, "streams"),
                UpdateExpression=expression,
                ConditionExpression="used = :old",
                ExpressionAttributeValues={":live": num(live), ":old": num(used)},
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
        return True  # reclaimed here or by another process: worth one more try

    def _keep(self, lease: str, subject: Subject) -> None:
        with self._lock:
            self._leases[lease] = subject
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._renew_forever, name="budget-leases", daemon=True
                )
                self._keeper.start()

    def _renew_forever(self) -> None:
        while True:
            time.sleep(self.lease_seconds / 3)
            self.renew_leases()

    def renew_leases(self) -> None:
        """Extend every live stream's lease (the keeper thread calls this every third of it)."""
        with self._lock:
            leases = list(self._leases.items())
        until = num(int(self.clock() + self.lease_seconds))
        for lease, subject in leases:
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=item_key(subject, "streams"),
                    UpdateExpression="SET #lease = :until",
                    ConditionExpression="attribute_exists(#lease)",
                    ExpressionAttributeNames={"#lease": lease},
                    ExpressionAttributeValues={":until": until},
                )
            except ClientError as exc:
                if _conditional_failure(exc):  # reclaimed: this stream's slot is gone
                    with self._lock:
                        self._leases.pop(lease, None)
                else:
                    self._store_error("renewing a stream lease of", subject, exc)
            except BotoCoreError as exc:
                self._store_error("renewing a stream lease of", subject, exc)

    # ------------------------------------------------------------------ refusals --------

    def _rejected(
        self, subject: Subject, window: Window, limit: int, used: int, cost: int, now: float
    ) -> errors.BudgetRefusal:
        self._count("BudgetRejections", 1, subject)
        state = Charge(window, 0, limit, used)
        headers = rate_headers(
            state if window.kind != "rpm" else None, state if window.kind == "rpm" else None, now
        )
        return errors.over_limit(
            subject,
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
        for share in res.shares:
            undo: list[tuple[str, str, dict[str, Any]]] = [
                (c.window.sk, "ADD used :amount", {":amount": num(-c.amount)})
                for c in share.charges
            ]
            names: dict[str, str] = {}
            if share.stream_lease:
                names = {"#lease": share.stream_lease}
                undo.append(("streams", "ADD used :amount REMOVE #lease", {":amount": num(-1)}))
                with self._lock:
                    self._leases.pop(share.stream_lease, None)
            for sk, expression, values in undo:
                try:
                    self.client.update_item(
                        TableName=self.table,
                        Key=item_key(share.subject, sk),
                        UpdateExpression=expression,
                        ExpressionAttributeValues=values,
                        **({"ExpressionAttributeNames": names} if "#lease" in expression else {}),
                    )
                except StoreError as exc:
                    self._store_error("rolling back", share.subject, exc)
            share.charges.clear()
            share.stream_lease = None

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
        with self._lock:
            for share in reservation.shares:
                if share.stream_lease:
                    self._leases.pop(share.stream_lease, None)
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
            self._store_error("settling", reservation.subject, exc)
        except Exception:  # a reconcile must never fail the response
            log.exception("budget reconcile failed for %s", reservation.subject.label)

    def _settle(
        self,
        res: Reservation,
        actual: int | None,
        input_tokens: int,
        generated_tokens: int,
        failed: bool,
    ) -> None:
        now = self.clock()
        items: list[dict[str, Any]] = [
            self._update(
                res.subject,
                f"settle#{res.ledger_id}",
                "SET expires_at = :ttl, request_id = :rid",
                {":ttl": num(int(now) + LEDGER_SECONDS), ":rid": {"S": res.request_id}},
                condition="attribute_not_exists(pk)",
            )
        ]
        releases: list[int] = []  # indices of the stream releases
        for share in res.shares:
            deltas: dict[str, int] = {}
            for charge in share.charges:
                if charge.window.kind == "rpm":
                    deltas[charge.window.sk] = -1 if failed else 0
                else:
                    deltas[charge.window.sk] = 0 if actual is None else actual - charge.amount
            day_adds = {
                "requests": 1,
                "failed": 1 if failed else 0,
                "input_tokens": input_tokens,
                "generated_tokens": generated_tokens,
                "used": deltas.pop(share.day.sk, 0),
            }
            adds = {name: value for name, value in day_adds.items() if value}
            items.append(
                self._update(
                    share.subject,
                    share.day.sk,
                    "ADD "
                    + ", ".join(f"{name} :{name}" for name in adds)
                    + " SET expires_at = if_not_exists(expires_at, :ttl)",
                    {f":{name}": num(value) for name, value in adds.items()}
                    | {":ttl": num(share.day.expires_at)},
                )
            )
            for sk, delta in deltas.items():
                if delta:
                    items.append(self._update(share.subject, sk, "ADD used :d", {":d": num(delta)}))
            if share.stream_lease:
                releases.append(len(items))
                items.append(
                    self._update(
                        share.subject,
                        "streams",
                        "ADD used :d REMOVE #lease",
                        {":d": num(-1)},
                        condition="attribute_exists(#lease)",
                        names={"#lease": share.stream_lease},
                    )
                )
        if not self._transact(items, releases):
            return
        refunded = 0 if actual is None else max(0, res.tokens - actual)
        if res.reserved_tokens and refunded:
            res.refunded_tokens = refunded
            self._count("RefundedTokens", refunded, res.subject)
            for share in res.shares:
                for charge in share.charges:
                    if charge.window.kind != "rpm":
                        self.memory.refunded(share.subject.pk, charge.window.kind, refunded)

    def _update(
        self,
        subject: Subject,
        sk: str,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": item_key(subject, sk),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition:
            update["ConditionExpression"] = condition
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    def _transact(self, items: list[dict[str, Any]], releases: list[int]) -> bool:
        """Write the reconcile; False when the ledger (item 0) shows it was written already.

        A stream release (at ``releases``) whose lease was reclaimed meanwhile (its stream
        outlived the lease) has nothing left to release: the write is retried without it.
        """
        try:
            self.client.transact_write_items(TransactItems=items)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return False  # the ledger item exists: this reconcile already happened
        gone = [i for i in releases if i < len(reasons) and reasons[i] == "ConditionalCheckFailed"]
        if gone:
            kept = [item for i, item in enumerate(items) if i not in gone]
            left = [i - sum(g < i for g in gone) for i in releases if i not in gone]
            return self._transact(kept, left)
        raise RuntimeError(f"budget reconcile cancelled: {reasons}")

    # ------------------------------------------------------------------ reporting --------

    def _count(self, name: str, value: int, subject: Subject) -> None:
        with self._lock:
            self.counters[name] += value
        if self.on_metric is not None:
            try:
                self.on_metric(name, value, subject.principal)
            except Exception:  # metrics must never fail a request
                log.exception("budget metric hook failed")

    def _store_error(self, doing: str, subject: Subject, exc: BaseException) -> None:
        self._count("BudgetStoreErrors", 1, subject)
        log.warning(
            "budget store error while %s %s (on_store_error=%s): %s",
            doing,
            subject.label,
            self.config.on_store_error,
            exc,
        )

    def _background(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._refresher is None:
                self._refresher = ThreadPoolExecutor(4, thread_name_prefix="budget-limits")
            return self._refresher
