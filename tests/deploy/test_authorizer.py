"""The REQUEST authorizer with API Gateway authorizer events from ``events/``."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import logging

import pytest

from tests.deploy.conftest import EVENTS, ROOT

SOURCE = ROOT / "authorizer" / "app.py"
KEY = "EXAMPLE0partner0key0not0a0real0one0000"
STAGE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"


def load_module():
    spec = importlib.util.spec_from_file_location("authorizer_app", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


authorizer = load_module()


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def set_headers(ev: dict, headers: dict[str, str]) -> dict:
    ev = copy.deepcopy(ev)
    ev["headers"] = headers
    ev["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return ev


def allowed(response: dict, key: str = KEY) -> None:
    assert response["usageIdentifierKey"] == key
    statement = response["policyDocument"]["Statement"]
    assert statement == [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": STAGE_ARN}]
    # the key never leaves through the principal or the context (they reach logs)
    assert key not in response["principalId"]
    assert key not in json.dumps(response["context"])
    json.dumps(response)  # what API Gateway receives


def test_bearer_token_becomes_the_usage_identifier_key():
    response = authorizer.handler(event("authorizer_bearer.json"), None)
    allowed(response)
    assert response["context"] == {"keySource": "bearer"}


def test_x_api_key_becomes_the_usage_identifier_key():
    response = authorizer.handler(event("authorizer_x_api_key.json"), None)
    allowed(response)
    assert response["context"] == {"keySource": "x-api-key"}


def test_no_key_is_unauthorized():
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(event("authorizer_no_key.json"), None)


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"bearer {KEY}"},
        {"AUTHORIZATION": f"Bearer   {KEY}  "},
        {"X-Api-Key": KEY},
        {"x-api-key": f" {KEY} "},
        {"x-api-key": "", "Authorization": f"Bearer {KEY}"},
    ],
)
def test_header_names_and_schemes_are_case_insensitive(headers):
    base = event("authorizer_no_key.json")
    allowed(authorizer.handler(set_headers(base, headers), None))


def test_x_api_key_wins_over_bearer():
    base = event("authorizer_no_key.json")
    other = "ANOTHER0partner0key0000000000000000000"
    response = authorizer.handler(
        set_headers(base, {"x-api-key": KEY, "Authorization": f"Bearer {other}"}), None
    )
    allowed(response)


def test_only_multi_value_headers():
    ev = event("authorizer_bearer.json")
    ev["headers"] = None
    allowed(authorizer.handler(ev, None))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer short"},
        {"x-api-key": "k" * 129},
        {"x-api-key": "has space inside the key 12345"},
        {"x-api-key": "   "},
    ],
)
def test_malformed_or_foreign_credentials_are_unauthorized(headers):
    base = event("authorizer_no_key.json")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(set_headers(base, headers), None)


def test_the_key_is_never_logged(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    authorizer.handler(event("authorizer_bearer.json"), None)
    with pytest.raises(Exception, match="Unauthorized"):
        authorizer.handler(set_headers(event("authorizer_no_key.json"), {"x-api-key": "x"}), None)
    captured = capsys.readouterr()
    assert KEY not in caplog.text + captured.out + captured.err


def test_the_authorizer_is_small_and_dependency_free():
    tree = ast.parse(SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "re", "typing"}
    code_lines = [
        line
        for line in SOURCE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(code_lines) < 100
    # nothing for `sam build` to install: the function is the one file
    assert not (SOURCE.parent / "requirements.txt").exists()
