"""SPEC §5.4's budget invariants, each over HTTP against moto's server with real boto3, and
counted at the emulator (a refused request makes no SageMaker call):

1. reserve, then call: a refused request never reaches the model, however many arrive at once
   and whether or not the key's limits are cached;
2. reserve everything: ``n``, ``best_of``, tool definitions, no ``max_tokens`` (the model's own
   limit), on both backends; a reservation alone over a limit is 429 at once;
3. deadline and disconnect: charged for what the model generated, or the reservation kept;
   never refunded in full; the in-flight slot is held until the upstream call returns.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from llm_gateway.budgets.windows import day_window
from llm_gateway.config import Settings
from llm_gateway.core.admission import Usage
from llm_gateway.core.events import BestOfSequence, Details
from llm_gateway.core.generation import PreparedRequest, buffered_usage
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Generated
from llm_gateway.core.tokenizer import estimate_tokens
from tests.budgeting import ACME, BETA, KEYS, PROMPT, DelayProxy

CHAT = [{"role": "user", "content": "Hi"}]


def post(url: str, path: str, body: dict[str, Any], headers: dict[str, str] = ACME) -> Any:
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=30)


# Every route, dialect, mode and backend a budgeted request can take.
ROUTES = {
    "tgi buffered": ("/models/b-tgi/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}}, "budget-tgi"),
    "tgi stream": ("/models/b-tgi/generate_stream", {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}}, "budget-tgi"),
    "tgi on vllm": ("/models/b-vllm/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}}, "budget-vllm"),
    "chat template": ("/v1/chat/completions", {"model": "b-tgi", "messages": CHAT, "max_tokens": 5}, "budget-tgi"),
    "chat template stream": ("/v1/chat/completions", {"model": "b-tgi", "messages": CHAT, "max_tokens": 5, "stream": True}, "budget-tgi"),
    "chat relay": ("/v1/chat/completions", {"model": "b-vllm", "messages": CHAT, "max_tokens": 5}, "budget-vllm"),
    "chat relay stream": ("/v1/chat/completions", {"model": "b-vllm", "messages": CHAT, "max_tokens": 5, "stream": True}, "budget-vllm"),
    "completions": ("/v1/completions", {"model": "b-tgi", "prompt": PROMPT, "max_tokens": 5}, "budget-tgi"),
    "responses": ("/v1/responses", {"model": "b-tgi", "input": "Hi", "max_output_tokens": 16}, "budget-tgi"),
    "anthropic": ("/v1/messages", {"model": "b-tgi", "messages": CHAT, "max_tokens": 5}, "budget-tgi"),
    "anthropic on vllm": ("/v1/messages", {"model": "b-vllm", "messages": CHAT, "max_tokens": 5, "stream": True}, "budget-vllm"),
}  # fmt: skip


@pytest.mark.parametrize("route", list(ROUTES))
def test_an_exhausted_keys_burst_never_reaches_the_model(budgeted, route):
    """Other processes spent the day (written straight into the table): this gateway has no
    cached limits and no memory of the key, and 20 requests arrive at once."""
    path, body, endpoint = ROUTES[route]
    gw = budgeted(default={"tokens_per_day": 1000})
    day = day_window(time.time()).sk
    gw.charge("key#acme", day, 1000)
    calls = gw.calls(endpoint)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(gw.url, path, body), range(20)))
    assert [r.status_code for r in answers] == [429] * 20
    assert all("Budget reached for key acme on tokens per day" in r.text for r in answers)
    assert gw.calls(endpoint) == calls  # not one SageMaker call
    # Again, now that the key is remembered as exhausted: refused from memory, still no call.
    with ThreadPoolExecutor(20) as pool:
        again = list(pool.map(lambda _: post(gw.url, path, body), range(20)))
    assert [r.status_code for r in again] == [429] * 20
    assert gw.calls(endpoint) == calls
    assert gw.used("key#acme", "day") == 1000  # refusals charge nothing


@pytest.mark.parametrize("route", [r for r in ROUTES if ROUTES[r][1].get("stream") or "stream" in r])  # fmt: skip
def test_a_slow_store_still_answers_a_refused_stream_with_429(budgeted, store_server, route):
    """A stream commits (200) once its first token or the commit window comes, but the window
    starts only once the budget is reserved: with a store slower than the window, a refusal
    is still a 429 with no model call, and an admitted stream still streams."""
    path, body, endpoint = ROUTES[route]
    proxy = DelayProxy(store_server, 0.15)  # each store call takes longer than the window
    try:
        gw = budgeted(
            Settings(api_keys=KEYS, stream_commit_seconds=0.01),
            url=proxy.url,
            default={"tokens_per_day": 1000},
            keys={"beta": {"tokens_per_day": 100_000}},
        )
        gw.charge("key#acme", day_window(time.time()).sk, 1000)
        calls = gw.calls(endpoint)
        refused = post(gw.url, path, body)
        assert refused.status_code == 429, refused.text
        assert gw.calls(endpoint) == calls  # no SageMaker call
        admitted = post(gw.url, path, body, BETA)
        assert admitted.status_code == 200 and b"data:" in admitted.content
        assert gw.calls(endpoint) == calls + 1
        assert proxy.calls > 0  # the store was behind the slow proxy
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("path", "body", "endpoint"),
    [
        ("/models/b-tgi/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 100}}, "budget-tgi"),
        ("/v1/chat/completions", {"model": "b-vllm", "messages": CHAT, "max_tokens": 100}, "budget-vllm"),
        ("/v1/chat/completions", {"model": "b-vllm", "messages": CHAT, "max_tokens": 100, "stream": True}, "budget-vllm"),
    ],
)  # fmt: skip
def test_a_first_request_too_large_makes_no_model_call(budgeted, path, body, endpoint):
    gw = budgeted(default={"tokens_per_minute": 50})  # nothing cached yet: the first request
    calls = gw.calls(endpoint)
    r = post(gw.url, path, body)
    assert r.status_code == 429 and r.headers["x-should-retry"] == "false"
    assert "Request too large for key acme on tokens per minute" in r.text
    assert gw.calls(endpoint) == calls
    assert gw.items("key#acme").keys() <= {"limits"}  # nothing was charged or recorded


def test_best_of_reserves_every_sequence(budgeted):
    gw = budgeted(default={"tokens_per_minute": 1000})
    body = {
        "inputs": PROMPT,
        "parameters": {"max_new_tokens": 10, "best_of": 2, "do_sample": True, "details": True},
    }
    r = post(gw.url, "/models/b-tgi/generate", body)
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-remaining-tokens"] == str(1000 - (1 + 2 * 10))
    details = r.json()["details"]
    sequences = [details, *details["best_of_sequences"]]
    generated = sum(s["generated_tokens"] for s in sequences)
    assert len(sequences) == 2
    totals = gw.settled("key#acme", 1)
    assert totals["generated_tokens"] == generated  # both sequences are charged
    assert gw.used("key#acme", "tpm") == 1 + generated


def test_n_choices_reserve_n_times_and_the_whole_body_is_estimated(budgeted):
    gw = budgeted(default={"tokens_per_minute": 1000})
    body = {"model": "b-vllm", "messages": CHAT, "max_tokens": 10, "n": 3}
    r = post(gw.url, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    prompt = estimate_tokens(json.dumps(body, ensure_ascii=False))  # docs/budgets.md's rule
    assert r.headers["x-ratelimit-remaining-tokens"] == str(1000 - (prompt + 3 * 10))
    usage = r.json()["usage"]
    assert len(r.json()["choices"]) == 3
    gw.settled("key#acme", 1)
    assert gw.used("key#acme", "tpm") == usage["prompt_tokens"] + usage["completion_tokens"]


TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": " ".join(["Look the answer up in the archive first."] * 200),  # ~1,600
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


LONG_SYSTEM = [{"role": "system", "content": TOOL["function"]["description"]}, *CHAT]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": TOOL["function"]}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("model", "endpoint", "extras"),
    [
        # an OpenAI server (vLLM): tool definitions, response_format schemas, system text
        ("b-vllm", "budget-vllm", [{"tools": [TOOL]}, {"response_format": SCHEMA}]),
        ("b-vllm", "budget-vllm", [{"messages": LONG_SYSTEM}]),
        ("b-tgi-chat", "budget-tgi", [{"messages": LONG_SYSTEM}]),  # TGI's Messages API
    ],
)
def test_tool_definitions_schemas_and_system_text_are_reserved(
    budgeted, stream, model, endpoint, extras
):
    """Chat requests relayed as they are, on both backends that take them: what they send
    besides the user's words counts."""
    gw = budgeted(default={"tokens_per_minute": 1000})
    calls = gw.calls(endpoint)
    body = {"model": model, "messages": CHAT, "max_tokens": 10, "stream": stream}
    assert post(gw.url, "/v1/chat/completions", body).status_code == 200
    for extra in extras:
        larger = post(gw.url, "/v1/chat/completions", {**body, **extra})
        assert larger.status_code == 429 and "Request too large" in larger.text, larger.text
    assert gw.calls(endpoint) == calls + 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/models/b-tgi/generate", {"inputs": PROMPT}),
        ("/v1/chat/completions", {"model": "b-vllm", "messages": CHAT}),
    ],
)
def test_without_max_tokens_the_models_own_limit_is_reserved(budgeted, path, body):
    gw = budgeted(default={"tokens_per_day": 10_000})
    r = post(gw.url, path, body)
    assert r.status_code == 200, r.text
    # prompt + (max_total_tokens - prompt): the model's whole context, 2048 by default
    assert r.headers["x-ratelimit-remaining-tokens"] == str(10_000 - 2048)
    small = budgeted(default={"tokens_per_day": 2000})
    calls = small.calls("budget-tgi") + small.calls("budget-vllm")
    assert post(small.url, path, body).status_code == 429
    assert small.calls("budget-tgi") + small.calls("budget-vllm") == calls


