"""The models file: sources, validation, and errors that name the file, the model and the field."""

from __future__ import annotations

import json

import pytest

from llm_gateway.config import ConfigError, Settings, SettingsError, load_config
from llm_gateway.config.loader import config_source, parse_config

SPEC_EXAMPLE = """
default_model: oasst-pythia-12b
models:
  - name: oasst-pythia-12b
    endpoint: oasst-pythia-12b-tgi
    inference_component: null
    template: openassistant
    limits: {max_input_tokens: 1024, max_total_tokens: 2048, max_stop_sequences: 4,
             max_best_of: 2, max_top_n_tokens: 5}
    defaults: {max_new_tokens: 256, temperature: 0.7, top_p: 0.7, top_k: 50,
               repetition_penalty: 1.03, stop: ["<|endoftext|>"]}
"""


def test_spec_example_loads_from_yaml_and_json(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(SPEC_EXAMPLE)
    config = load_config(str(path))
    model = config.default
    assert model.name == "oasst-pythia-12b" and model.endpoint == "oasst-pythia-12b-tgi"
    assert model.defaults.top_k == 50 and model.limits.max_best_of == 2
    import yaml

    as_json = tmp_path / "models.json"
    as_json.write_text(json.dumps(yaml.safe_load(SPEC_EXAMPLE)))
    assert load_config(env={"GATEWAY_CONFIG": str(as_json)}) == config
    assert load_config(env={"GATEWAY_CONFIG_JSON": as_json.read_text()}) == config


def test_source_precedence(tmp_path):
    env = {"GATEWAY_CONFIG": "a.yaml", "GATEWAY_CONFIG_JSON": "{}", "GATEWAY_CONFIG_SSM": "/p"}
    assert config_source(env, "explicit.yaml") == "explicit.yaml"
    assert config_source(env) == "GATEWAY_CONFIG"
    assert config_source({"GATEWAY_CONFIG_SSM": "/p"}) == "GATEWAY_CONFIG_SSM"
    assert config_source({}) is None
    with pytest.raises(ConfigError, match="No model configuration"):
        load_config(env={})


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            {"name": "m1", "endpoint": "ok", "limits": {"max_total_tokens": "lots"}},
            "model 'm1' (models[0]), field 'limits.max_total_tokens': Input should be a valid integer",
        ),
        (
            {"name": "m1", "endpoint": "bad_name!"},
            "model 'm1' (models[0]), field 'endpoint': String should match pattern",
        ),
        (
            {"name": "m1", "endpoint": "ok", "template": "llama9"},
            "model 'm1' (models[0]), field 'template': unknown template family 'llama9'",
        ),
        (
            {
                "name": "m1",
                "endpoint": "ok",
                "limits": {"max_input_tokens": 4096, "max_total_tokens": 2048},
            },
            "model 'm1' (models[0]), field 'limits': max_input_tokens (4096) must be less than max_total_tokens",
        ),
        (
            {"name": "m1", "endpoint": "ok", "defaults": {"top_p": 1.0}},
            "model 'm1' (models[0]), field 'defaults': top_p: 1.0 would refuse every buffered "
            "request (Input validation error: `top_p`",
        ),
        (
            {"name": "m1", "endpoint": "ok", "limit": {}},
            "model 'm1' (models[0]), field 'limit': Extra inputs are not permitted",
        ),
        ({"endpoint": "ok"}, "models[0], field 'name': Field required"),
    ],
)
def test_errors_name_file_model_and_field(tmp_path, model, expected):
    path = tmp_path / "models.yaml"
    path.write_text(json.dumps({"models": [model]}))
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = str(info.value)
    assert message.startswith(f"Invalid configuration in {path}: ")
    assert expected in message


def test_whole_file_errors(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models: [")
    with pytest.raises(ConfigError, match="not valid JSON or YAML"):
        load_config(str(path))
    path.write_text(json.dumps({"default_model": "x", "models": [{"name": "a", "endpoint": "e"}]}))
    with pytest.raises(ConfigError, match="default_model 'x' is not one of the models"):
        load_config(str(path))
    path.write_text(
        json.dumps({"models": [{"name": "a", "endpoint": "e"}, {"name": "a", "endpoint": "f"}]})
    )
    with pytest.raises(ConfigError, match="model name 'a' is used twice"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="Cannot read configuration file"):
        load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="Invalid configuration in GATEWAY_CONFIG_JSON"):
        load_config(env={"GATEWAY_CONFIG_JSON": '{"models": []}'})


def test_settings_from_env():
    s = Settings.from_env(
        {
            "GATEWAY_API_KEYS": "a, b,",
            "GATEWAY_CORS_ORIGINS": "https://x.example",
            "GATEWAY_MAX_BODY_BYTES": "2048",
            "GATEWAY_LOG_PROMPTS": "no",
        }
    )
    assert s.api_keys == ("a", "b") and s.cors_origins == ("https://x.example",)
    assert s.max_body_bytes == 2048 and s.log_prompts is False
    with pytest.raises(SettingsError, match="GATEWAY_LOG_PROMPTS"):
        Settings.from_env({"GATEWAY_LOG_PROMPTS": "maybe"})
    with pytest.raises(SettingsError, match="below 30"):
        Settings.from_env({"GATEWAY_HEARTBEAT_SECONDS": "45"})


# -- model defaults are checked for streamed and buffered requests alike --------------------


def load_defaults(defaults: dict) -> object:
    return parse_config(
        {"models": [{"name": "m1", "endpoint": "ok", "defaults": defaults}]}, "models.yaml"
    )


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        (
            {"best_of": 2, "do_sample": True},
            "model 'm1' (models[0]), field 'defaults': best_of: 2 would refuse every streamed "
            "request (Input validation error: `best_of` != 1 is not supported when streaming "
            "tokens)",
        ),
        (
            {"decoder_input_details": True},
            "field 'defaults': decoder_input_details: True would refuse every streamed request",
        ),
        (
            {"best_of": 2},
            "field 'defaults': best_of: 2 would refuse every buffered request (Input validation "
            "error: you must use sampling when `best_of` is > 1)",
        ),
        ({"top_p": 1.0}, "field 'defaults': top_p: 1.0 would refuse every buffered request"),
    ],
)
def test_defaults_a_mode_refuses_fail_start_up(defaults, expected):
    with pytest.raises(ConfigError) as info:
        load_defaults(defaults)
    assert str(info.value).startswith("Invalid configuration in models.yaml: ")
    assert expected in str(info.value), str(info.value)


def test_defaults_both_modes_accept_load():
    config = load_defaults({"max_new_tokens": 7, "temperature": 0.5, "stop": ["</s>"], "seed": 3})
    assert config.default.defaults.max_new_tokens == 7


def test_stream_only_default_no_longer_breaks_every_stream():
    """Before: the config loaded and every stream failed on a best_of the client never sent."""
    with pytest.raises(ConfigError, match="streamed"):
        parse_config(
            {
                "models": [
                    {
                        "name": "m1",
                        "endpoint": "tgi3-endpoint",
                        "defaults": {"best_of": 2, "temperature": 0.7},
                    }
                ]
            },
            "inline",
        )
