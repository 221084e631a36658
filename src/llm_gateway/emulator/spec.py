"""What one emulated endpoint is: the container it plays (TGI, vLLM, SGLang or LMI), its limits,
pacing and faults, and optionally an inference component that scales to zero.

>>> spec = EndpointSpec(tgi_version="0.8.2", faults=[Fault(kind="model_stream_error", at_token=3)])
>>> spec.limits.max_total_tokens, spec.faults[0].error_code
(2048, 'ModelInvocationTimeExceeded')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from llm_gateway.core.parameters import Limits

# Failures SageMaker answers before any stream starts (rest-json errors).
SAGEMAKER_ERRORS = (
    "validation_error",  # 400 ValidationError
    "model_error",  # 424 ModelError wrapping a container status/message
    "model_not_ready",  # 429 ModelNotReadyException
    "throttling",  # 400 ThrottlingException
    "internal_failure",  # 500 InternalFailure
    "service_unavailable",  # 503 ServiceUnavailable
    "internal_dependency",  # 530 InternalDependencyException
    "access_denied",  # 400 AccessDeniedException naming the caller's role ARN
)
# Failures inside a stream, at token ``at_token`` (0 = before the first token).
STREAM_FAULTS = (
    "tgi_error_event",  # data: {"error": ..., "error_type": ...} from TGI, then the end
    "model_stream_error",  # ModelStreamError exception frame
    "internal_stream_failure",  # InternalStreamFailure exception frame
    "truncate",  # the body ends cleanly without the last token
    "cut_frame",  # the body ends in the middle of a frame
    "corrupt_frame",  # a frame with a wrong CRC
    "malformed_event",  # a PayloadPart whose SSE line is not JSON
    "reset",  # the connection breaks (no end of chunked body)
)
FaultKind = Literal[
    "validation_error",
    "model_error",
    "model_not_ready",
    "throttling",
    "internal_failure",
    "service_unavailable",
    "internal_dependency",
    "access_denied",
    "tgi_error_event",
    "model_stream_error",
    "internal_stream_failure",
    "truncate",
    "cut_frame",
    "corrupt_frame",
    "malformed_event",
    "reset",
    "slow_first_byte",
    "keepalive_silence",
]


class Fault(BaseModel):
    """One injected fault; ``times`` limits how many requests it hits (None = every one)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    at_token: int = Field(0, ge=0)
    seconds: float = Field(0.0, ge=0)
    times: int | None = Field(None, ge=1)
    streaming_only: bool = False  # only hit streaming calls
    message: str | None = None
    # model_error: the container's status and body; tgi_error_event: TGI's error_type
    status: int = 500
    error_type: str = "generation"
    # model_stream_error: SageMaker's ErrorCode (ModelInvocationTimeExceeded | StreamBroken)
    error_code: str = "ModelInvocationTimeExceeded"

    _uses: int = PrivateAttr(0)

    def take(self) -> bool:
        """Count one use; False once ``times`` uses are spent."""
        if self.times is not None and self._uses >= self.times:
            return False
        self._uses += 1
        return True


class Pacing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_token_ms: float = Field(0.0, ge=0)
    token_ms: float = Field(0.0, ge=0)


class ScaleToZero(BaseModel):
    """An inference component at zero copies: SageMaker's no-capacity ``ValidationError`` until
    ``wake_seconds`` after the first failed call, back to zero after ``idle_seconds`` idle."""

    model_config = ConfigDict(extra="forbid")

    wake_seconds: float = Field(8.0, ge=0)
    idle_seconds: float = Field(300.0, gt=0)
    asleep_at_start: bool = True


Server = Literal["tgi", "vllm", "sglang", "lmi"]


class EndpointSpec(BaseModel):
    """A simulated SageMaker endpoint running a simulated container (TGI unless ``server``
    says otherwise: vLLM's or SGLang's OpenAI server, or LMI v17+ async mode)."""

    model_config = ConfigDict(extra="forbid")

    server: Server = "tgi"
    model_id: str = "simulated/tgi-model"
    # The ``model`` the OpenAI servers answer with (vLLM: the model id, LMI: "lmi", SGLang: the
    # model id) and accept in requests besides "" and absent.
    served_model_name: str | None = None
    # vLLM's error body: "nested" {"error": {...}} (>= 0.10.1) or "flat" {"object": "error", ...}.
    error_shape: Literal["nested", "flat"] = "nested"
    # vLLM/SGLang: an SSE ``: keep-alive`` comment before every event (--sse-keep-alive-interval).
    sse_keep_alive: bool = False
    # When set, calls must name this component (X-Amzn-SageMaker-Inference-Component).
    inference_component: str | None = Field(
        None, pattern=r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length=63
    )
    scale_to_zero: ScaleToZero | None = None
    tgi_version: Literal["3.x", "0.8.2"] = "3.x"
    limits: Limits = Field(default_factory=Limits)
    pipeline_tag: str = "text-generation"  # => return_full_text defaults to true on /invocations
    pacing: Pacing = Field(default_factory=Pacing)
    # How the container's SSE bytes are cut into PayloadParts: one per event, random slices,
    # or fixed-size slices ("bytes:7").
    split: str = Field("event", pattern=r"^(event|random|bytes:[1-9][0-9]*)$")
    # Tokens to generate when neither EOS nor a limit stops earlier: None = a few sentences.
    output_tokens: int | None = Field(None, ge=1)
    # A fixed answer (then EOS), e.g. to test how clients show model text with markup in it.
    output_text: str | None = None
    faults: list[Fault] = Field(default_factory=list)
