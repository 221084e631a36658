"""Regression tests for issue 12 items already fixed without a test: TGI's placeholder model
names (1), OpenAI routes under a model's base URL (2), error bodies that never leak account ids,
ARNs or tracebacks (7), and bodies not declared JSON refused with 415 in each dialect (9)."""

from __future__ import annotations

import httpx
import orjson
import pytest
from huggingface_hub import InferenceClient

from llm_gateway.emulator.wire import ACCOUNT
from tests.conftest import sse_events

HI = [{"role": "user", "content": "Hello there"}]
CHAT = {"messages": HI, "max_tokens": 3}
GEN = {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}

# -- 1. TGI's placeholder model names mean the default model ---------------------------------


@pytest.mark.parametrize("name", ["tgi", "dummy", "", "https://example.com/models/foo"])
def test_placeholder_model_names_mean_the_default_model(client, name):
    r = client.post("/v1/chat/completions", json={**CHAT, "model": name})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "tgi3"  # the fixture's default model
    r = client.post("/v1/completions", json={"model": name, "prompt": "Hi", "max_tokens": 2})
    assert r.status_code == 200 and r.json()["model"] == "tgi3"


def test_placeholder_names_in_tgi_paths(client):
    for name in ("tgi", "dummy"):
        r = client.post(f"/models/{name}/generate", json=GEN)
        assert r.status_code == 200 and r.json()["generated_text"]
        assert client.get(f"/models/{name}/info").json()["model_id"] == "test/tgi3"


def test_other_unknown_names_stay_404(client):
    r = client.post("/v1/chat/completions", json={**CHAT, "model": "tgi-large"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = client.post("/models/nope/generate", json=GEN)
    assert r.status_code == 404 and r.json()["error_type"] == "model_not_found"


def test_huggingface_hub_inference_client_against_the_base_url(gateway):
    """InferenceClient(base_url) sends TGI's placeholder model name."""
    client = InferenceClient(base_url=gateway)
    out = client.chat_completion(messages=HI, max_tokens=4, seed=1)
    assert out.model == "tgi3" and out.choices[0].message.content


# -- 2. OpenAI routes under /models/{name}/v1 ---------------------------------------------------


def test_openai_routes_under_a_models_base_url(client, gateway):
    out = InferenceClient(f"{gateway}/models/mistral").chat_completion(messages=HI, max_tokens=3)
    assert out.model == "mistral" and out.choices[0].message.content
    # the path's model wins over the body's
    r = client.post("/models/mistral/v1/chat/completions", json={**CHAT, "model": "tgi3"})
    assert r.status_code == 200 and r.json()["model"] == "mistral"
    r = client.post("/models/mistral/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
    assert r.status_code == 200 and r.json()["model"] == "mistral"
    r = client.get("/models/mistral/v1/models")
    assert [m["id"] for m in r.json()["data"]] == ["mistral"]
    r = client.post("/models/nope/v1/chat/completions", json=CHAT)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


# -- 7. No account ids, ARNs or tracebacks reach clients -------------------------------------


def assert_clean(text: str) -> None:
    assert ACCOUNT not in text and "arn:aws" not in text and "Traceback" not in text, text


def every_shape(client: httpx.Client, model: str) -> list[httpx.Response]:
    return [
        client.post(f"/models/{model}/generate", json=GEN),
        client.post(f"/models/{model}/generate_stream", json=GEN),
        client.post("/v1/chat/completions", json={**CHAT, "model": model}),
        client.post("/v1/chat/completions", json={**CHAT, "model": model, "stream": True}),
    ]


def test_unknown_endpoint_never_shows_the_account(client):
    for r in every_shape(client, "missing"):
        assert r.status_code == 502, r.text
        assert_clean(r.text)
        assert "'missing'" in r.text


TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/opt/conda/lib/python3.10/site-packages/server.py", line 42, in handle\n'
    "    raise ValueError(secret)\n"
    f"ValueError: arn:aws:iam::{ACCOUNT}:role/ModelRole"
)


@pytest.mark.parametrize("status", [400, 500])
def test_container_tracebacks_and_html_are_not_relayed(client, faulty, status):
    for body in (TRACEBACK, "<html><body>502 Bad Gateway</body></html>" * 20):
        faulty(faults=[{"kind": "model_error", "status": status, "message": body}])
        for r in every_shape(client, "faulty"):
            assert r.status_code == 502, r.text
            assert_clean(r.text)
            assert "<html>" not in r.text and "'faulty'" in r.text


def test_sagemaker_access_denied_hides_the_role_arn(client, faulty):
    faulty(faults=[{"kind": "access_denied"}])
    r = client.post("/models/faulty/generate", json=GEN)
    assert r.status_code == 502
    assert r.json() == {
        "error": "The gateway is not allowed to call model 'faulty' (AccessDeniedException)",
        "error_type": "upstream",
    }
    r = client.post("/models/faulty/v1/completions", json={"prompt": "x"})
    assert r.status_code == 502
    assert_clean(r.text)


# -- 9. Bodies not declared JSON: 415 in each dialect's shape --------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_bodies_not_declared_json_are_415_in_each_dialect(client, emulator, content_type):
    headers = {"content-type": content_type} if content_type else {}
    before = emulator.stats_for("tgi3-endpoint").requests
    r = client.post("/generate", content=orjson.dumps(GEN), headers=headers)
    assert r.status_code == 415 and r.json()["error_type"] == "unsupported_media_type"
    for path in ("/v1/chat/completions", "/models/tgi3/v1/completions"):
        body = {**CHAT, "model": "tgi3", "prompt": "x"}
        r = client.post(path, content=orjson.dumps(body), headers=headers)
        assert r.status_code == 415, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "unsupported_media_type"
    assert emulator.stats_for("tgi3-endpoint").requests == before
    # declared JSON with a parameter or a +json suffix is fine
    r = client.post(
        "/generate",
        content=orjson.dumps(GEN),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_streams_of_placeholder_models_work(client):
    r = client.post("/v1/chat/completions", json={**CHAT, "model": "dummy", "stream": True})
    events = sse_events(r.content)
    assert events[-1] == b"[DONE]" and orjson.loads(events[0])["model"] == "tgi3"
