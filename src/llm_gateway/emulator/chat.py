"""The simulated TGI's Messages API: chat payloads on ``/invocations`` (TGI >= 2.4), answered
as TGI answers them (``ChatCompletion`` objects or ``chat.completion.chunk`` SSE, TGI's own
finish reasons, its ``{"error": {"message", "http_status_code": 422}}`` stream errors)."""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.parameters import GenerateParameters, GenerateRequest
from llm_gateway.emulator.model import Generation

SYSTEM_FINGERPRINT = "3.3.6-native"
_CHAT_FINISH = {"eos_token": "stop", "length": "length", "stop_sequence": "stop_sequence"}


def chat_prompt(messages: list[dict[str, Any]]) -> str:
    """The simulated model's chat template (ChatML)."""
    out = ""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out += f"<|im_start|>{message.get('role')}\n{content or ''}<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


def chat_request(data: dict[str, Any]) -> GenerateRequest:
    """TGI's ``ChatRequest`` -> generate request (``lib.rs``): temperature 0 is greedy,
    ``presence_penalty`` becomes ``repetition_penalty = p + 2``, ``top_logprobs`` is
    ``top_n_tokens``."""
    temperature = data.get("temperature")
    greedy = temperature == 0
    presence = data.get("presence_penalty")
    stop = data.get("stop")
    parameters = GenerateParameters(
        max_new_tokens=data.get("max_tokens", data.get("max_completion_tokens")),
        temperature=None if greedy else temperature,
        do_sample=not greedy,
        top_p=data.get("top_p"),
        seed=data.get("seed"),
        stop=[stop] if isinstance(stop, str) else stop,
        frequency_penalty=data.get("frequency_penalty"),
        repetition_penalty=None if presence is None else presence + 2.0,
        top_n_tokens=data.get("top_logprobs") if data.get("logprobs") else None,
        details=True,
        return_full_text=False,
    )
    return GenerateRequest(
        inputs=chat_prompt(data["messages"]), parameters=parameters, stream=bool(data.get("stream"))
    )


def _chat_base(obj: str, model: str, created: int) -> dict[str, Any]:
    return {
        "object": obj,
        "id": "",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _usage(gen: Generation) -> dict[str, int]:
    completion = len(gen.best.tokens)
    return {
        "prompt_tokens": gen.input_length,
        "completion_tokens": completion,
        "total_tokens": gen.input_length + completion,
    }


def chat_response(gen: Generation, model: str, created: int) -> bytes:
    body = {
        **_chat_base("chat.completion", model, created),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.best.text},
                "logprobs": None,
                "finish_reason": _CHAT_FINISH[gen.best.finish_reason],
            }
        ],
        "usage": _usage(gen),
    }
    return orjson.dumps(body)


def chat_stream_events(
    gen: Generation, model: str, created: int, include_usage: bool
) -> list[bytes]:
    events = []
    last = len(gen.best.tokens) - 1
    for i, token in enumerate(gen.best.tokens):
        chunk = {
            **_chat_base("chat.completion.chunk", model, created),
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "content": "" if token["special"] else token["text"],
                    },
                    "logprobs": None,
                    "finish_reason": _CHAT_FINISH[gen.best.finish_reason] if i == last else None,
                }
            ],
            "usage": None,
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    if include_usage:
        usage = {
            **_chat_base("chat.completion.chunk", model, created),
            "choices": [],
            "usage": _usage(gen),
        }
        events.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def chat_error_events(message: str) -> list[bytes]:
    """TGI >= 2.4.1: every error in a chat stream is 422 in an OpenAI-like object."""
    error = {"error": {"message": message, "http_status_code": 422}}
    return [b"data: " + orjson.dumps(error) + b"\n\n", b"data: [DONE]\n\n"]
