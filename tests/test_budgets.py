"""Per-key budgets against a DynamoDB-compatible server: real boto3 over HTTP to moto's server
mode (never moto's in-process mock), as the gateway talks to DynamoDB on AWS."""

from __future__ import annotations

import copy
import socket
import threading
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest

from llm_gateway.budgets import BudgetLimits, BudgetRefusal, Budgets, BudgetsConfig, create_table
from llm_gateway.budgets.local import local_client
from llm_gateway.budgets.table import write_limits
from llm_gateway.budgets.windows import Subject, minute_window
from llm_gateway.core.errors import ErrorCode
from llm_gateway.dialects.openai.errors import error_body


def openai_error(error: BudgetRefusal) -> tuple[int, Any]:
    """The OpenAI dialect's status and body for ``error``, as its client reads them."""
    status, body = error_body(error)
    return status, orjson.loads(body)


# 01:00:10 UTC on a fixed day: 50 s left in the minute, nothing flakes at a boundary.
T0 = 1_796_000_400 + 10


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store_url(store_server: str) -> str:
    return store_server


@pytest.fixture
def table(store_url: str) -> str:
    name = f"budgets-{uuid.uuid4().hex[:8]}"
    create_table(local_client(store_url), name)
    return name


def counted(client: Any) -> Counter[str]:
    """Count the HTTP requests (round trips, retries included) a client sends, by operation."""
    calls: Counter[str] = Counter()

    def before_send(request: Any, **_: Any) -> None:
        calls[request.headers["X-Amz-Target"].decode().split(".")[-1]] += 1

    client.meta.events.register("before-send.dynamodb", before_send)
    return calls


def budgets(
    store_url: str, table: str, clock: Clock | None = None, **config: Any
) -> tuple[Budgets, Counter[str]]:
    client = local_client(store_url)
    calls = counted(client)
    cfg = BudgetsConfig.model_validate({"table": table, **config})
    return Budgets(cfg, client=client, clock=clock or Clock()), calls


def used(store_url: str, table: str, key_id: str, sk: str, kind: str = "key") -> int:
    item = local_client(store_url).get_item(
        TableName=table, Key={"pk": {"S": f"{kind}#{key_id}"}, "sk": {"S": sk}}
    )
    return int(item.get("Item", {}).get("used", {"N": "0"})["N"])


TPM = minute_window("tpm", T0).sk
RPM = minute_window("rpm", T0).sk
DAY = "day#2026-11-30"


def test_forty_concurrent_reservations_against_a_limit_of_ten(store_url, table):
    """Forty gateway processes (own client, own memory) race; the table admits exactly ten.

    This relies on the store applying each conditional write atomically, as DynamoDB does; the
    embedded store serializes moto's requests for that (unserialized moto admitted 11-13).
    """
    contenders = [
        budgets(store_url, table, default={"tokens_per_minute": 1000})[0] for _ in range(40)
    ]
    start = threading.Barrier(40)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(b: Budgets, i: int) -> None:
        start.wait()
        try:
            b.reserve("acme", f"req-{i}", 100, stream=False)
            outcome = "ok"
        except BudgetRefusal as exc:
            assert exc.status == 429 and exc.code is ErrorCode.TOKENS_RATE_LIMITED
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(b, i)) for i, b in enumerate(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == {"ok": 10, "refused": 30}
    assert used(store_url, table, "acme", TPM) == 1000  # charged total == the limit, never more


def test_concurrent_reservations_in_one_process_share_its_memory(store_url, table):
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 1000})
    results: list[bool] = []

    def one(i: int) -> None:
        try:
            b.reserve("acme", f"r{i}", 100, stream=False)
            results.append(True)
        except BudgetRefusal:
            results.append(False)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10
    assert used(store_url, table, "acme", TPM) == 1000
    assert b.counters["BudgetRejections"] == 30 and b.counters["ReservedTokens"] == 1000


