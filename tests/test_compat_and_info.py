"""Issue 12 item 12: the smaller defects. An empty completions prompt names ``prompt``; a
broken chat template reports Jinja's error; ``POST /`` defaults ``return_full_text`` as TGI's
compat route does; ``/info`` reports what the configuration knows and nothing invented."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import InferenceClient
from text_generation import Client

from llm_gateway.config import Settings
from llm_gateway.config.loader import ConfigError, parse_config
from tests.conftest import MODELS, gateway_config, sse_events


def upstream_parameters(emulator, endpoint="tgi3-endpoint"):
    import orjson

    return orjson.loads(emulator.stats_for(endpoint).recent[-1]["body"])["parameters"]


# -- empty prompt ------------------------------------------------------------------------------


def test_empty_completions_prompt_names_prompt(client):
    for path in ("/v1/completions", "/models/tgi3/v1/completions"):
        r = client.post(path, json={"model": "tgi3", "prompt": ""})
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "prompt", r.json()
        assert "`inputs` cannot be empty" in r.json()["error"]["message"]


# -- broken chat templates -----------------------------------------------------------------------


def test_a_broken_chat_template_reports_jinja_s_error():
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "models": [
                    {
                        "name": "m1",
                        "endpoint": "ok",
                        "template": {"chat_template": "{% for m in messages %}{{ m.content }"},
                    }
                ]
            },
            "models.yaml",
        )
    message = str(info.value)
    assert "model 'm1' (models[0]), field 'template'" in message, message
    assert "chat_template does not compile" in message and "template.str" not in message
    assert "unexpected '}'" in message or "expected token" in message, message
    with pytest.raises(ConfigError, match="field 'template': unknown template family 'llama9'"):
        parse_config({"models": [{"name": "m1", "endpoint": "ok", "template": "llama9"}]}, "x")
    with pytest.raises(ConfigError, match="field 'template': stop: Input should be a valid list"):
        parse_config(
            {
                "models": [
                    {
                        "name": "m1",
                        "endpoint": "ok",
                        "template": {"chat_template": "{{ 1 }}", "stop": "not a list"},
                    }
                ]
            },
            "x",
        )


# -- POST / and return_full_text ------------------------------------------------------------------


def test_compat_route_defaults_return_full_text_as_tgi_does(client, emulator):
    """TGI's compat_generate sets an unset return_full_text to true for text-generation models
    (the pipeline tag /info reports); /generate leaves it false."""
    for body in (
        {"inputs": "Prompt:", "parameters": {"max_new_tokens": 2}},
        {"inputs": "Prompt:"},
        {"inputs": "Prompt:", "parameters": {"max_new_tokens": 2, "return_full_text": None}},
    ):
        r = client.post("/", json=body)
        assert r.json()[0]["generated_text"].startswith("Prompt:"), r.json()
        assert upstream_parameters(emulator)["return_full_text"] is True
    r = client.post(
        "/models/tgi3",
        json={"inputs": "Prompt:", "stream": True, "parameters": {"max_new_tokens": 2}},
    )
    assert sse_events(r.content)[-1].decode().count('"generated_text":"Prompt:') == 1
    r = client.post(
        "/",
        json={"inputs": "Prompt:", "parameters": {"max_new_tokens": 2, "return_full_text": False}},
    )
    assert not r.json()[0]["generated_text"].startswith("Prompt:")
    r = client.post("/generate", json={"inputs": "Prompt:", "parameters": {"max_new_tokens": 2}})
    assert not r.json()["generated_text"].startswith("Prompt:")
    assert upstream_parameters(emulator)["return_full_text"] is False


def test_a_models_return_full_text_default_wins_over_the_routes(start_gateway):
    models = [{**MODELS[0], "defaults": {"return_full_text": False}}]
    url = start_gateway(gateway_config(models), Settings())
    r = httpx.post(f"{url}/", json={"inputs": "Prompt:", "parameters": {"max_new_tokens": 2}})
    assert not r.json()[0]["generated_text"].startswith("Prompt:")


def test_models_behind_an_openai_server_get_the_prompt_from_the_gateway():
    """An OpenAI server cannot echo the prompt on streams: the gateway puts it before the
    answer's text itself (tests/test_clients.py runs InferenceClient against one)."""
    from llm_gateway.backends.openai import OpenAIBackend
    from llm_gateway.backends.tgi.generate import TGIGenerate
    from llm_gateway.config.schema import ModelConfig
    from llm_gateway.core.parameters import GenerateParameters
    from llm_gateway.dialects.tgi.dialect import compat_parameters, full_text_prefix

    vllm = ModelConfig(name="v", endpoint="e", backend="openai")
    tgi = ModelConfig(name="t", endpoint="e")
    unset = GenerateParameters(max_new_tokens=2)
    assert compat_parameters(unset, vllm).return_full_text is True
    assert compat_parameters(unset, tgi).return_full_text is True
    chosen = GenerateParameters(return_full_text=False)
    assert compat_parameters(chosen, tgi).return_full_text is False
    no_echo = OpenAIBackend.capabilities  # an OpenAI server echoes no prompt on streams
    sent, prefix = full_text_prefix(compat_parameters(unset, vllm), vllm, "Prompt:", no_echo)
    assert (sent.return_full_text, prefix) == (False, "Prompt:")
    assert full_text_prefix(chosen, vllm, "Prompt:", no_echo) == (chosen, "")
    full = GenerateParameters(return_full_text=True)
    echo = TGIGenerate.capabilities  # TGI echoes it itself
    assert full_text_prefix(full, tgi, "Prompt:", echo) == (full, "")


def test_text_generation_client_on_the_compat_route(gateway):
    """text_generation posts to the base URL with return_full_text false: unchanged."""
    out = Client(gateway).generate("Prompt:", max_new_tokens=2)
    assert not out.generated_text.startswith("Prompt:")


# -- /info ------------------------------------------------------------------------------------


def test_info_reports_the_configuration_and_nothing_invented(start_gateway):
    models = [
        {**MODELS[0], "tgi_version": "0.8.2"},
        {"name": "plain", "endpoint": "tgi3-endpoint"},
    ]
    settings = Settings(max_concurrent_requests=17)
    url = start_gateway(gateway_config(models), settings)
    info = httpx.get(f"{url}/info").json()
    assert info["version"] == "0.8.2"
    assert info["max_concurrent_requests"] == 17
    assert info["validation_workers"] is None
    assert info["router"] == "llm-gateway" and info["sha"] is None
    assert "3.3.6" not in str(info)
    plain = httpx.get(f"{url}/models/plain/info").json()
    assert plain["version"] is None and plain["model_id"] == "plain"
    # huggingface_hub reads /info as it is
    hub = InferenceClient(url, provider="hf-inference")
    assert hub.get_endpoint_info()["max_total_tokens"] == 2048
    plain_hub = InferenceClient(f"{url}/models/plain", provider="hf-inference")
    assert plain_hub.get_endpoint_info()["version"] is None


def test_tgi_version_is_checked():
    with pytest.raises(ConfigError, match="tgi_version"):
        parse_config({"models": [{"name": "m", "endpoint": "e", "tgi_version": "latest"}]}, "x")
