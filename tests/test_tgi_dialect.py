"""The TGI dialect over real HTTP: shapes, what goes upstream, errors, headers."""

from __future__ import annotations

import orjson
import pytest

from llm_gateway.config import Settings
from tests.conftest import gateway_config, sse_events


def last_upstream_body(emulator, endpoint="tgi3-endpoint"):
    return orjson.loads(emulator.stats_for(endpoint).recent[-1]["body"])


def test_generate_returns_text_only_unless_details_asked(client):
    r = client.post("/generate", json={"inputs": "Hi", "parameters": {"max_new_tokens": 5}})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert list(r.json()) == ["generated_text"]
    r = client.post(
        "/generate", json={"inputs": "Hi", "parameters": {"max_new_tokens": 5, "details": True}}
    )
    details = r.json()["details"]
    assert list(details) == ["finish_reason", "generated_tokens", "seed", "prefill", "tokens"]
    assert details["generated_tokens"] == 5 == len(details["tokens"])
    assert details["finish_reason"] == "length"


def test_upstream_body_is_what_tgi_on_sagemaker_needs(client, emulator):
    client.post("/generate_stream", json={"inputs": "Hi", "parameters": {"max_new_tokens": 3}})
    sent = last_upstream_body(emulator)
    assert sent["stream"] is True and "stream" not in sent["parameters"]  # top-level only
    assert sent["parameters"]["return_full_text"] is False  # explicit: SageMaker defaults to true
    assert sent["parameters"]["details"] is True  # always asked; returned only if the client asked
    recent = emulator.stats_for("tgi3-endpoint").recent[-1]
    assert recent["streaming"] is True
    assert recent["headers"]["content-type"] == "application/json"
    client.post("/generate", json={"inputs": "Hi", "parameters": {"max_new_tokens": 3}})
    sent = last_upstream_body(emulator)
    assert "stream" not in sent and sent["parameters"]["return_full_text"] is False


def test_parameters_absent_means_sampling_as_in_tgi(client, emulator):
    client.post("/generate", json={"inputs": "Hi"})
    assert last_upstream_body(emulator)["parameters"]["do_sample"] is True
    client.post("/generate", json={"inputs": "Hi", "parameters": {}})
    assert last_upstream_body(emulator)["parameters"]["do_sample"] is False


def test_return_full_text_true_is_honoured(client):
    r = client.post(
        "/generate",
        json={"inputs": "Prompt:", "parameters": {"max_new_tokens": 2, "return_full_text": True}},
    )
    assert r.json()["generated_text"].startswith("Prompt:")


def test_explicit_nulls_are_accepted(client):
    params = {
        k: None
        for k in (
            "best_of",
            "temperature",
            "repetition_penalty",
            "frequency_penalty",
            "top_k",
            "top_p",
            "typical_p",
            "do_sample",
            "return_full_text",
            "stop",
            "truncate",
            "watermark",
            "details",
            "decoder_input_details",
            "seed",
            "top_n_tokens",
            "grammar",
            "adapter_id",
        )
    }
    params["max_new_tokens"] = 3
    r = client.post("/generate", json={"inputs": "Hi", "parameters": params})
    assert r.status_code == 200, r.text


def test_compat_route_switches_on_stream(client):
    r = client.post("/", json={"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
    assert isinstance(r.json(), list) and "generated_text" in r.json()[0]
    r = client.post("/", json={"inputs": "Hi", "stream": True, "parameters": {"max_new_tokens": 2}})
    assert r.headers["content-type"] == "text/event-stream"
    assert len(sse_events(r.content)) == 2


def test_stream_is_tgi3_shaped_without_done(client):
    r = client.post("/generate_stream", json={"inputs": "Hi", "parameters": {"max_new_tokens": 3}})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"
    events = [orjson.loads(e) for e in sse_events(r.content)]
    assert b"[DONE]" not in r.content
    assert all(
        line.startswith(b"data: ") for line in r.content.split(b"\n\n") if line.startswith(b"data")
    )
    assert [e["index"] for e in events] == [1, 2, 3]
    assert list(events[0]) == ["index", "token", "generated_text", "details"]
    assert list(events[0]["token"]) == ["id", "text", "logprob", "special"]
    assert events[-1]["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert all(e["details"] is None for e in events)  # details not asked


def test_legacy_endpoint_is_relayed_in_tgi3_format(client):
    r = client.post(
        "/models/tgi082/generate_stream",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 3, "details": True}},
    )
    assert r.content.startswith(b"data: {")
    events = [orjson.loads(e) for e in sse_events(r.content)]
    assert [e["index"] for e in events] == [1, 2, 3]
    # 0.8.2 does not report input_length; the gateway does not invent it
    assert events[-1]["details"] == {"finish_reason": "length", "generated_tokens": 3, "seed": None}


@pytest.mark.parametrize("model", ["split", "bytes"])
def test_streams_survive_arbitrary_payload_part_splits(client, model):
    for tokens in (1, 7, 40):
        r = client.post(
            f"/models/{model}/generate_stream",
            json={"inputs": "Tell me", "parameters": {"max_new_tokens": tokens, "details": True}},
        )
        events = [orjson.loads(e) for e in sse_events(r.content)]
        assert len(events) == tokens
        assert events[-1]["details"]["generated_tokens"] == tokens
        buffered = client.post(
            f"/models/{model}/generate",
            json={"inputs": "Tell me", "parameters": {"max_new_tokens": tokens}},
        )
        assert events[-1]["generated_text"] == buffered.json()["generated_text"]


def test_top_tokens_and_prefill_pass_through(client):
    r = client.post(
        "/generate",
        json={
            "inputs": "Hi there",
            "parameters": {
                "max_new_tokens": 2,
                "details": True,
                "top_n_tokens": 3,
                "decoder_input_details": True,
            },
        },
    )
    details = r.json()["details"]
    assert [len(t) for t in details["top_tokens"]] == [3, 3]
    assert details["prefill"][0]["logprob"] is None and len(details["prefill"]) == 2
    r = client.post(
        "/generate_stream",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 2, "top_n_tokens": 2}},
    )
    events = [orjson.loads(e) for e in sse_events(r.content)]
    assert list(events[0]) == ["index", "token", "top_tokens", "generated_text", "details"]