def test_refund_brings_remaining_back(store_url, table):
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 1000})
    first = b.reserve("acme", "r1", 100, stream=False)
    assert first.headers(T0)["x-ratelimit-remaining-tokens"] == "900"
    b.settle(first, input_tokens=5, generated_tokens=15, failed_before_generating=False)
    assert first.refunded_tokens == 80
    assert used(store_url, table, "acme", TPM) == 20
    second = b.reserve("acme", "r2", 100, stream=False)
    assert second.headers(T0) == {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "880",
        "x-ratelimit-reset-tokens": "50s",
    }
    assert b.counters["RefundedTokens"] == 80


def test_failed_before_generating_refunds_in_full(store_url, table):
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 1000, "requests_per_minute": 10})
    res = b.reserve("acme", "r1", 300, stream=False)
    assert res.headers(T0)["x-ratelimit-remaining-requests"] == "9"
    b.settle(res, input_tokens=None, generated_tokens=None, failed_before_generating=True)
    assert used(store_url, table, "acme", TPM) == 0
    assert used(store_url, table, "acme", RPM) == 0
    day = local_client(store_url).get_item(
        TableName=table, Key={"pk": {"S": "key#acme"}, "sk": {"S": DAY}}
    )["Item"]
    assert day["requests"] == {"N": "1"} and day["failed"] == {"N": "1"}


def test_unknown_counts_leave_the_reservation_charged(store_url, table):
    """A client that disconnected before TGI's details: the safe direction is to keep it."""
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 1000})
    res = b.reserve("acme", "r1", 300, stream=True)
    b.settle(res, input_tokens=12, generated_tokens=None, failed_before_generating=False)
    assert used(store_url, table, "acme", TPM) == 300


def test_keys_are_isolated_and_overrides_merge(store_url, table):
    b, _ = budgets(
        store_url,
        table,
        default={"tokens_per_minute": 100},
        keys={"big": {"tokens_per_minute": 10_000, "tokens_per_day": 50_000}},
    )
    b.reserve("small", "r1", 100, stream=False)
    with pytest.raises(BudgetRefusal):
        b.reserve("small", "r2", 1, stream=False)
    res = b.reserve("big", "r3", 5000, stream=False)
    assert res.headers(T0)["x-ratelimit-remaining-tokens"] == "5000"
    assert b.reserve("other", "r4", 100, stream=False).charges[0].used == 100
    assert b.limits("big") == BudgetLimits(tokens_per_minute=10_000, tokens_per_day=50_000)


def test_limits_stored_in_the_table_override_the_file_and_are_cached(store_url, table):
    client = local_client(store_url)
    write_limits(client, table, "acme", BudgetLimits(tokens_per_minute=50, requests_per_minute=3))
    clock = Clock()
    b, calls = budgets(store_url, table, clock, default={"tokens_per_minute": 1000})
    assert b.limits("acme") == BudgetLimits(tokens_per_minute=50, requests_per_minute=3)
    b.reserve("acme", "r1", 10, stream=False)
    assert calls["GetItem"] == 1  # read once, then cached
    write_limits(client, table, "acme", BudgetLimits(tokens_per_minute=70))
    assert b.limits("acme").tokens_per_minute == 50
    clock.now += 61
    # Stale now: this request still uses what was read, and the read goes on in the background.
    assert b.limits("acme").tokens_per_minute == 50
    deadline = time.monotonic() + 5
    while b.limits("acme").tokens_per_minute != 70 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.limits("acme") == BudgetLimits(tokens_per_minute=70, requests_per_minute=3)
    assert calls["GetItem"] == 2  # one refresh, however many requests asked meanwhile


def test_a_later_window_refusing_rolls_the_earlier_back(store_url, table):
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 1000, "tokens_per_day": 150})
    b.reserve("acme", "r1", 100, stream=False)
    with pytest.raises(BudgetRefusal) as refused:
        b.reserve("acme", "r2", 100, stream=False)
    assert used(store_url, table, "acme", TPM) == 100  # r2's minute charge was taken back
    err = refused.value
    assert (err.status, err.error_type, err.limit) == (429, "rate_limit", "day")
    assert err.code is ErrorCode.QUOTA_EXHAUSTED
    assert openai_error(err)[1]["error"]["type"] == "insufficient_quota"
    assert err.headers["x-should-retry"] == "false" and err.retry_after is None
    assert "tokens per day: limit 150, used 100, requested 100" in err.message
    assert "Resets in 22h59m50s (at 2026-12-01T00:00:00Z)." in err.message


