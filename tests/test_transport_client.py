"""The SageMaker Runtime client the gateway builds from botocore's session (no boto3 import at
cold start) sends what a boto3 client with the same settings sends: the same requests, headers
(User-Agent included) and signature scope, to the endpoint ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``
names. Both call the emulator for real and both answers are compared."""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
import pytest

from llm_gateway.config import Settings
from llm_gateway.config.settings import aws_region
from llm_gateway.emulator import Emulator
from llm_gateway.transport.sagemaker import client_config, make_client

# Differ on every request by design: the clock, and the signature over it; a random id.
PER_REQUEST = {"X-Amz-Date", "Authorization", "amz-sdk-invocation-id"}


def boto3_client(settings: Settings) -> Any:
    """What the gateway built before: boto3's Session, with the gateway's config."""
    return boto3.session.Session(region_name=aws_region()).client(
        "sagemaker-runtime", config=client_config(settings)
    )


def sent(client: Any, call: str) -> tuple[dict[str, Any], bytes]:
    """The request ``call`` sends (headers as sent, signature split into its stable parts),
    and the answer's bytes."""
    seen: list[Any] = []
    client.meta.events.register(
        "before-send.sagemaker-runtime", lambda request, **_: seen.append(request)
    )
    body = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 5, "seed": 1}})
    if call == "stream":
        out = client.invoke_endpoint_with_response_stream(
            EndpointName="tgi3-endpoint", Body=body, ContentType="application/json"
        )
        answer = b"".join(e.get("PayloadPart", {}).get("Bytes", b"") for e in out["Body"])
    else:
        out = client.invoke_endpoint(
            EndpointName="tgi3-endpoint", Body=body, ContentType="application/json"
        )
        answer = out["Body"].read()
    (request,) = seen
    headers = {k: v for k, v in request.headers.items() if k not in PER_REQUEST}
    algorithm, _, fields = request.headers["Authorization"].decode().partition(" ")
    parts = dict(p.strip().split("=", 1) for p in fields.split(","))
    scope = parts["Credential"].split("/")
    return {
        "method": request.method,
        "url": request.url,
        "body": request.body,
        "headers": headers,
        "algorithm": algorithm,
        "credential": [scope[0], *scope[2:]],  # key id, region, service, aws4_request
        "signed_headers": parts["SignedHeaders"],
    }, answer


@pytest.mark.parametrize("call", ["buffered", "stream"])
def test_the_botocore_client_sends_what_a_boto3_client_sends(emulator: Emulator, call: str):
    settings = Settings()
    ours, theirs = make_client(settings), boto3_client(settings)
    assert ours.meta.endpoint_url == theirs.meta.endpoint_url == emulator.url  # type: ignore[attr-defined]
    ours_sent, ours_answer = sent(ours, call)
    theirs_sent, theirs_answer = sent(theirs, call)
    assert ours_sent == theirs_sent
    assert ours_answer == theirs_answer and ours_answer
    user_agent = ours_sent["headers"]["User-Agent"].decode()
    assert user_agent.startswith(f"Boto3/{boto3.__version__} ") and "llm-gateway" in user_agent


def test_the_client_is_built_without_importing_boto3(monkeypatch: pytest.MonkeyPatch):
    """The cold-start saving itself: building the client loads no boto3 module (its version for
    the User-Agent comes from the installed metadata)."""
    for name in [m for m in sys.modules if m == "boto3" or m.startswith("boto3.")]:
        monkeypatch.delitem(sys.modules, name)
    client = make_client(Settings())
    assert client.meta.service_model.service_name == "sagemaker-runtime"
    assert not [m for m in sys.modules if m == "boto3" or m.startswith("boto3.")]
