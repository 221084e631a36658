"""Model defaults are checked at start-up for streamed and buffered requests alike (issue 12
item 10): a default TGI refuses in either mode fails start-up naming the model and field."""

from __future__ import annotations

import pytest

from llm_gateway.config.loader import ConfigError, parse_config


def load(defaults: dict) -> object:
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
        load(defaults)
    assert str(info.value).startswith("Invalid configuration in models.yaml: ")
    assert expected in str(info.value), str(info.value)


def test_defaults_both_modes_accept_load():
    config = load({"max_new_tokens": 7, "temperature": 0.5, "stop": ["</s>"], "seed": 3})
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
