"""Optional gateway-side token counting, inference components, config from SSM."""

from __future__ import annotations

import json

import boto3
import httpx
import orjson
import pytest
from moto.server import ThreadedMotoServer
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from llm_gateway.app import create_app
from llm_gateway.config import ConfigError, Settings, load_config
from tests.processes import free_port


def write_tokenizer(path):
    vocab = {"<s>": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(["hello", "world", "x"])}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tok.save(str(path))


@pytest.fixture
def tokenizer_gateway(tmp_path, start_gateway):
    write_tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "models.yaml").write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "counted",
                        "endpoint": "tgi3-endpoint",
                        "tokenizer": "tokenizer.json",
                        "limits": {"max_input_tokens": 10, "max_total_tokens": 20},
                    }
                ]
            }
        )
    )
    return start_gateway(load_config(str(tmp_path / "models.yaml")))


def test_configured_tokenizer_enforces_token_limits_in_the_gateway(tokenizer_gateway, emulator):
    before = emulator.stats_for("tgi3-endpoint").requests
    # 9 words + BOS = 10 tokens: allowed (TGI's check is "more than")
    r = httpx.post(
        f"{tokenizer_gateway}/generate",
        json={"inputs": " ".join(["x"] * 9), "parameters": {"max_new_tokens": 5}},
    )
    assert r.status_code == 200
    r = httpx.post(
        f"{tokenizer_gateway}/generate",
        json={"inputs": " ".join(["x"] * 10), "parameters": {"max_new_tokens": 5}},
    )
    assert r.status_code == 422
    assert (
        r.json()["error"]
        == "Input validation error: `inputs` must have less than 10 tokens. Given: 11"
    )
    r = httpx.post(
        f"{tokenizer_gateway}/generate_stream",
        json={"inputs": "hello world", "parameters": {"max_new_tokens": 18}},
    )
    assert r.status_code == 422
    assert r.json()["error"] == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be "
        "<= 20. Given: 3 `inputs` tokens and 18 `max_new_tokens`"
    )
    assert emulator.stats_for("tgi3-endpoint").requests - before == 1  # only the valid one went up


def test_unloadable_tokenizer_stops_start_up(tmp_path):
    (tmp_path / "tokenizer.json").write_text("not a tokenizer")
    (tmp_path / "models.yaml").write_text(
        json.dumps({"models": [{"name": "m", "endpoint": "e", "tokenizer": "tokenizer.json"}]})
    )
    with pytest.raises(ConfigError, match=r"model 'm' \(models\[0\]\), field 'tokenizer'"):
        create_app(load_config(str(tmp_path / "models.yaml")), Settings())


def test_inference_component_is_sent(start_gateway, emulator):
    from tests.conftest import gateway_config

    url = start_gateway(
        gateway_config(
            [{"name": "ic", "endpoint": "tgi3-endpoint", "inference_component": "ic-llama-1"}],
            default="ic",
        )
    )
    httpx.post(f"{url}/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 1}})
    headers = emulator.stats_for("tgi3-endpoint").recent[-1]["headers"]
    assert headers["x-amzn-sagemaker-inference-component"] == "ic-llama-1"
    httpx.post(f"{url}/generate_stream", json={"inputs": "hi", "parameters": {"max_new_tokens": 1}})
    recent = emulator.stats_for("tgi3-endpoint").recent[-1]
    assert (
        recent["streaming"]
        and recent["headers"]["x-amzn-sagemaker-inference-component"] == "ic-llama-1"
    )
    assert orjson.loads(recent["body"])["stream"] is True


def test_config_from_ssm(monkeypatch):
    """Over real HTTP to moto's server (the suite's rule: no in-process AWS mocks)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # Lambda always sets a region
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", f"http://127.0.0.1:{port}")
        config = {"models": [{"name": "from-ssm", "endpoint": "e1"}]}
        ssm = boto3.client("ssm")
        ssm.put_parameter(Name="/llm-gateway/models", Value=json.dumps(config), Type="SecureString")
        loaded = load_config(env={"GATEWAY_CONFIG_SSM": "/llm-gateway/models"})
        assert loaded.default.name == "from-ssm"
        with pytest.raises(
            ConfigError, match="Cannot read configuration from SSM parameter /absent"
        ):
            load_config(env={"GATEWAY_CONFIG_SSM": "/absent"})
    finally:
        server.stop()