def test_a_deadline_charges_what_the_model_generated(budgeted):
    """The 504 goes out at the deadline; SageMaker finishes the generation anyway, and the
    key pays for it once the call returns: not the reservation, and never nothing."""
    gw = budgeted(
        settings=Settings(api_keys=KEYS, request_timeout=1.0),
        default={"tokens_per_minute": 1000},
    )
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 200}}
    r = post(gw.url, "/models/b-late/generate", body)
    assert r.status_code == 504
    totals = gw.settled("key#acme", 1)
    assert (totals["input_tokens"], totals["generated_tokens"]) == (1, 13)
    assert gw.used("key#acme", "tpm") == 14


def test_the_in_flight_slot_is_held_until_the_upstream_call_returns(budgeted):
    """A cap of 2 and generations that outlive the 1 s deadline: at no time do more than two
    upstream calls run, although the clients got their 504s."""
    gw = budgeted(
        settings=Settings(api_keys=KEYS, request_timeout=1.0, max_concurrent_requests=2),
        default={"tokens_per_day": 10**6},
    )
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}}
    calls = gw.calls("budget-late")
    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(lambda _: post(gw.url, "/models/b-late/generate", body), range(8)))
    assert sorted(r.status_code for r in first) == [429] * 6 + [504] * 2
    # The two calls still run upstream (4 s): their slots are not free yet.
    later = [post(gw.url, "/models/b-late/generate", body) for _ in range(6)]
    assert [r.status_code for r in later] == [429] * 6
    assert all(r.json()["error_type"] == "overloaded" for r in later)
    assert gw.calls("budget-late") == calls + 2
    gw.settled("key#acme", 2)  # the calls returned and settled: the slots come back
    deadline = time.monotonic() + 10
    while (r := post(gw.url, "/models/b-tgi/generate", body)).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)


