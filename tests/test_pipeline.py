"""One pipeline for chat-shaped dialects (core/pipeline.py): the same conversation sent through
OpenAI's chat completions, the Responses API and Anthropic's Messages API reaches the model as
the same prompt with the same stop sequences — the client's, else the model's defaults, then
its template's — because all three run the one function that decides them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from llm_gateway.config import Settings
from tests.conftest import gateway_config

ENDPOINT = "tgi3-endpoint"
# llama2's template stops are "</s>" and "[INST]"; the model's configured default is "###".
MODELS = [
    {
        "name": "stopper",
        "endpoint": ENDPOINT,
        "template": "llama2",
        "defaults": {"stop": ["###"]},
    }
]


@pytest.fixture(scope="module")
def client(start_gateway: Callable[..., str]) -> Iterator[httpx.Client]:
    url = start_gateway(gateway_config(MODELS, default="stopper"), Settings())
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _requests(stop: list[str] | None) -> dict[str, dict[str, Any]]:
    """The same two-turn conversation in each dialect's words."""
    system, user = "Be brief.", "Say hi"
    chat: dict[str, Any] = {
        "model": "stopper",
        "max_tokens": 4,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }
    responses: dict[str, Any] = {
        "model": "stopper",
        "max_output_tokens": 4,
        "instructions": system,
        "input": user,
    }
    messages: dict[str, Any] = {
        "model": "stopper",
        "max_tokens": 4,
        "system": system,
        "messages": [{"role": "user", "content": user}],
    }
    if stop is not None:
        chat["stop"] = stop
        messages["stop_sequences"] = stop
    return {"/v1/chat/completions": chat, "/v1/responses": responses, "/v1/messages": messages}


def _sent(client: httpx.Client, emulator: Any, path: str, body: dict[str, Any]) -> Any:
    before = (
        emulator.stats_for(ENDPOINT).recent[-1] if emulator.stats_for(ENDPOINT).recent else None
    )
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    last = emulator.stats_for(ENDPOINT).recent[-1]
    assert last is not before  # the request reached the model
    return orjson.loads(last["body"])


def test_every_chat_dialect_sends_the_model_default_stops_then_the_template_ones(client, emulator):
    sent = {p: _sent(client, emulator, p, b) for p, b in _requests(None).items()}
    prompts = {p: s["inputs"] for p, s in sent.items()}
    stops = {p: s["parameters"]["stop"] for p, s in sent.items()}
    assert set(prompts.values()) == {"[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nSay hi [/INST]"}
    assert all(s == ["###", "</s>", "[INST]"] for s in stops.values()), stops


def test_the_client_stops_replace_the_defaults_and_keep_the_template_ones(client, emulator):
    requests = _requests(["END"])
    del requests["/v1/responses"]  # the Responses API has no stop parameter
    for path, body in requests.items():
        assert _sent(client, emulator, path, body)["parameters"]["stop"] == [
            "END",
            "</s>",
            "[INST]",
        ], path
