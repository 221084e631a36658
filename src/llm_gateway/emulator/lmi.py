"""AWS LMI v17+ (DJL Serving, vLLM async mode) behind ``/invocations``.

The body decides: ``prompt`` is a vLLM completion, ``inputs`` a TGI-style request rewritten into
one, ``messages`` a vLLM chat, anything else 424 ``Input parsing failed``. Everything comes back
as JSON or **JSON Lines, never SSE**: each piece ends with ``\\n``, vLLM's SSE events lose their
``data:`` prefix and ``[DONE]`` becomes an empty line. The TGI emulation differs from TGI as the
reference lists: token ``logprob`` without ``special``, vLLM finish reasons, non-stream
``details.finish_reason`` = vLLM's ``stop_reason`` (null for EOS and length), streamed
``generated_tokens`` one too many, ``max_new_tokens`` 30 by default, ``top_n_tokens`` read as
``n``, ``stop_sequences`` and other TGI fields silently dropped, and a stream ending in two
empty lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from llm_gateway.emulator.framing import ContainerAnswer, error_info, error_type, gson
from llm_gateway.emulator.model import token_id, tokenize
from llm_gateway.emulator.openai_body import Answer, response
from llm_gateway.emulator.openai_request import (
    ChatBody,
    CompletionBody,
    OpenAIError,
    Prepared,
    prepare,
)
from llm_gateway.emulator.openai_server import DEFAULT_STREAM_ERROR, run
from llm_gateway.emulator.openai_stream import stream_chunks
from llm_gateway.emulator.sampler import Choice
from llm_gateway.emulator.spec import EndpointSpec

JSONL = "application/jsonlines"
NO_KEY = "invalid payload. must contain prompt, inputs, or messages"


def parsing_failed(message: str) -> ContainerAnswer:
    return ContainerAnswer(424, [gson({"error": f"Input parsing failed: {message}", "code": 424})])


def engine_error(err: OpenAIError) -> ContainerAnswer:
    """LMI v16+ reading vLLM's nested ``ErrorResponse`` as if flat: ``str(response)``, 500."""
    info = f"ErrorInfo(message={err.message!r}, type={err.type!r}, param=None, code={err.code})"
    return ContainerAnswer(500, [gson({"error": f"error={info}", "code": 500})])


def _dumps(value: Any) -> bytes:
    """LMI's own objects: Python ``json.dumps(..., ensure_ascii=False)``."""
    return json.dumps(value, ensure_ascii=False).encode()


def _error_line(message: str | None, status: int) -> bytes:
    info = error_info(message or DEFAULT_STREAM_ERROR, error_type(status), status, flat=False)
    return json.dumps({"error": info}).encode() + b"\n"


def _stream(events: list[bytes]) -> ContainerAnswer:
    return ContainerAnswer(200, events, JSONL, streamed=True, error_event=_error_line)


def _prepare(spec: EndpointSpec, body: ChatBody | CompletionBody) -> Prepared:
    served = spec.served_model_name or "lmi"
    return prepare(body, context=spec.limits.max_total_tokens, served=served)


def _openai(spec: EndpointSpec, body: ChatBody | CompletionBody) -> ContainerAnswer:
    try:
        prep = _prepare(spec, body)
    except OpenAIError as err:
        return engine_error(err)
    answer = run(prep, spec, "vllm", spec.served_model_name or "lmi")
    if not body.stream:
        return ContainerAnswer(200, [orjson.dumps(response(answer)) + b"\n"])
    chunks = stream_chunks(
        answer, include_usage=prep.include_usage, continuous=prep.continuous_usage
    )
    return _stream([orjson.dumps(chunk) + b"\n" for chunk in chunks] + [b"\n"])