def test_an_abandoned_stream_keeps_its_reservation(budgeted):
    """docs/budgets.md: a stream the client leaves before its end is charged its whole
    reservation (what the model went on to generate is unknown)."""
    gw = budgeted(default={"tokens_per_minute": 1000})
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 100}}
    with httpx.stream(
        "POST", f"{gw.url}/models/b-paced/generate_stream", json=body, headers=ACME, timeout=30
    ) as r:
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data:")
            if seen == 3:
                break
    totals = gw.settled("key#acme", 1)
    assert totals.get("failed", 0) == 0
    assert gw.used("key#acme", "tpm") == 101  # 1 prompt token + 100 reserved, none refunded


def test_what_a_buffered_generation_used_is_read_from_its_answer():
    """``buffered_usage``: nothing when the model never answered (refunded); the answer's own
    counts (every best_of sequence too, the prompt estimated when the upstream did not count
    it); unknown (the reservation stays charged) for an answer without counts or a call
    that ran out of time after the model may have generated it all."""
    request = PreparedRequest(
        model=None,  # type: ignore[arg-type]  # usage reads only the prompt
        inputs=PROMPT,
        parameters=GenerateParameters(),
        stream=False,
        body=b"",
    )
    counted = Details(generated_tokens=5, input_length=9)
    uncounted_prompt = Details(
        generated_tokens=5, best_of_sequences=(BestOfSequence(None, generated_tokens=4),)
    )
    assert buffered_usage(request, None, answered=False) == Usage(0, 0, False)
    assert buffered_usage(request, None, answered=True) == Usage(None, None, True)
    assert buffered_usage(request, Generated("x", None), True) == Usage(None, None, True)
    assert buffered_usage(request, Generated("x", counted), True) == Usage(9, 5, True)
    assert buffered_usage(request, Generated("x", uncounted_prompt), True) == Usage(
        estimate_tokens(PROMPT), 9, True
    )
