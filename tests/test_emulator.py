"""The emulator speaks SageMaker Runtime's wire protocol: proven with botocore on the other side."""

from __future__ import annotations

import boto3
import orjson
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.emulator.eventstream import encode_message, payload_part, stream_exception

KNOWN_ANSWER = bytes.fromhex(
    "0000008200000059bcb3d5cb0b3a6576656e742d7479706507000b5061796c6f6164506172740d3a636f6e74"
    "656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d0d3a6d657373616765"
    "2d747970650700056576656e74646174613a7b22746f6b656e223a7b226964223a317d7d0a0a3879bd15"
)


def decode(data: bytes, chunk: int | None = None) -> list:
    buffer, out = EventStreamBuffer(), []
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        buffer.add_data(data[i : i + step])
        out.extend(buffer)
    return out


def test_known_answer_frame_from_reference():
    assert payload_part(b'data:{"token":{"id":1}}\n\n') == KNOWN_ANSWER


def test_botocore_unit_vectors():
    # botocore's own test vector: the empty message
    assert encode_message([], b"") == bytes.fromhex("000000100000000005c248eb7d98c8ff")
    frame = encode_message(
        [(":message-type", "error"), (":error-code", "code"), (":error-message", "message")], b""
    )
    assert frame[:12].hex() == "0000005200000042bf23637e"
    assert frame[-4:].hex() == "6b6cea3d"


@settings(max_examples=100, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=5),
    chunk=st.integers(min_value=1, max_value=64),
)
def test_botocore_decodes_frames_split_anywhere(payloads, chunk):
    data = b"".join(payload_part(p) for p in payloads)
    messages = decode(data, chunk)
    assert [m.payload for m in messages] == payloads
    for m in messages:
        assert m.headers[":event-type"] == "PayloadPart"
        assert m.headers[":message-type"] == "event"
        assert m.to_response_dict()["status_code"] == 200


def test_exception_frames_are_errors_to_botocore():
    (message,) = decode(
        stream_exception("ModelStreamError", "too slow", "ModelInvocationTimeExceeded")
    )
    response = message.to_response_dict()
    assert response["status_code"] == 400
    assert message.headers[":exception-type"] == "ModelStreamError"
    assert orjson.loads(message.payload) == {
        "Message": "too slow",
        "ErrorCode": "ModelInvocationTimeExceeded",
    }


def test_corrupt_crc_is_rejected():
    frame = bytearray(payload_part(b"data: x\n\n"))
    frame[-1] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decode(bytes(frame))


@pytest.fixture
def runtime(emulator):
    return boto3.client("sagemaker-runtime")


def body(inputs="Hello there", stream=False, **parameters):
    payload = {"inputs": inputs, "parameters": parameters}
    if stream:
        payload["stream"] = True
    return orjson.dumps(payload)


def test_invoke_endpoint_returns_tgi_array(runtime):
    out = runtime.invoke_endpoint(
        EndpointName="tgi3-endpoint",
        Body=body(max_new_tokens=5, details=True),
        ContentType="application/json",
    )
    data = orjson.loads(out["Body"].read())
    assert isinstance(data, list) and len(data) == 1
    assert data[0]["generated_text"].startswith("Hello there")  # return_full_text defaults to true
    assert data[0]["details"]["generated_tokens"] == 5
    assert data[0]["details"]["finish_reason"] == "length"


def test_streams_through_boto3_in_both_formats(runtime):
    for endpoint, prefix in (("tgi3-endpoint", b"data: {"), ("tgi082-endpoint", b"data:{")):
        out = runtime.invoke_endpoint_with_response_stream(
            EndpointName=endpoint,
            Body=body(stream=True, max_new_tokens=4, details=True, return_full_text=False),
            ContentType="application/json",
        )
        raw = b"".join(e["PayloadPart"]["Bytes"] for e in out["Body"])
        events = [orjson.loads(line[len(prefix) - 1 :]) for line in raw.split(b"\n\n") if line]
        assert raw.startswith(prefix)
        assert len(events) == 4 and events[-1]["details"]["generated_tokens"] == 4
        assert ("index" in events[0]) == (endpoint == "tgi3-endpoint")


def test_paced_tokens_after_an_unpaced_first_keep_their_order(runtime, emulator):
    from llm_gateway.emulator import EndpointSpec

    spec = {"pacing": {"first_token_ms": 0, "token_ms": 5}}
    emulator.set_endpoint("paced-endpoint", EndpointSpec.model_validate(spec))
    try:
        out = runtime.invoke_endpoint_with_response_stream(
            EndpointName="paced-endpoint",
            Body=body(stream=True, max_new_tokens=4, details=True),
            ContentType="application/json",
        )
        raw = b"".join(e["PayloadPart"]["Bytes"] for e in out["Body"])
    finally:
        emulator.endpoints.pop("paced-endpoint", None)
    events = [orjson.loads(line[len(b"data: ") :]) for line in raw.split(b"\n\n") if line]
    assert [e["index"] for e in events] == [1, 2, 3, 4]  # the first token is not held back
    assert events[-1]["generated_text"] is not None


