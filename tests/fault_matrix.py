"""The fault matrix: upstream failure × dialect × stream/buffered → what the client gets.

This table is the single source of ``docs/faults.md`` (``scripts/gen_fault_matrix.py`` writes
it, a test checks it is current) and of ``tests/test_fault_matrix.py``, which drives every row
with the emulator's fault injection.

An :class:`Outcome` is the client-visible result: the HTTP status, the TGI ``error_type`` or
OpenAI ``code``, and whether the failure arrives inside a 200 stream after some tokens.
``None`` means the combination cannot happen (InvokeEndpoint is not streamed, so in-stream
faults do not reach buffered TGI calls; the OpenAI dialect always streams upstream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    status: int
    error: str | None  # TGI error_type / OpenAI error code; None: no error
    in_stream: bool = False  # 200, some tokens, then one error event

    def describe(self, dialect: str) -> str:
        if self.error is None:
            return f"{self.status}, the full answer"
        key = "error_type" if dialect == "tgi" else "code"
        if self.in_stream:
            tail = ", then `[DONE]`" if dialect == "openai" else ""
            return f"200, tokens, then one error event ({key} `{self.error}`){tail}"
        return f"{self.status} ({key} `{self.error}`)"


@dataclass(frozen=True)
class Row:
    name: str
    how: str  # what the emulator (or the test) does
    fault: dict[str, Any] | None
    tgi: Outcome | None
    tgi_stream: Outcome | None
    openai: Outcome | None
    openai_stream: Outcome | None
    metric: str
    model: str = "faulty"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def tgi_model_error(status: int, error_type: str, message: str) -> dict[str, Any]:
    import json

    original = json.dumps({"error": message, "error_type": error_type})
    return {"kind": "model_error", "status": status, "message": original}


K = 2  # in-stream faults strike after this many tokens


def everywhere(outcome: Outcome) -> tuple[Outcome, ...]:
    """The same outcome for TGI, TGI streaming, OpenAI and OpenAI streaming."""
    return (outcome,) * 4


def mid_stream(error: str, buffered: int = 502) -> tuple[Outcome | None, ...]:
    """A fault inside the upstream stream: an error event after tokens wherever the client
    streams, a plain error status for a buffered OpenAI call, and no buffered TGI case."""
    in_stream = Outcome(200, error, True)
    return (None, in_stream, Outcome(buffered, error), in_stream)


ROWS: list[Row] = [
    Row(
        "Unknown endpoint",
        "SageMaker `ValidationError` 400: endpoint not found",
        None,
        *everywhere(Outcome(502, "upstream")),
        "UpstreamErrors",
        model="missing",
        notes="the message names the model and its endpoint",
    ),
    Row(
        "TGI validation error",
        "`ModelError` 424, OriginalStatusCode 422, TGI JSON",
        tgi_model_error(
            422,
            "validation",
            "Input validation error: `inputs` must have less than 1024 tokens. Given: 2000",
        ),
        Outcome(422, "validation"),
        Outcome(422, "validation"),
        Outcome(400, "context_length_exceeded"),
        Outcome(400, "context_length_exceeded"),
        "ClientErrors",
        notes="TGI's own message, byte for byte",
    ),
    Row(
        "TGI generation error",
        "`ModelError` 424, OriginalStatusCode 424",
        tgi_model_error(424, "generation", "Request failed during generation: CUDA out of memory"),
        Outcome(424, "generation"),
        Outcome(424, "generation"),
        Outcome(502, "generation"),
        Outcome(502, "generation"),
        "UpstreamErrors",
    ),
    Row(
        "TGI overloaded",
        "`ModelError` 424, OriginalStatusCode 429 (retried)",
        tgi_model_error(429, "overloaded", "Model is overloaded"),
        Outcome(429, "overloaded"),
        Outcome(429, "overloaded"),
        Outcome(429, "rate_limit_exceeded"),
        Outcome(429, "rate_limit_exceeded"),
        "UpstreamErrors",
        notes="`Retry-After` set",
    ),
    Row(
        "TGI internal error",
        "`ModelError` 424, OriginalStatusCode 500",
        tgi_model_error(500, "incomplete_generation", "Incomplete generation"),
        Outcome(500, "incomplete_generation"),
        Outcome(500, "incomplete_generation"),
        Outcome(502, "incomplete_generation"),
        Outcome(502, "incomplete_generation"),
        "UpstreamErrors",
        notes="TGI's own status on its dialect (JSON, no trace); 502 for OpenAI clients",
    ),
    Row(
        "Model not ready",
        "`ModelNotReadyException` 429 (retried)",
        {"kind": "model_not_ready"},
        *everywhere(Outcome(503, "unavailable")),
        "UpstreamErrors",
        notes="`Retry-After` set",
    ),
    Row(
        "Service unavailable",
        "`ServiceUnavailable` 503 (retried)",
        {"kind": "service_unavailable"},
        *everywhere(Outcome(503, "unavailable")),
        "UpstreamErrors",
    ),
    Row(
        "Internal failure",
        "`InternalFailure` 500 (not retried: the model may have run)",
        {"kind": "internal_failure"},
        *everywhere(Outcome(502, "upstream")),
        "UpstreamErrors",
    ),
    Row(
        "Throttling",
        "`ThrottlingException` (retried)",
        {"kind": "throttling"},
        Outcome(429, "overloaded"),
        Outcome(429, "overloaded"),
        Outcome(429, "rate_limit_exceeded"),
        Outcome(429, "rate_limit_exceeded"),
        "UpstreamErrors",
    ),
    Row(
        "Connection refused",
        "nothing listens at the SageMaker Runtime URL (retried)",
        None,
        *everywhere(Outcome(502, "upstream")),
        "UpstreamErrors",
        extra={"upstream": "refused"},
    ),
    Row(
        "Connect timeout",
        "the runtime endpoint never accepts the connection (retried)",
        None,
        *everywhere(Outcome(504, "timeout")),
        "TimeoutErrors",
        extra={"upstream": "blackhole"},
    ),
    Row(
        "Slow first byte",
        "no answer within the read timeout (not retried)",
        {"kind": "slow_first_byte", "seconds": 1.5},
        *everywhere(Outcome(504, "timeout")),
        "TimeoutErrors",
        extra={"read_timeout": 0.5},
    ),
    Row(
        "ModelStreamError mid-stream",
        f"`ModelStreamError` (ModelInvocationTimeExceeded) after {K} tokens",
        {"kind": "model_stream_error", "at_token": K},
        *mid_stream("timeout", buffered=504),
        "TimeoutErrors",
    ),
    Row(
        "InternalStreamFailure",
        f"`InternalStreamFailure` after {K} tokens",
        {"kind": "internal_stream_failure", "at_token": K},
        *mid_stream("upstream"),
        "StreamErrors",
    ),
    Row(
        "Truncated stream",
        f"the body ends after {K} tokens, without the last one",
        {"kind": "truncate", "at_token": K},
        *mid_stream("incomplete_generation_stream"),
        "StreamErrors",
        notes="TGI's own message: `Incomplete generation stream`",
    ),
    Row(
        "Cut frame",
        f"the connection ends inside an event-stream frame after {K} tokens",
        {"kind": "cut_frame", "at_token": K},
        *mid_stream("incomplete_generation_stream"),
        "StreamErrors",
    ),
    Row(
        "Corrupt frame",
        f"a frame with a wrong CRC after {K} tokens",
        {"kind": "corrupt_frame", "at_token": K},
        *mid_stream("upstream"),
        "StreamErrors",
    ),
    Row(
        "Malformed SSE line",
        f"a `data:` line that is not JSON after {K} tokens",
        {"kind": "malformed_event", "at_token": K},
        *mid_stream("upstream"),
        "UpstreamErrors",
    ),
    Row(
        "TGI error event",
        f'`data: {{"error", "error_type": "generation"}}` after {K} tokens',
        {"kind": "tgi_error_event", "at_token": K},
        *mid_stream("generation"),
        "UpstreamErrors",
        notes="relayed as TGI's error event on the TGI dialect",
    ),
    Row(
        "Connection reset",
        f"the upstream connection breaks after {K} tokens",
        {"kind": "reset", "at_token": K},
        *mid_stream("upstream"),
        "UpstreamErrors",
    ),
    Row(
        "Keep-alive silence",
        "only `:` keep-alives for 1.2 s, then tokens",
        {"kind": "keepalive_silence", "seconds": 1.2},
        None,
        Outcome(200, None),
        Outcome(200, None),
        Outcome(200, None),
        "—",
        notes="the head goes out after the commit window with `: waiting for the model`, "
        "heartbeats follow; the answer is complete",
    ),
]

DISCONNECT = (
    "Client disconnects mid-stream",
    "the client closes the connection after the first tokens",
    "the upstream SageMaker stream is closed within 1 s (the emulator counts it aborted)",
    "StreamDisconnects",
)