def test_per_minute_refusal_is_a_rate_limit_with_retry_after(store_url, table):
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 100})
    b.reserve("acme", "r1", 80, stream=False)
    with pytest.raises(BudgetRefusal) as refused:
        b.reserve("acme", "r2", 30, stream=False)
    err = refused.value
    assert (err.code, err.retry_after) == (ErrorCode.TOKENS_RATE_LIMITED, 50)
    assert openai_error(err)[1]["error"]["type"] == "tokens"
    assert err.headers == {
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "20",
        "x-ratelimit-reset-tokens": "50s",
        "retry-after-ms": "50000",
    }
    assert (err.status, err.error_type) == (429, "rate_limit")  # TGI dialect: error_type
    assert openai_error(err) == (
        429,
        {
            "error": {
                "message": err.message,
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
    )
    assert "limit 100, used 80, requested 30. Resets in 50s (at " in err.message


def test_requests_per_minute_refusal_names_requests(store_url, table):
    b, _ = budgets(store_url, table, default={"requests_per_minute": 1})
    b.reserve("acme", "r1", 10, stream=False)
    with pytest.raises(BudgetRefusal) as refused:
        b.reserve("acme", "r2", 10, stream=False)
    assert refused.value.code is ErrorCode.REQUESTS_RATE_LIMITED
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"


def test_exhausted_key_is_refused_from_memory_until_recheck(store_url, table):
    clock = Clock()
    b, calls = budgets(store_url, table, clock, default={"tokens_per_minute": 100})
    b.reserve("acme", "r1", 100, stream=False)
    with pytest.raises(BudgetRefusal):
        b.reserve("acme", "r2", 10, stream=False)
    before = sum(calls.values())
    for i in range(20):
        with pytest.raises(BudgetRefusal) as refused:
            b.reserve("acme", f"again-{i}", 10, stream=False)
    assert sum(calls.values()) == before  # no round trip at all
    assert "used 100, requested 10" in refused.value.message
    clock.now += b.memory.recheck_seconds
    with pytest.raises(BudgetRefusal):
        b.reserve("acme", "r3", 10, stream=False)
    assert calls["UpdateItem"] > 0 and sum(calls.values()) == before + 1  # asked the store once


def test_a_refund_in_this_process_lifts_the_memory(store_url, table):
    b, _ = budgets(store_url, table, default={"tokens_per_minute": 100})
    res = b.reserve("acme", "r1", 100, stream=False)
    with pytest.raises(BudgetRefusal):
        b.reserve("acme", "r2", 50, stream=False)
    b.settle(res, input_tokens=10, generated_tokens=10, failed_before_generating=False)
    b.reserve("acme", "r3", 50, stream=False)


def test_a_request_larger_than_the_limit_is_refused_without_the_store(store_url, table):
    b, calls = budgets(store_url, table, default={"tokens_per_minute": 100})
    b.limits("acme")
    before = sum(calls.values())
    with pytest.raises(BudgetRefusal) as refused:
        b.reserve("acme", "r1", 101, stream=False)
    assert sum(calls.values()) == before
    assert refused.value.message.startswith("Request too large for key acme on tokens per minute")
    assert refused.value.headers["x-should-retry"] == "false"


def test_settle_is_idempotent_when_called_again(store_url, table):
    b, calls = budgets(store_url, table, default={"tokens_per_minute": 1000})
    res = b.reserve("acme", "r1", 100, stream=False)
    b.settle(res, input_tokens=10, generated_tokens=10, failed_before_generating=False)
    writes = calls["TransactWriteItems"]
    b.settle(res, input_tokens=10, generated_tokens=10, failed_before_generating=False)
    assert calls["TransactWriteItems"] == writes
    # Another process retrying the same reconcile (same ledger id) changes nothing either.
    other, _ = budgets(store_url, table, default={"tokens_per_minute": 1000})
    replay = copy.copy(res)
    replay.settled = False
    other.settle(replay, input_tokens=10, generated_tokens=10, failed_before_generating=False)
    assert used(store_url, table, "acme", TPM) == 20
    day = local_client(store_url).get_item(
        TableName=table, Key={"pk": {"S": "key#acme"}, "sk": {"S": DAY}}
    )["Item"]
    assert day["requests"] == {"N": "1"} and day["generated_tokens"] == {"N": "10"}


def test_settle_is_idempotent_under_a_retried_write(store_url, table):
    """botocore resends a TransactWriteItems that had succeeded (its answer was 'lost')."""
    b, calls = budgets(
        store_url, table, default={"tokens_per_minute": 1000, "tokens_per_day": 10**6}
    )
    res = b.reserve("acme", "r1", 100, stream=False)
    retried: list[bool] = []

    def lose_first_answer(attempts: int, **_: Any) -> float | None:
        if not retried:
            retried.append(True)
            return 0.0  # retry at once, as after a connection reset
        return None

    b.client.meta.events.register("needs-retry.dynamodb.TransactWriteItems", lose_first_answer)
    b.settle(res, input_tokens=30, generated_tokens=20, failed_before_generating=False)
    assert calls["TransactWriteItems"] == 2 and retried
    assert used(store_url, table, "acme", TPM) == 50
    assert used(store_url, table, "acme", DAY) == 50
    assert b.counters["BudgetStoreErrors"] == 0


def test_daily_totals_are_recorded_for_every_key(store_url, table):
    b, _ = budgets(store_url, table, keys={"limited": {"tokens_per_day": 1000}})
    free = b.reserve("free", "r1", 100, stream=False)  # no limits: nothing reserved
    assert free.charges == [] and free.headers() == {} and not free.budgeted
    b.settle(free, input_tokens=7, generated_tokens=9, failed_before_generating=False)
    b.settle(
        b.reserve("free", "r2", 100, stream=False),
        input_tokens=3,
        generated_tokens=1,
        failed_before_generating=False,
    )
    day = local_client(store_url).get_item(
        TableName=table, Key={"pk": {"S": "key#free"}, "sk": {"S": DAY}}
    )["Item"]
    assert (day["requests"], day["input_tokens"], day["generated_tokens"]) == (
        {"N": "2"},
        {"N": "10"},
        {"N": "10"},
    )
    assert "used" not in day


def test_concurrent_streams(store_url, table):
    clock = Clock()
    b, _ = budgets(store_url, table, clock, default={"max_concurrent_streams": 2})
    one = b.reserve("acme", "s1", 10, stream=True)
    b.reserve("acme", "s2", 10, stream=True)
    b.reserve("acme", "buffered", 10, stream=False)  # only streams hold a slot
    with pytest.raises(BudgetRefusal) as refused:
        b.reserve("acme", "s3", 10, stream=True)
    assert refused.value.limit == "streams" and refused.value.retry_after == 1
    b.settle(one, input_tokens=1, generated_tokens=1, failed_before_generating=False)
    b.reserve("acme", "s4", 10, stream=True)
    assert used(store_url, table, "acme", "streams") == 2


def test_a_dead_processs_stream_slot_returns_within_a_minute(store_url, table):
    """Slots are leases of a minute: a process that died mid-stream (never settles, never
    renews) gives its slot back once the lease runs out; a live stream renews its own."""
    clock = Clock()
    dead, _ = budgets(store_url, table, clock, default={"max_concurrent_streams": 2})
    alive, _ = budgets(store_url, table, clock, default={"max_concurrent_streams": 2})
    dead.reserve("acme", "d1", 10, stream=True)
    kept = alive.reserve("acme", "a1", 10, stream=True)
    with pytest.raises(BudgetRefusal):
        alive.reserve("acme", "a2", 10, stream=True)
    clock.now += 40
    alive.renew_leases()  # the keeper thread does this every 20 s
    clock.now += 21  # the dead one's lease has run out, the live one's has not
    replacement = alive.reserve("acme", "a3", 10, stream=True)
    assert used(store_url, table, "acme", "streams") == 2
    with pytest.raises(BudgetRefusal):  # the live stream's slot was not taken
        alive.reserve("acme", "a4", 10, stream=True)
    for res in (kept, replacement):
        alive.settle(res, input_tokens=1, generated_tokens=1, failed_before_generating=False)
    assert used(store_url, table, "acme", "streams") == 0
    item = local_client(store_url).get_item(
        TableName=table, Key={"pk": {"S": "key#acme"}, "sk": {"S": "streams"}}
    )["Item"]
    assert not [name for name in item if name.startswith("lease_")]  # nothing left behind


def test_fixed_windows_admit_twice_a_minute_limit_across_a_boundary(store_url, table):
    """The documented edge of fixed windows: a key that spends its whole per-minute limit in
    the last second of a minute can spend it again in the first second of the next."""
    clock = Clock(T0 + 49.5)  # 01:00:59.5
    b, _ = budgets(store_url, table, clock, default={"tokens_per_minute": 100})
    b.reserve("acme", "r1", 100, stream=False)
    with pytest.raises(BudgetRefusal):
        b.reserve("acme", "r2", 1, stream=False)
    clock.now += 1.0  # 01:01:00.5: one second later, a new window
    b.reserve("acme", "r3", 100, stream=False)
    spent = used(store_url, table, "acme", TPM) + used(
        store_url, table, "acme", minute_window("tpm", clock.now).sk
    )
    assert spent == 200  # twice the limit within one second: the worst case, and no more
    with pytest.raises(BudgetRefusal):
        b.reserve("acme", "r4", 1, stream=False)


def test_a_user_and_their_tenant_are_reserved_together(store_url, table):
    b, calls = budgets(
        store_url,
        table,
        user_default={"tokens_per_minute": 300},
        tenants={"default": {"tokens_per_minute": 500}, "big": {"tokens_per_day": 10**6}},
    )
    alice, bob = Subject("user", "alice"), Subject("user", "bob")
    acme = Subject("tenant", "acme")
    b.limits_of([alice, acme])
    assert calls["BatchGetItem"] == 1 and calls["GetItem"] == 0  # both overrides, one trip
    calls.clear()
    res = b.reserve_for([alice, acme], "r1", 300, stream=False)
    assert calls == {"UpdateItem": 2}  # one conditional write per limited window
    assert [c.used for c in res.charges] == [300, 300]
    with pytest.raises(BudgetRefusal) as by_user:
        b.reserve_for([alice, acme], "r2", 10, stream=False)
    assert by_user.value.subject == alice
    assert by_user.value.message.startswith("Budget reached for user alice on tokens per minute")
    b.reserve_for([bob, acme], "r3", 200, stream=False)
    with pytest.raises(BudgetRefusal) as by_tenant:
        b.reserve_for([Subject("user", "carol"), acme], "r4", 10, stream=False)
    assert by_tenant.value.message.startswith("Budget reached for tenant acme on tokens per minute")
    # All or nothing: carol's own window took 10 and gave them back when the tenant refused.
    assert used(store_url, table, "carol", TPM, kind="user") == 0
    b.settle(res, input_tokens=10, generated_tokens=20, failed_before_generating=False)
    assert used(store_url, table, "alice", TPM, kind="user") == 30
    assert used(store_url, table, "acme", TPM, kind="tenant") == 230
    for pk in ("user#alice", "tenant#acme"):  # both subjects' days record the totals
        day = local_client(store_url).get_item(
            TableName=table, Key={"pk": {"S": pk}, "sk": {"S": DAY}}
        )["Item"]
        assert (day["input_tokens"], day["generated_tokens"]) == ({"N": "10"}, {"N": "20"})


def test_per_user_overrides_are_stored_in_the_table(store_url, table):
    write_limits(
        local_client(store_url),
        table,
        "",
        BudgetLimits(tokens_per_day=50),
        subject=Subject("user", "u1"),
    )
    b, _ = budgets(store_url, table, user_default={"tokens_per_day": 1000})
    assert b.limits_of([Subject("user", "u1"), Subject("user", "u2")]) == [
        BudgetLimits(tokens_per_day=50),
        BudgetLimits(tokens_per_day=1000),
    ]


def test_store_down_allow_serves_and_counts(store_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once the socket is closed
    seen: list[tuple[str, int, str]] = []
    cfg = BudgetsConfig(default=BudgetLimits(tokens_per_minute=10))
    b = Budgets(
        cfg,
        client=local_client(f"http://127.0.0.1:{closed}"),
        on_metric=lambda *event: seen.append(event),
    )
    started = time.monotonic()
    res = b.reserve("acme", "r1", 5, stream=True)
    assert res.admitted_without_store and res.store_errors == 1 and res.headers() == {}
    b.settle(res, input_tokens=1, generated_tokens=1, failed_before_generating=False)  # no raise
    assert time.monotonic() - started < 5
    assert ("BudgetStoreErrors", 1, "acme") in seen
    assert b.counters["BudgetStoreErrors"] == 3  # limits read, reserve, settle


def test_store_down_deny_refuses_with_503(store_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    cfg = BudgetsConfig(on_store_error="deny", default=BudgetLimits(tokens_per_minute=10))
    b = Budgets(cfg, client=local_client(f"http://127.0.0.1:{closed}"))
    with pytest.raises(BudgetRefusal) as refused:
        b.reserve("acme", "r1", 5, stream=False)
    err = refused.value
    assert (err.status, err.error_type, err.code) == (
        503,
        "unavailable",
        ErrorCode.BUDGET_STORE_UNAVAILABLE,
    )
    assert err.retry_after == 5


def test_store_down_logs_key_ids_only(store_url, caplog):
    cfg = BudgetsConfig(default=BudgetLimits(tokens_per_minute=10))
    b = Budgets(cfg, client=local_client("http://127.0.0.1:9"))
    with caplog.at_level("WARNING", logger="llm_gateway.budgets"):
        b.reserve("acme-id", "r1", 5, stream=False)
    assert "key acme-id" in caplog.text and "on_store_error=allow" in caplog.text


def test_round_trips_per_request(store_url, table):
    """What the docs promise: per request, one write per limited window, one transaction."""
    b, calls = budgets(
        store_url, table, default={"tokens_per_minute": 10**5, "tokens_per_day": 10**6}
    )
    b.limits("acme")  # the override read, once per key per minute and process
    calls.clear()
    res = b.reserve("acme", "r1", 100, stream=False)
    b.settle(res, input_tokens=10, generated_tokens=10, failed_before_generating=False)
    assert calls == {"UpdateItem": 2, "TransactWriteItems": 1}


def test_config_is_strict():
    with pytest.raises(ValueError):
        BudgetsConfig.model_validate({"default": {"tokens_per_minute": True}})
    with pytest.raises(ValueError):
        BudgetsConfig.model_validate({"default": {"tokens_per_minute": 0}})
    with pytest.raises(ValueError):
        BudgetsConfig.model_validate({"default": {"tokens_per_hour": 5}})
    with pytest.raises(ValueError):
        BudgetsConfig.model_validate({"on_store_error": "maybe"})
    cfg = BudgetsConfig.model_validate(
        {
            "default": {"tokens_per_minute": 5, "tokens_per_day": 9},
            "keys": {"a": {"tokens_per_day": 7}},
        }
    )
    assert cfg.limits_for("a") == BudgetLimits(tokens_per_minute=5, tokens_per_day=7)
    assert cfg.limits_for("b") == BudgetLimits(tokens_per_minute=5, tokens_per_day=9)
    assert cfg.on_store_error == "allow" and cfg.table == "llm-gateway-budgets"


def test_embedded_store_creates_the_stacks_schema():
    from llm_gateway.budgets.local import start_embedded_store

    url, stop = start_embedded_store("llm-gateway-budgets")
    try:
        client = local_client(url)
        table = client.describe_table(TableName="llm-gateway-budgets")["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
            "pk": "HASH",
            "sk": "RANGE",
        }
        ttl = client.describe_time_to_live(TableName="llm-gateway-budgets")
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
        b = Budgets(BudgetsConfig(default=BudgetLimits(tokens_per_day=10)), client=client)
        assert (
            b.reserve("k", "r", 10, stream=False).headers()["x-ratelimit-remaining-tokens"] == "0"
        )
    finally:
        stop()
