"""An inference component at zero copies: SageMaker's no-capacity error until it wakes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import orjson
import pytest
from botocore.exceptions import ClientError

from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.emulator.spec import ScaleToZero
from llm_gateway.emulator.wake import WakeState

# Verbatim from the AWS blog and notebook (cost-control-facts.md, A3), without botocore's
# "An error occurred (ValidationError) when calling the InvokeEndpoint operation: " prefix.
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
    "in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)
# Both long enough for the calls in between on a busy machine: two refused calls and a stats
# read must land inside the wake (0.3 s was too short for a loaded 2-core machine).
WAKE, IDLE = 1.5, 1.0
BODY = orjson.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 3}})


@pytest.fixture
def sleepy(emulator: Emulator) -> Iterator[Any]:
    def configure(**spec: Any) -> str:
        emulator.set_endpoint("sleepy-endpoint", EndpointSpec.model_validate(spec))
        return "sleepy-endpoint"

    yield configure
    emulator.endpoints.pop("sleepy-endpoint", None)


@pytest.fixture
def runtime(emulator: Emulator) -> Any:
    return boto3.client("sagemaker-runtime")


def call(runtime: Any, endpoint: str, *, streaming: bool = False, **extra: Any) -> bytes:
    kwargs = {"EndpointName": endpoint, "Body": BODY, "ContentType": "application/json", **extra}
    if streaming:
        out = runtime.invoke_endpoint_with_response_stream(**kwargs)
        return b"".join(e["PayloadPart"]["Bytes"] for e in out["Body"])
    data: bytes = runtime.invoke_endpoint(**kwargs)["Body"].read()
    return data


def refused(runtime: Any, endpoint: str, *, streaming: bool = False, **extra: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(runtime, endpoint, streaming=streaming, **extra)
    return info.value


def stats(emulator: Emulator, name: str) -> dict[str, Any]:
    url = f"{emulator.url}/_emulator/endpoints/{name}/stats"  # type: ignore[attr-defined]
    data: dict[str, Any] = httpx.get(url).json()
    return data


def test_the_wake_cycle(emulator: Emulator, runtime: Any, sleepy: Any) -> None:
    name = sleepy(scale_to_zero={"wake_seconds": WAKE, "idle_seconds": IDLE})
    assert stats(emulator, name)["scale_to_zero"]["state"] == "asleep"
    for streaming in (False, True):  # both operations fail while there is no copy
        error = refused(runtime, name, streaming=streaming)
        response = error.response
        assert response["Error"] == {"Code": "ValidationError", "Message": NO_CAPACITY}
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-errortype"].startswith("ValidationError")
    assert str(error).endswith(f"operation: {NO_CAPACITY}")
    state = stats(emulator, name)["scale_to_zero"]
    assert state["state"] == "waking" and state["wakes"] == 1
    assert state["no_capacity_failures"] == 2
    time.sleep(WAKE + 0.05)  # counted from the first failed call
    assert orjson.loads(call(runtime, name))[0]["generated_text"].startswith("Hello")
    assert call(runtime, name, streaming=True).startswith(b'[{"generated_text":"Hello')
    assert stats(emulator, name)["scale_to_zero"]["state"] == "awake"
    time.sleep(IDLE + 0.1)  # no calls: back to zero copies
    assert stats(emulator, name)["scale_to_zero"]["state"] == "asleep"
    refused(runtime, name)
    state = stats(emulator, name)
    assert state["scale_to_zero"] == {
        "state": "waking",
        "wakes": 2,
        "no_capacity_failures": 3,
        "wake_seconds": WAKE,
        "idle_seconds": IDLE,
    }
    assert state["requests"] == 5  # failed calls are calls


def test_calls_keep_an_awake_component_awake(runtime: Any, sleepy: Any) -> None:
    name = sleepy(scale_to_zero={"wake_seconds": 0, "idle_seconds": 1.0, "asleep_at_start": False})
    for _ in range(6):
        call(runtime, name)
        time.sleep(0.25)  # each gap shorter than idle_seconds (calls included), their sum longer
    time.sleep(0.9)
    assert refused(runtime, name).response["Error"]["Message"] == NO_CAPACITY


def test_failures_during_the_wake_do_not_restart_it() -> None:
    wake = WakeState(ScaleToZero(wake_seconds=10, idle_seconds=60), now=0.0)
    assert [wake.admit(t) for t in (1.0, 5.0, 10.9, 11.0)] == [False, False, False, True]
    assert wake.wakes == 1 and wake.no_capacity_failures == 3
    assert wake.state(11.0 + 59.9) == "awake" and wake.state(11.0 + 60) == "asleep"


def test_inference_component_header(runtime: Any, sleepy: Any) -> None:
    name = sleepy(server="vllm", inference_component="ic-llama-1")
    chat = orjson.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    ok = runtime.invoke_endpoint(
        EndpointName=name,
        Body=chat,
        ContentType="application/json",
        InferenceComponentName="ic-llama-1",
    )
    assert orjson.loads(ok["Body"].read())["object"] == "chat.completion"
    missing = refused(runtime, name).response["Error"]
    assert missing["Code"] == "ValidationError"
    assert missing["Message"].startswith("Inference Component Name header is required")
    wrong = refused(runtime, name, InferenceComponentName="ic-other").response["Error"]
    assert wrong["Code"] == "ValidationError" and "ic-other" in wrong["Message"]


def test_a_component_at_zero_is_checked_after_its_name(runtime: Any, sleepy: Any) -> None:
    name = sleepy(
        server="vllm",
        inference_component="ic-1",
        scale_to_zero={"wake_seconds": 30, "idle_seconds": 60},
    )
    assert "header is required" in refused(runtime, name).response["Error"]["Message"]
    error = refused(runtime, name, streaming=True, InferenceComponentName="ic-1")
    assert error.response["Error"]["Message"] == NO_CAPACITY


def test_endpoints_without_the_option_report_no_wake_state(emulator: Emulator) -> None:
    assert "scale_to_zero" not in stats(emulator, "tgi3-endpoint")