def test_best_of_returns_sequences(client):
    r = client.post(
        "/generate",
        json={
            "inputs": "Hi",
            "parameters": {"max_new_tokens": 3, "best_of": 2, "do_sample": True, "details": True},
        },
    )
    assert r.status_code == 200
    assert len(r.json()["details"]["best_of_sequences"]) == 1


def test_info_and_health(client):
    info = client.get("/info").json()
    assert list(info) == [
        "model_id",
        "model_sha",
        "model_pipeline_tag",
        "max_concurrent_requests",
        "max_best_of",
        "max_stop_sequences",
        "max_input_tokens",
        "max_total_tokens",
        "validation_workers",
        "max_client_batch_size",
        "router",
        "version",
        "sha",
        "docker_label",
    ]
    assert info["model_id"] == "test/tgi3" and info["max_total_tokens"] == 2048
    assert client.get("/models/tgi082/info").json()["model_id"] == "tgi082"
    for path in ("/health", "/", "/models/tgi3/health"):
        r = client.get(path)
        assert r.status_code == 200 and r.content == b""


def test_defaults_fill_what_the_client_left_unset(client, emulator):
    r = client.post(
        "/models/with-defaults/generate", json={"inputs": "Hi", "parameters": {"details": True}}
    )
    assert r.json()["details"]["generated_tokens"] <= 7
    sent = last_upstream_body(emulator)["parameters"]
    assert (
        sent["temperature"] == 0.5
        and sent["stop"] == ["<|endoftext|>"]
        and sent["max_new_tokens"] == 7
    )
    client.post(
        "/models/with-defaults/generate",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 2, "temperature": 0.9}},
    )
    sent = last_upstream_body(emulator)["parameters"]
    assert sent["temperature"] == 0.9 and sent["max_new_tokens"] == 2


# -- errors ---------------------------------------------------------------------------------


def test_validation_error_is_422_before_any_upstream_call(client, emulator):
    before = emulator.stats_for("tgi3-endpoint").requests
    for path in ("/generate", "/generate_stream", "/"):
        r = client.post(path, json={"inputs": "Hi", "parameters": {"temperature": 0}})
        assert r.status_code == 422
        assert r.json() == {
            "error": "Input validation error: `temperature` must be strictly positive",
            "error_type": "validation",
        }
    assert emulator.stats_for("tgi3-endpoint").requests == before


def test_stream_only_rules(client):
    r = client.post(
        "/generate_stream", json={"inputs": "Hi", "parameters": {"best_of": 2, "do_sample": True}}
    )
    assert (
        r.json()["error"]
        == "Input validation error: `best_of` != 1 is not supported when streaming tokens"
    )


