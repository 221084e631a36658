"""SageMaker Runtime on the wire, as the emulator writes it: rest-json errors, the slicing of a
container's bytes into ``PayloadPart`` frames, and the bytes each in-stream fault produces."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.responses import Response

from llm_gateway.emulator.eventstream import payload_part, stream_exception
from llm_gateway.emulator.spec import Fault

ACCOUNT = "123456789012"
REGION = "us-east-1"
EVENTSTREAM = "application/vnd.amazon.eventstream"
UNTAGGED_ENUM = (
    "Failed to deserialize the JSON body into the target type: "
    "data did not match any variant of untagged enum SagemakerRequest"
)
STREAM_ERROR_MESSAGES = {
    "ModelInvocationTimeExceeded": (
        "Your model primary did not complete sending the inference response in the allotted time."
    ),
    "StreamBroken": "The TCP connection between the client and the model was reset or closed.",
}
SAGEMAKER_ERROR_KINDS: dict[str, tuple[str, int, str]] = {
    "validation_error": ("ValidationError", 400, "Inspect your request and try again."),
    "model_not_ready": ("ModelNotReadyException", 429, "Model is not ready to serve requests yet."),
    "throttling": ("ThrottlingException", 400, "Rate exceeded"),
    "internal_failure": ("InternalFailure", 500, "An internal failure occurred."),
    "service_unavailable": (
        "ServiceUnavailable",
        503,
        "Service is unavailable. Try your call again.",
    ),
    "internal_dependency": ("InternalDependencyException", 530, "An internal dependency failed."),
    # What an execution role without sagemaker:InvokeEndpoint gets (it names the role's ARN).
    "access_denied": (
        "AccessDeniedException",
        400,
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/gateway-role/gateway is not authorized to "
        f"perform: sagemaker:InvokeEndpoint on resource: "
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/faulty-endpoint",
    ),
}


class EmulatedReset(Exception):
    """Raised inside a response body to break the connection (the ``reset`` fault)."""


def sagemaker_error(code: str, status: int, message: str, **members: Any) -> Response:
    body = (
        {"message": message, **members} if code != "ModelError" else {"Message": message, **members}
    )
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.sagemaker/",
            "x-amzn-RequestId": str(uuid.uuid4()),
        },
    )


def model_error(endpoint: str, status: int, original: str) -> Response:
    """A container answer other than 200, as SageMaker reports it."""
    side = "client" if status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return sagemaker_error(
        "ModelError",
        424,
        f'Received {side} error ({status}) from primary with message "{original}". See '
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
        f"group={log_group} in account {ACCOUNT} for more information.",
        OriginalStatusCode=status,
        OriginalMessage=original,
        LogStreamArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}",
    )


def slices(split: str, rng: random.Random) -> Callable[..., list[bytes]]:
    """A function cutting bytes into PayloadPart slices, carrying the rest to the next call."""
    if split == "event":
        return lambda data, final=False: [data] if data else []
    size = int(split.split(":")[1]) if split.startswith("bytes:") else 0
    carry = bytearray()

    def cut(data: bytes, final: bool = False) -> list[bytes]:
        carry.extend(data)
        out = []
        while carry:
            n = size or rng.randint(1, 48)
            if len(carry) < n and not final:
                break
            out.append(bytes(carry[:n]))
            del carry[:n]
        return out

    return cut


async def fault_frames(
    fault: Fault, legacy: bool, error_event: Callable[[str | None, int], bytes] | None = None
) -> AsyncIterator[bytes]:
    """The bytes an in-stream fault puts on the wire (``reset`` raises instead).

    ``error_event`` builds the container's own in-stream error (``tgi_error_event`` on a vLLM,
    SGLang or LMI endpoint) from the fault's message and status."""
    prefix = b"data:" if legacy else b"data: "
    kind = fault.kind
    if kind == "tgi_error_event" and error_event is not None:
        yield payload_part(error_event(fault.message, fault.status))
    elif kind == "tgi_error_event":
        message = fault.message or "Request failed during generation: simulated CUDA out of memory"
        yield payload_part(
            prefix + orjson.dumps({"error": message, "error_type": fault.error_type}) + b"\n\n"
        )
    elif kind == "model_stream_error":
        message = fault.message or STREAM_ERROR_MESSAGES.get(
            fault.error_code, "Model stream error."
        )
        yield stream_exception("ModelStreamError", message, fault.error_code)
    elif kind == "internal_stream_failure":
        yield stream_exception(
            "InternalStreamFailure",
            fault.message or "The stream processing failed because of an unknown error.",
        )
    elif kind == "malformed_event":
        yield payload_part(prefix + b'{"token": {"id": 1, "text": \n\n')
    elif kind == "corrupt_frame":
        frame = bytearray(payload_part(prefix + b'{"token":{"id":1,"text":"x"}}\n\n'))
        frame[-1] ^= 0xFF
        yield bytes(frame)
    elif kind == "cut_frame":
        whole = payload_part(prefix + b'{"token":{"id":1,"text":"x"}}\n\n')
        yield whole[: len(whole) // 2]
    elif kind == "reset":
        await asyncio.sleep(0)
        raise EmulatedReset("simulated connection reset")
    # "truncate": nothing more; the body just ends.
