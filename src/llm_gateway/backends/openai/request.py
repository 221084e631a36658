"""TGI's validated ``GenerateParameters`` as an OpenAI request body (reference §6.3, §6.4).

Completions (``prompt``, the gateway's prompt as it is) where the container serves them, else
chat (``chat_only``: SGLang) with the prompt as one user message, which the container's chat
template then wraps. TGI's semantics are kept where the container can be told them:

- greedy unless asked to sample: ``do_sample`` false and no sampling field → ``temperature: 0``;
- ``max_new_tokens`` unset is the rest of the context (``max_tokens: null``; vLLM's default for
  completions is 16);
- stop sequences stay in the text as TGI leaves them (``include_stop_str_in_output``, SGLang's
  ``no_stop_trim``); the dialects cut them as they do for TGI;
- per-token log-probs are asked only for ``details`` or ``top_n_tokens``; token counts come from
  ``usage`` (``stream_options.include_usage`` on streams).

Fields the container cannot honour are refused by :func:`check` before any call; the sampling
hints it lacks (``typical_p``, ``watermark``) are dropped, or refused under the model's
``unsupported_params: refuse``.

>>> from llm_gateway.core.parameters import GenerateParameters
>>> completion_body("Hi", GenerateParameters(max_new_tokens=5, stop=["."]), stream=True)
b'{"model":"","prompt":"Hi","max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"include_stop_str_in_output":true,"temperature":0,"stop":["."]}'
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.backends.framing import dumps_request
from llm_gateway.core.errors import validation_error
from llm_gateway.core.parameters import GenerateParameters

BACKEND = "openai"


def _refuse(field: str, why: str) -> None:
    raise validation_error(
        f"`{field}` is not supported by this model's backend ({BACKEND}): {why}", param=field
    )


# Sampling hints an OpenAI server lacks: ignoring one changes how tokens are drawn, not what
# the answer's shape is, so they may be dropped (``unsupported_params: drop``).
_HINTS = {
    "typical_p": "OpenAI servers have no typical sampling",
    "watermark": "OpenAI servers do not watermark",
}


def unsupported_hints(p: GenerateParameters) -> tuple[str, ...]:
    """The sampling hints set in ``p`` (``watermark: false`` is not one)."""
    return tuple(name for name in _HINTS if getattr(p, name) not in (None, False))


def check(
    parameters: GenerateParameters,
    *,
    stream: bool,
    chat_only: bool,
    unsupported_params: str = "drop",
) -> tuple[str, ...]:
    """Refuse, naming the field and the backend, what an OpenAI server cannot honour; the
    sampling hints it lacks are refused too under ``unsupported_params: refuse``, else
    returned as dropped (the request body never carries them)."""
    p = parameters
    hints = unsupported_hints(p)
    if unsupported_params == "refuse":
        for name in hints:
            _refuse(name, _HINTS[name])
    if p.best_of not in (None, 1):
        _refuse("best_of", "OpenAI servers return no best-of sequences")
    if p.decoder_input_details:
        _refuse("decoder_input_details", "the prompt's tokens are not reported")
    if p.return_full_text and (stream or chat_only):
        _refuse(
            "return_full_text",
            "the prompt is echoed only by completions, and not on streams",
        )
    if chat_only and p.truncate is not None:
        _refuse("truncate", "the container serves chat only, which cannot truncate")
    if chat_only and p.adapter_id is not None:
        _refuse("adapter_id", "the container serves chat only")
    return hints


def sampling(p: GenerateParameters) -> bool:
    """TGI samples when asked to or when any sampling field is set (``validation.rs``)."""
    return p.sampling


def _grammar(p: GenerateParameters, *, chat_only: bool) -> dict[str, Any]:
    grammar = p.grammar
    if grammar is None:
        return {}
    value = grammar.value
    if grammar.type == "regex":
        return {"regex": value} if chat_only else {"structured_outputs": {"regex": value}}
    if grammar.type == "json_object":
        return {"response_format": {"type": "json_object"}}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = {}
    if grammar.type == "json_schema" and isinstance(value, dict):
        schema = value.get("schema")
        name = value.get("name") or "schema"
    else:
        schema, name = value, "schema"
    return {
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    }


def _common(p: GenerateParameters, body: dict[str, Any]) -> None:
    if not sampling(p):
        body["temperature"] = 0
    else:
        for name in ("temperature", "top_p", "top_k"):
            value = getattr(p, name)
            if value is not None:
                body[name] = value
    for name in ("repetition_penalty", "frequency_penalty", "seed"):
        value = getattr(p, name)
        if value is not None:
            body[name] = value
    if p.stop:
        body["stop"] = list(p.stop)


def wants_logprobs(p: GenerateParameters) -> bool:
    return bool(p.details) or bool(p.top_n_tokens)


def completion_body(inputs: str, p: GenerateParameters, *, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": p.adapter_id or "",
        "prompt": inputs,
        "max_tokens": p.max_new_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    body["include_stop_str_in_output"] = True
    _common(p, body)
    if wants_logprobs(p):
        body["logprobs"] = max(p.top_n_tokens or 0, 1)
        body["return_token_ids"] = True
    if p.return_full_text:
        body["echo"] = True
    if p.truncate is not None:
        body["truncate_prompt_tokens"] = p.truncate
    body.update(_grammar(p, chat_only=False))
    return dumps_request(body)


def chat_body(inputs: str, p: GenerateParameters, *, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": "",
        "messages": [{"role": "user", "content": inputs}],
        "stream": stream,
    }
    if p.max_new_tokens is not None:
        body["max_completion_tokens"] = p.max_new_tokens
    if stream:
        body["stream_options"] = {"include_usage": True}
    body["no_stop_trim"] = True
    body["include_stop_str_in_output"] = True
    _common(p, body)
    if wants_logprobs(p):
        body["logprobs"] = True
        if p.top_n_tokens:
            body["top_logprobs"] = p.top_n_tokens
    body.update(_grammar(p, chat_only=True))
    return dumps_request(body)


# Model defaults (TGI names) -> the chat field they fill when the client left it out.
_CHAT_DEFAULTS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
}


def relay_body(data: dict[str, Any], defaults: GenerateParameters | None) -> bytes:
    """A client's chat request, relayed: always a stream with usage (the answer's counts are
    the container's), ``model`` left to the container, the model's defaults filling what the
    client left out. Everything else (tools, ``n``, ``response_format``, logprobs) goes as is."""
    body = dict(data)
    body["model"] = ""
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if defaults is not None:
        if (
            defaults.max_new_tokens is not None
            and body.get("max_tokens") is None
            and body.get("max_completion_tokens") is None
        ):
            body["max_completion_tokens"] = defaults.max_new_tokens
        for tgi_name, chat_name in _CHAT_DEFAULTS.items():
            value = getattr(defaults, tgi_name)
            if value not in (None, []) and body.get(chat_name) is None:
                body[chat_name] = value
    return dumps_request(body)