def test_token_limit_errors_come_from_tgi(client):
    long = " x" * 1100
    r = client.post("/generate", json={"inputs": long, "parameters": {"max_new_tokens": 1000}})
    assert r.status_code == 422
    assert r.json() == {
        "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be "
        "<= 2048. Given: 1100 `inputs` tokens and 1000 `max_new_tokens`",
        "error_type": "validation",
    }
    r = client.post("/generate", json={"inputs": long, "parameters": {"max_new_tokens": 10}})
    assert (
        r.json()["error"]
        == "Input validation error: `inputs` must have less than 1024 tokens. Given: 1100"
    )
    # On a stream TGI answers 200 and an error event; the gateway turns it into a real status
    r = client.post("/generate_stream", json={"inputs": long, "parameters": {"max_new_tokens": 10}})
    assert r.status_code == 422 and r.json()["error_type"] == "validation"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"inputs": "x",', 400, "Failed to parse the request body as JSON: "),
        (b"\xff\xfe", 400, "Failed to parse the request body as JSON: "),
        (
            b'{"parameters": {}}',
            422,
            "Failed to deserialize the JSON body into the target type: inputs: missing field `inputs`",
        ),
        (
            b'{"inputs": 5}',
            422,
            "Failed to deserialize the JSON body into the target type: inputs: invalid type: integer `5`, expected a string",
        ),
        (
            b'{"inputs": "x", "parameters": {"top_k": "5"}}',
            422,
            'Failed to deserialize the JSON body into the target type: parameters.top_k: invalid type: string "5", expected i32',
        ),
        (
            b'{"inputs": "x", "parameters": {"max_new_tokens": -1}}',
            422,
            "Failed to deserialize the JSON body into the target type: parameters.max_new_tokens: invalid value: integer `-1`, expected u32",
        ),
        (
            b'{"inputs": "x", "parameters": {"max_new_tokens": 1.5}}',
            422,
            "Failed to deserialize the JSON body into the target type: parameters.max_new_tokens: invalid type: floating point `1.5`, expected u32",
        ),
        (
            b'{"inputs": "x", "parameters": {"do_sample": "yes"}}',
            422,
            'Failed to deserialize the JSON body into the target type: parameters.do_sample: invalid type: string "yes", expected a boolean',
        ),
        (
            b'{"inputs": "x", "parameters": {"stop": "x"}}',
            422,
            'Failed to deserialize the JSON body into the target type: parameters.stop: invalid type: string "x", expected a sequence',
        ),
        (
            b"[1, 2]",
            422,
            "Failed to deserialize the JSON body into the target type: invalid type: a sequence, expected struct GenerateRequest",
        ),
    ],
)
def test_unreadable_bodies_get_json_errors(client, body, status, error):
    r = client.post("/generate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    payload = r.json()
    assert payload["error"].startswith(error) and payload["error_type"] == "validation"
    if status == 422:
        assert payload["error"] == error


def test_unknown_model_and_route(client):
    r = client.post("/models/nope/generate", json={"inputs": "x"})
    assert r.status_code == 404
    assert r.json() == {
        "error": "Model 'nope' is not served by this gateway",
        "error_type": "model_not_found",
    }
    r = client.get("/no/such/route")
    assert r.status_code == 404 and "error" in r.json()
    r = client.get("/generate")
    assert r.status_code == 405 and "error" in r.json()


def test_request_id_and_server_timing_on_every_response(client):
    r = client.post(
        "/generate",
        json={"inputs": "x", "parameters": {"max_new_tokens": 1}},
        headers={"x-request-id": "abc-123"},
    )
    assert r.headers["x-request-id"] == "abc-123"
    timing = r.headers["server-timing"]
    assert timing.startswith("gateway;dur=") and "upstream;dur=" in timing
    r = client.post(
        "/generate",
        json={"inputs": "x", "parameters": {"top_k": 0}},
        headers={"x-request-id": "bad id with spaces"},
    )
    assert (
        len(r.headers["x-request-id"]) == 32 and r.headers["x-request-id"] != "bad id with spaces"
    )
    assert r.headers["server-timing"].endswith("upstream;dur=0.0")  # refused before any call
    r = client.post("/generate_stream", json={"inputs": "x", "parameters": {"max_new_tokens": 2}})
    assert "ttft;dur=" in r.headers["server-timing"] and r.headers["x-request-id"]
    assert client.get("/nope").headers["x-request-id"]


def test_api_keys_and_body_limit(start_gateway):
    import httpx

    url = start_gateway(gateway_config(), Settings(api_keys=("k-one", "k-two"), max_body_bytes=200))
    with httpx.Client(base_url=url) as c:
        body = {"inputs": "x", "parameters": {"max_new_tokens": 1}}
        r = c.post("/generate", json=body)
        assert r.status_code == 401 and r.json()["error_type"] == "authentication"
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post("/generate", json=body, headers={"x-api-key": "wrong"}).status_code == 401
        assert c.post("/generate", json=body, headers={"x-api-key": "k-two"}).status_code == 200
        assert (
            c.post("/generate", json=body, headers={"authorization": "Bearer k-one"}).status_code
            == 200
        )
        assert c.get("/health").status_code == 200  # open
        assert c.get("/info").status_code == 401
        big = {"inputs": "x" * 500}
        r = c.post("/generate", json=big, headers={"x-api-key": "k-one"})
        assert r.status_code == 413 and r.json()["error_type"] == "payload_too_large"

        def chunks():  # no Content-Length: counted while reading
            yield b'{"inputs": "'
            yield b"x" * 500
            yield b'"}'

        r = c.post(
            "/generate",
            content=chunks(),
            headers={"x-api-key": "k-one", "content-type": "application/json"},
        )
        assert r.status_code == 413