def test_unknown_endpoint_is_validation_error(runtime):
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="nope", Body=body(), ContentType="application/json")
    err = info.value.response["Error"]
    assert err["Code"] == "ValidationError"
    assert err["Message"] == "Endpoint nope of account 123456789012 not found."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_container_validation_error_is_model_error_424(runtime):
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(
            EndpointName="tgi3-endpoint", Body=body(top_k=0), ContentType="application/json"
        )
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 422
    assert orjson.loads(response["OriginalMessage"]) == {
        "error": "Input validation error: `top_k` must be strictly positive",
        "error_type": "validation",
    }


def test_container_type_error_is_the_untagged_enum_message(runtime):
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(
            EndpointName="tgi3-endpoint",
            Body=b'{"inputs":"x","parameters":{"top_k":"a"}}',
            ContentType="application/json",
        )
    assert info.value.response["OriginalMessage"] == (
        "Failed to deserialize the JSON body into the target type: "
        "data did not match any variant of untagged enum SagemakerRequest"
    )


def test_stream_validation_error_is_an_event_on_200(runtime):
    out = runtime.invoke_endpoint_with_response_stream(
        EndpointName="tgi3-endpoint",
        Body=body(stream=True, max_new_tokens=5000, inputs=" x" * 1100),
        ContentType="application/json",
    )
    raw = b"".join(e["PayloadPart"]["Bytes"] for e in out["Body"])
    assert orjson.loads(raw[6:]) == {
        "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 1100 `inputs` tokens and 1024 `max_new_tokens`",
        "error_type": "validation",
    }


def test_model_stream_error_reaches_boto3(runtime, faulty):
    faulty(faults=[{"kind": "model_stream_error", "at_token": 2}])
    out = runtime.invoke_endpoint_with_response_stream(
        EndpointName="faulty-endpoint",
        Body=body(stream=True, max_new_tokens=5),
        ContentType="application/json",
    )
    parts = []
    with pytest.raises(EventStreamError) as info:
        for event in out["Body"]:
            parts.append(event)
    assert len(parts) == 2
    assert info.value.response["Error"]["Code"] == "ModelStreamError"
    assert "allotted time" in info.value.response["Error"]["Message"]


def test_seeds_make_sampling_deterministic(runtime):
    def run(seed):
        out = runtime.invoke_endpoint(
            EndpointName="tgi3-endpoint",
            Body=body(
                do_sample=True, seed=seed, max_new_tokens=12, details=True, return_full_text=False
            ),
            ContentType="application/json",
        )
        return orjson.loads(out["Body"].read())[0]

    a, b, c = run(7), run(7), run(8)
    assert a == b and a["details"]["seed"] == 7
    assert a["generated_text"] != c["generated_text"]
    greedy = orjson.loads(
        runtime.invoke_endpoint(
            EndpointName="tgi3-endpoint",
            Body=body(max_new_tokens=3, details=True),
            ContentType="application/json",
        )["Body"].read()
    )[0]
    assert greedy["details"]["seed"] is None


def test_stop_sequence_and_best_of(runtime):
    out = orjson.loads(
        runtime.invoke_endpoint(
            EndpointName="tgi3-endpoint",
            Body=body(stop=["."], details=True, return_full_text=False, max_new_tokens=200),
            ContentType="application/json",
        )["Body"].read()
    )[0]
    assert out["generated_text"].endswith(".")  # TGI keeps the stop text
    assert out["details"]["finish_reason"] == "stop_sequence"
    best = orjson.loads(
        runtime.invoke_endpoint(
            EndpointName="tgi3-endpoint",
            Body=body(best_of=2, do_sample=True, details=True, max_new_tokens=4),
            ContentType="application/json",
        )["Body"].read()
    )[0]
    assert len(best["details"]["best_of_sequences"]) == 1


def test_fixed_output_text(runtime, faulty):
    faulty(output_text=" <script>alert(1)</script> done.")
    out = orjson.loads(
        runtime.invoke_endpoint(
            EndpointName="faulty-endpoint",
            Body=body(details=True, return_full_text=False),
            ContentType="application/json",
        )["Body"].read()
    )[0]
    assert out["generated_text"] == " <script>alert(1)</script> done."
    assert out["details"]["finish_reason"] == "eos_token"


def test_admin_api_changes_endpoints_at_run_time(emulator, runtime):
    import httpx

    spec = {"tgi_version": "0.8.2", "output_text": " Configured over HTTP."}
    r = httpx.put(f"{emulator.url}/_emulator/endpoints/admin-endpoint", json=spec)
    assert r.status_code == 200 and r.json()["tgi_version"] == "0.8.2"
    assert "admin-endpoint" in httpx.get(f"{emulator.url}/_emulator/endpoints").json()
    out = orjson.loads(
        runtime.invoke_endpoint(
            EndpointName="admin-endpoint",
            Body=body(return_full_text=False),
            ContentType="application/json",
        )["Body"].read()
    )[0]
    assert out["generated_text"] == " Configured over HTTP."
    stats = httpx.get(f"{emulator.url}/_emulator/endpoints/admin-endpoint/stats").json()
    assert (
        stats["requests"] == 1
        and orjson.loads(stats["recent"][0]["body"])["inputs"] == "Hello there"
    )
    bad = httpx.put(f"{emulator.url}/_emulator/endpoints/admin-endpoint", json={"tgi_version": "9"})
    assert bad.status_code == 400 and "error" in bad.json()
    del emulator.endpoints["admin-endpoint"]
