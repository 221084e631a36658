"""Grammars: validated as TGI's router validates them (issue 12 item 8), and TGI's own
``response_format`` shape on chat completions mapped to the grammar TGI expects (item 3)."""

from __future__ import annotations

import orjson
import pytest
from huggingface_hub import InferenceClient

from llm_gateway.core.errors import GatewayError
from llm_gateway.core.parameters import GenerateParameters, Limits
from llm_gateway.core.validation import validate

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
HI = [{"role": "user", "content": "Answer in JSON"}]
NOT_VALID = "Input validation error: grammar is not valid: "


def upstream(emulator, endpoint="tgi3-endpoint"):
    return orjson.loads(emulator.stats_for(endpoint).recent[-1]["body"])


def check(grammar):
    validate(GenerateParameters.model_validate({"grammar": grammar}), "x", Limits(), stream=False)


# -- 8. grammar validation -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "json_object"])
@pytest.mark.parametrize("value", [5, 1.5, True, None, [], ["a"]])
def test_json_grammar_neither_string_nor_object_is_not_supported(kind, value):
    with pytest.raises(GatewayError) as info:
        check({"type": kind, "value": value})
    assert info.value.message == "Input validation error: grammar is not supported"
    assert info.value.status == 422 and info.value.param == "grammar"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"type": "object"}, "Grammar must have a 'properties' field"),
        (orjson.dumps({"type": "object"}).decode(), "Grammar must have a 'properties' field"),
        ({"type": 5, "properties": {}}, "5 is not valid"),
        ({"type": "object", "properties": {"a": {"minLength": -1}}}, "-1"),
        ({"type": "object", "properties": []}, "[] is not of type 'object'"),
        # not JSON: the parser's own message with its position (serde's words differ)
        ("{not json", "line 1 column 2"),
        ("[1, 2", "unexpected end of data"),
        ("5", "5 is not of type 'object', 'boolean'"),
        ("true", "Grammar must have a 'properties' field"),
    ],
)
def test_invalid_schemas_are_refused_with_tgis_message(value, fragment):
    with pytest.raises(GatewayError) as info:
        check({"type": "json", "value": value})
    assert info.value.message.startswith(NOT_VALID), info.value.message
    assert fragment in info.value.message, info.value.message
    assert info.value.status == 422 and info.value.param == "grammar"


def test_json_schema_grammars_are_checked_too():
    with pytest.raises(GatewayError, match="Grammar must have a 'properties' field"):
        check({"type": "json_schema", "value": {"name": "x", "schema": {"type": "object"}}})
    check({"type": "json_schema", "value": {"name": "x", "schema": SCHEMA}})


def test_valid_grammars_pass():
    check({"type": "json", "value": SCHEMA})
    check({"type": "json_object", "value": orjson.dumps(SCHEMA).decode()})
    check({"type": "regex", "value": "[ab]+"})
    check({"type": "json", "value": {"properties": {}}})


def test_grammar_errors_over_http_before_any_upstream_call(client, emulator):
    before = emulator.stats_for("tgi3-endpoint").requests
    for path in ("/generate", "/generate_stream", "/"):
        r = client.post(
            path, json={"inputs": "x", "parameters": {"grammar": {"type": "json", "value": 5}}}
        )
        assert r.status_code == 422, r.text
        assert r.json() == {
            "error": "Input validation error: grammar is not supported",
            "error_type": "validation",
        }
    r = client.post(
        "/generate",
        json={"inputs": "x", "parameters": {"grammar": {"type": "json", "value": {"a": 1}}}},
    )
    assert r.status_code == 422
    assert r.json()["error"] == NOT_VALID + "Grammar must have a 'properties' field"
    assert emulator.stats_for("tgi3-endpoint").requests == before
    r = client.post(
        "/generate",
        json={
            "inputs": "x",
            "parameters": {"max_new_tokens": 2, "grammar": {"type": "json", "value": SCHEMA}},
        },
    )
    assert r.status_code == 200
    assert upstream(emulator)["parameters"]["grammar"] == {"type": "json", "value": SCHEMA}


def test_openai_json_schema_without_properties_is_400_on_response_format(client):
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "tgi3",
            "messages": HI,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        },
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "response_format" and error["type"] == "invalid_request_error"
    assert error["message"] == NOT_VALID + "Grammar must have a 'properties' field"


# -- 3. TGI's own response_format shape on /v1/chat/completions ------------------------------


@pytest.mark.parametrize(
    ("response_format", "grammar"),
    [
        ({"type": "json_object", "value": SCHEMA}, {"type": "json", "value": SCHEMA}),
        ({"type": "json", "value": SCHEMA}, {"type": "json", "value": SCHEMA}),
        ({"type": "regex", "value": "(yes|no)"}, {"type": "regex", "value": "(yes|no)"}),
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}},
            {"type": "json", "value": SCHEMA},
        ),
    ],
)
def test_tgi_response_formats_become_the_grammar(client, emulator, response_format, grammar):
    r = client.post(
        "/v1/chat/completions",
        json={"model": "tgi3", "messages": HI, "max_tokens": 2, "response_format": response_format},
    )
    assert r.status_code == 200, r.text
    assert upstream(emulator)["parameters"]["grammar"] == grammar


@pytest.mark.parametrize(
    ("response_format", "fragment"),
    [
        ({"type": "json_object"}, "json_object"),
        ({"type": "json_object", "value": None}, "json_object"),
        ({"type": "regex"}, "regex"),
        ({"type": "regex", "value": 5}, "regex"),
        ({"type": "json", "value": 5}, "grammar is not supported"),
        ({"type": "xml", "value": "x"}, "xml"),
    ],
)
def test_unusable_response_formats_are_400(client, emulator, response_format, fragment):
    before = emulator.stats_for("tgi3-endpoint").requests
    r = client.post(
        "/v1/chat/completions",
        json={"model": "tgi3", "messages": HI, "response_format": response_format},
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "response_format" and fragment in error["message"], error
    assert emulator.stats_for("tgi3-endpoint").requests == before


def test_huggingface_hub_response_formats(gateway, emulator):
    """huggingface_hub rewrites OpenAI's json_schema into TGI's json_object + value."""
    client = InferenceClient(base_url=gateway)
    out = client.chat_completion(
        messages=HI,
        max_tokens=3,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}},
    )
    assert out.choices[0].message.content is not None
    sent = upstream(emulator)["parameters"]["grammar"]
    assert sent == {"type": "json", "value": SCHEMA}
    client.chat_completion(
        messages=HI, max_tokens=3, response_format={"type": "regex", "value": "[ab]+"}
    )
    assert upstream(emulator)["parameters"]["grammar"] == {"type": "regex", "value": "[ab]+"}
