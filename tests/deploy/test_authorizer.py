"""The REQUEST authorizer with API Gateway authorizer events from ``events/``: API keys as
before, and signed-in users' JWTs checked against a real local issuer with the same bad-token
table as the gateway (tests/test_identity.py). Secrets Manager (the frontend's usage-plan key)
is moto's in-process mock: the one control-plane call, made once per container."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.deploy.conftest import EVENTS, ROOT, lambda_architecture, python312, run, tool, tool_env
from tests.issuer import AUDIENCE, BAD_TOKEN_NAMES, CLIENT_ID, Issuer, bad_tokens, standard_issuer

SOURCE = ROOT / "authorizer" / "app.py"
KEY = "EXAMPLE0partner0key0not0a0real0one0000"
STAGE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"


def load_module():
    # As in Lambda: the function's directory is on the path (gateway_identity lives there).
    if str(SOURCE.parent) not in sys.path:
        sys.path.insert(0, str(SOURCE.parent))
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


def test_the_authorizer_is_small_and_shares_the_gateways_verification():
    """One file plus ``gateway_identity``, which is the gateway's identity package itself (a
    link, not a copy), and one pinned dependency (PyJWT with cryptography)."""
    tree = ast.parse(SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {
        "__future__",
        "json",
        "os",
        "re",
        "functools",
        "typing",
        "boto3",
        "gateway_identity",
    }
    code_lines = [
        line
        for line in SOURCE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(code_lines) < 200
    link = SOURCE.parent / "gateway_identity"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "src" / "llm_gateway" / "identity").resolve()
    requirements = (SOURCE.parent / "requirements.txt").read_text().splitlines()
    pinned = [line for line in requirements if line and not line.startswith("#")]
    constraints = set((ROOT / "constraints.txt").read_text().splitlines())
    assert pinned and set(pinned) <= constraints
    assert {line.split("==")[0] for line in pinned} == {
        "PyJWT",
        "cryptography",
        "cffi",
        "pycparser",
    }


# -- signed-in users --------------------------------------------------------------------------

FRONTEND_KEY = "FRONTEND0usage0plan0key0000000000000"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = standard_issuer()
    yield issuer
    issuer.stop()


@pytest.fixture
def signed_in(issuer, monkeypatch) -> Iterator[str]:
    """The authorizer configured for the local issuer, the frontend key in (mocked) Secrets
    Manager; caches cleared before and after, as for a new container."""
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        arn = boto3.client("secretsmanager").create_secret(
            Name="frontend-key", SecretString=FRONTEND_KEY
        )["ARN"]
        monkeypatch.setenv("GATEWAY_JWT_ISSUER", issuer.url)
        monkeypatch.setenv("GATEWAY_JWT_AUDIENCE", AUDIENCE)
        monkeypatch.setenv("GATEWAY_JWT_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("GATEWAY_JWT_TENANT_CLAIM", "custom:tenant")
        monkeypatch.setenv("GATEWAY_FRONTEND_KEY_SECRET", arn)
        authorizer.verifier.cache_clear()
        authorizer.frontend_key.cache_clear()
        yield arn
    authorizer.verifier.cache_clear()
    authorizer.frontend_key.cache_clear()


def with_token(token: str) -> dict:
    return set_headers(event("authorizer_no_key.json"), {"Authorization": f"Bearer {token}"})


def test_a_valid_token_is_allowed_under_the_frontend_key(signed_in, issuer):
    response = authorizer.handler(with_token(issuer.token(**{"custom:tenant": "acme"})), None)
    allowed(response, FRONTEND_KEY)
    assert response["principalId"] == "user:alice"
    assert response["context"] == {"keySource": "jwt", "principal": "user:alice", "tenant": "acme"}
    # EC keys, ID tokens for the chat page's client, Cognito access tokens (client_id, no aud)
    for token in (
        issuer.token("ec-1", sub="bob"),
        issuer.token(aud=[CLIENT_ID]),
        issuer.token(aud=None, client_id=AUDIENCE),
    ):
        response = authorizer.handler(with_token(token), None)
        assert response["usageIdentifierKey"] == FRONTEND_KEY
        assert "tenant" not in response["context"]


def test_the_frontend_key_is_read_once_per_container(signed_in, issuer, monkeypatch):
    calls = []
    original = boto3.client

    def counting(name, *args, **kwargs):
        calls.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    for _ in range(3):
        authorizer.handler(with_token(issuer.token()), None)
    assert calls == ["secretsmanager"]


@pytest.mark.parametrize("name", BAD_TOKEN_NAMES)
def test_a_bad_token_is_unauthorized(signed_in, issuer, name, capsys):
    _, token, _ = next(t for t in bad_tokens(issuer) if t[0] == name)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(with_token(token), None)
    out = capsys.readouterr()
    assert token not in out.out + out.err


def test_api_keys_work_beside_tokens(signed_in):
    allowed(authorizer.handler(event("authorizer_bearer.json"), None))
    allowed(authorizer.handler(event("authorizer_x_api_key.json"), None))
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(event("authorizer_no_key.json"), None)


def test_issuer_down_is_an_authorizer_failure_not_a_401(signed_in, monkeypatch, issuer):
    """API Gateway answers AUTHORIZER_FAILURE (the stack maps it to 503), not 401."""
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", "http://127.0.0.1:9")
    authorizer.verifier.cache_clear()
    with pytest.raises(authorizer.IssuerUnavailable):
        authorizer.handler(with_token(issuer.token(iss="http://127.0.0.1:9")), None)


def test_a_plain_http_issuer_off_loopback_is_refused(signed_in, monkeypatch, issuer):
    monkeypatch.setenv("GATEWAY_JWT_ISSUER", "http://idp.example")
    authorizer.verifier.cache_clear()
    with pytest.raises(RuntimeError, match="https"):
        authorizer.handler(with_token(issuer.token()), None)


# -- the built function -----------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_sam_build_ships_the_shared_package_and_it_verifies_tokens(tmp_path, issuer):
    """`sam build AuthorizerFunction`: the link becomes real files, PyJWT and cryptography are
    installed for python3.12, and the built function verifies a token with its own copy."""
    interpreter = python312()
    env = tool_env(PATH=f"{interpreter.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    build = tmp_path / "build"
    result = run(
        [
            tool("sam"),
            "build",
            "AuthorizerFunction",
            "--config-env",
            "default",
            "--build-dir",
            str(build),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--parameter-overrides",
            f"Architecture={lambda_architecture()}",
        ],
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    function = build / "AuthorizerFunction"
    shared = function / "gateway_identity"
    assert shared.is_dir() and not shared.is_symlink()
    for source in (ROOT / "src" / "llm_gateway" / "identity").glob("*.py"):
        assert (shared / source.name).read_text() == source.read_text()
    assert (function / "jwt").is_dir() and (function / "cryptography").is_dir()
    size = sum(f.stat().st_size for f in function.rglob("*") if f.is_file()) / 1e6
    assert size < 25, f"the authorizer is {size:.1f} MB unzipped"
    script = (
        "import json, sys; import app; v = app.verifier(); "
        "print(json.dumps(v.verify(sys.argv[1]).principal))"
    )
    checked = subprocess.run(
        [
            str(interpreter),
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, '.'); {script}",
            issuer.token(sub="carol"),
        ],
        cwd=function,
        capture_output=True,
        text=True,
        timeout=60,
        env={"GATEWAY_JWT_ISSUER": issuer.url, "GATEWAY_JWT_AUDIENCE": AUDIENCE, "PATH": ""},
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == "user:carol"
