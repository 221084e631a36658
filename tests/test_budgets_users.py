"""Per-user and per-tenant budgets (SPEC §5.4, issue 20): signed-in users' tokens from a real
local issuer, over HTTP, with the table in moto's server read back after each scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from llm_gateway.config import Settings
from tests.budgeting import PROMPT
from tests.issuer import AUDIENCE, Issuer, standard_issuer

BODY = {"inputs": PROMPT, "parameters": {"max_new_tokens": 9}}  # reserves 1 + 9 = 10 tokens


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = standard_issuer()
    yield issuer
    issuer.stop()


def signed_in(budgeted, issuer: Issuer, **budgets: object):
    jwt = {"issuer": issuer.url, "audience": [AUDIENCE], "tenant_claim": "org"}
    return budgeted(settings=Settings(), config_extra={"auth": {"jwt": jwt}}, **budgets)


def as_user(issuer: Issuer, sub: str, org: str = "acme") -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(sub=sub, org=org)}"}


def test_forty_concurrent_requests_of_one_tenant_never_overspend_it(budgeted, issuer):
    """Eight users of tenant acme, five requests each, all at once; each user could afford
    all five, the tenant only ten requests in total."""
    gw = signed_in(
        budgeted,
        issuer,
        user_default={"tokens_per_day": 1000},
        tenants={"default": {"tokens_per_day": 100}},  # a minute could turn over meanwhile
    )
    users = [f"user-{i}" for i in range(8)]
    headers = {u: as_user(issuer, u) for u in users}
    calls = gw.calls("budget-slow")

    def call(i: int) -> tuple[str, httpx.Response]:
        user = users[i % 8]
        url = f"{gw.url}/models/b-slow/generate"
        return user, httpx.post(url, json=BODY, headers=headers[user], timeout=30)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(call, range(40)))
    statuses = Counter(r.status_code for _, r in answers)
    assert statuses == {200: 10, 429: 30}, gw.items("tenant#acme")
    assert gw.calls("budget-slow") == calls + 10
    for _, r in answers:
        if r.status_code == 429:
            assert r.json()["error"].startswith("Budget reached for tenant acme on tokens per")
    tenant = gw.settled("tenant#acme", 10)
    assert tenant["requests"] == 10
    assert tenant["used"] == 100  # exactly the limit, never more
    per_user = {u: gw.used(f"user#{u}", "day") for u in users}
    admitted = Counter(u for u, r in answers if r.status_code == 200)
    assert per_user == {u: 10 * admitted[u] for u in users}  # nothing charged to a refused one


def test_refusals_name_the_limit_that_ran_out(budgeted, issuer):
    gw = signed_in(
        budgeted,
        issuer,
        user_default={"tokens_per_minute": 15},
        tenants={"default": {"tokens_per_minute": 25}, "solo": {"tokens_per_minute": 1000}},
    )
    url = f"{gw.url}/models/b-tgi/generate"
    assert httpx.post(url, json=BODY, headers=as_user(issuer, "alice")).status_code == 200
    calls = gw.calls("budget-tgi")
    by_user = httpx.post(url, json=BODY, headers=as_user(issuer, "alice"))
    assert by_user.status_code == 429
    assert by_user.json()["error"].startswith(
        "Budget reached for user alice on tokens per minute: limit 15, used 10, requested 10."
    )
    assert httpx.post(url, json=BODY, headers=as_user(issuer, "bob")).status_code == 200
    by_tenant = httpx.post(url, json=BODY, headers=as_user(issuer, "carol"))
    assert by_tenant.status_code == 429
    assert by_tenant.json()["error"].startswith(
        "Budget reached for tenant acme on tokens per minute: limit 25, used 20, requested 10."
    )
    chat = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "b-tgi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9},
        headers=as_user(issuer, "carol"),
    )
    # Its rendered prompt makes it larger than a user may ever spend in a minute: that is said.
    assert chat.status_code == 429
    assert chat.json()["error"]["message"].startswith("Request too large for user carol")
    assert gw.calls("budget-tgi") == calls + 1  # only bob's request reached the model
    # Another tenant's users are not held back by acme's limit.
    assert httpx.post(url, json=BODY, headers=as_user(issuer, "dan", "solo")).status_code == 200
    assert gw.used("user#carol", "tpm") == 0  # all or nothing: carol's window gave its 10 back


def cli(gw, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=gw.store, AWS_DEFAULT_REGION="us-east-1")
    env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    return subprocess.run(
        [sys.executable, "-m", "llm_gateway", *args, "--table", gw.table],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_users_update_stores_an_override_and_usage_reports_users_and_tenants(budgeted, issuer):
    gw = signed_in(
        budgeted,
        issuer,
        user_default={"tokens_per_minute": 1000},
        tenants={"default": {"tokens_per_day": 10**6}},
    )
    done = cli(gw, "users", "update", "--user", "erin", "--tokens-per-minute", "5")
    assert done.returncode == 0, done.stderr
    assert "Budgets of user erin" in done.stdout and "tokens per minute 5" in done.stdout
    shown = cli(gw, "users", "show", "--user", "erin")
    assert "tokens per minute 5" in shown.stdout
    url = f"{gw.url}/models/b-tgi/generate"
    refused = httpx.post(url, json=BODY, headers=as_user(issuer, "erin"))
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Request too large for user erin on tokens per")
    assert httpx.post(url, json=BODY, headers=as_user(issuer, "frank")).status_code == 200
    gw.settled("tenant#acme", 1)
    report = cli(gw, "usage", "--format", "json")
    assert report.returncode == 0, report.stderr
    rows = {r["key_id"]: r for r in json.loads(report.stdout)}
    assert rows.keys() == {"user:frank", "tenant:acme"}
    assert rows["user:frank"]["generated_tokens"] == rows["tenant:acme"]["generated_tokens"] == 9
    assert rows["user:frank"]["share"] == 1.0  # the tenant's row is not counted twice