def _completion_request(data: dict[str, Any]) -> dict[str, Any]:
    """``convert_lmi_schema_to_completion_request``."""
    parameters = dict(data.get("parameters") or {})
    stream = bool(data.get("stream"))
    details = bool(parameters.pop("details", False))
    prefill = bool(parameters.pop("decoder_input_details", False)) and details
    request: dict[str, Any] = {
        "prompt": data["inputs"],
        "max_tokens": parameters.pop("max_new_tokens", 30),
        "echo": bool(parameters.pop("return_full_text", False)),
        "n": parameters.pop("top_n_tokens", None) or 1,
        "stream": stream,
    }
    if "truncate" in parameters:
        request["truncate_prompt_tokens"] = parameters.pop("truncate")
    if parameters.pop("do_sample", None) is False:
        parameters["temperature"] = 0.0
    if stream or details:
        request |= {"logprobs": 1, "return_tokens_as_token_ids": True}
    if stream:
        request["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    if prefill:
        request["prompt_logprobs"] = 1
    if "model" in data:
        request["model"] = data["model"]
    return {**request, **parameters}


def _token(choice: Choice, step: int, text: str | None = None) -> dict[str, Any]:
    token = choice.tokens[step]
    shown = ("" if token.special else token.text) if text is None else text
    return {"id": token.id, "text": shown, "logprob": token.logprob}


def _prefill(inputs: str) -> list[dict[str, Any]]:
    pieces = tokenize(inputs)
    return [
        {"id": token_id(p), "text": p, "logprob": None if i == 0 else round(-0.5 - i % 3 / 4, 4)}
        for i, p in enumerate(pieces)
    ]


def _tgi(spec: EndpointSpec, data: dict[str, Any]) -> ContainerAnswer:
    if not isinstance(data.get("parameters") or {}, dict):
        return parsing_failed("parameters must be a JSON object")
    request = _completion_request(data)
    if request["stream"] and request.get("prompt_logprobs"):
        return parsing_failed("`prompt_logprobs` are not available when `stream=True`.")
    try:
        body = CompletionBody.model_validate(request)
    except ValidationError as exc:
        return parsing_failed(str(exc))
    try:
        prep = _prepare(spec, body)
    except OpenAIError as err:
        return engine_error(err)
    answer = run(prep, spec, "vllm", spec.served_model_name or "lmi")
    details = bool((data.get("parameters") or {}).get("details"))
    echo = data["inputs"] if request["echo"] else ""
    seed = request.get("seed")
    if request["stream"]:
        return _stream(_tgi_lines(answer, echo, seed, details))
    choice = answer.choices[0]
    out: dict[str, Any] = {"generated_text": echo + choice.text}
    if details:
        out["details"] = {
            "finish_reason": choice.stop_reason,
            "generated_tokens": answer.completion_tokens,
            "seed": seed,
            "prefill": _prefill(data["inputs"]) if request.get("prompt_logprobs") else [],
            "tokens": [_token(choice, i) for i in range(len(choice.tokens))],
        }
    return ContainerAnswer(200, [_dumps(out) + b"\n"])


def _tgi_lines(answer: Answer, echo: str, seed: Any, details: bool) -> list[bytes]:
    """``convert_completion_chunk_response_to_lmi_schema``, one line per vLLM chunk."""
    lines = []
    longest = max(len(c.tokens) for c in answer.choices)
    for step in range(longest):
        for choice in answer.choices:
            if step >= len(choice.tokens):
                continue
            last = step == len(choice.tokens) - 1
            line: dict[str, Any] = {
                "index": choice.index,
                "token": _token(choice, step, choice.deltas[step]),
                "generated_text": echo + choice.text if last else None,
                "details": None,
            }
            if last and details:
                line["details"] = {
                    "finish_reason": choice.finish_reason or choice.stop_reason,
                    "seed": seed,
                    "generated_tokens": len(choice.tokens) + 1,
                    "input_length": answer.prompt_tokens,
                }
            lines.append(_dumps(line) + b"\n")
    return [*lines, b"\n", b"\n"]  # the usage-only chunk and [DONE], each an empty line


def lmi(spec: EndpointSpec, raw: bytes) -> ContainerAnswer:
    """``vllm_async_service.preprocess_request``: dispatch on the body's keys."""
    try:
        data = json.loads(raw) if raw.strip() else {"inputs": ""}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return parsing_failed(str(exc))
    if not isinstance(data, dict):
        return parsing_failed(NO_KEY)
    kinds: list[tuple[str, Callable[[], ContainerAnswer]]] = [
        ("prompt", lambda: _validated(spec, CompletionBody, data)),
        ("inputs", lambda: _tgi(spec, data)),
        ("messages", lambda: _validated(spec, ChatBody, data)),
    ]
    for key, handle in kinds:
        if key in data:
            return handle()
    return parsing_failed(NO_KEY)


def _validated(
    spec: EndpointSpec, kind: type[ChatBody] | type[CompletionBody], data: dict[str, Any]
) -> ContainerAnswer:
    try:
        body = kind.model_validate(data)
    except ValidationError as exc:
        return parsing_failed(str(exc))
    return _openai(spec, body)
