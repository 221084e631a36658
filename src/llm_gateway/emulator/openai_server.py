"""The vLLM and SGLang OpenAI servers behind SageMaker's ``/invocations``.

vLLM (AWS and Hugging Face vLLM DLCs): chat completions or completions, chosen by which request
type the body validates as, in that order; anything else is 400 ``Cannot find suitable handler
for request``. Streams are SSE ending ``data: [DONE]``; errors are vLLM's ``ErrorResponse``,
nested since 0.10.1 (``error_shape: flat`` for older). SGLang: chat only, pydantic errors as a
flat 400, ``matched_stop`` instead of ``stop_reason``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import orjson
from pydantic import ValidationError

from llm_gateway.emulator.framing import (
    ContainerAnswer,
    Shape,
    error_body,
    error_type,
    sse,
    stream_error,
)
from llm_gateway.emulator.openai_body import Answer, Flavour, response
from llm_gateway.emulator.openai_request import (
    ChatBody,
    CompletionBody,
    NamedToolChoice,
    OpenAIError,
    Prepared,
    prepare,
)
from llm_gateway.emulator.openai_stream import stream_chunks
from llm_gateway.emulator.sampler import (
    Choice,
    ToolCall,
    dumps_py,
    example_value,
    generate,
    tool_call_id,
)
from llm_gateway.emulator.spec import EndpointSpec

NO_HANDLER = (
    "Cannot find suitable handler for request. "
    "Expected one of: ['ChatCompletionRequest', 'CompletionRequest']"
)
DEFAULT_STREAM_ERROR = "simulated engine failure during generation"


def _choice(prep: Prepared, spec: EndpointSpec, index: int, flavour: Flavour) -> Choice:
    prompt = prep.prompts[index // prep.body.n]
    body = prep.body
    if prep.tool is None or not isinstance(body, ChatBody):
        return generate(prompt, prep.sampling, spec=spec, index=index, fixed_text=prep.fixed_text)
    tool = next(t for t in body.tools or [] if t.function.name == prep.tool)
    arguments = dumps_py(example_value(tool.function.parameters or {}))
    sampling = replace(prep.sampling, stops=[], stop_token_ids=[])
    choice = generate(prompt, sampling, spec=spec, index=index, fixed_text=arguments)
    prefix = "call_" if flavour == "sglang" else "chatcmpl-tool-"
    choice.tool_call = ToolCall(tool_call_id(prefix), prep.tool, choice.text)
    if choice.finish_reason == "stop":
        choice.finish_reason = "tool_calls"
    return choice


def run(prep: Prepared, spec: EndpointSpec, flavour: Flavour, model: str) -> Answer:
    """Generate every choice (``n`` per prompt) of a prepared request."""
    body = prep.body
    count = len(prep.prompts) * body.n
    choices = [_choice(prep, spec, i, flavour) for i in range(count)]
    if isinstance(body, ChatBody):
        named = isinstance(body.tool_choice, NamedToolChoice) or body.tool_choice == "required"
        return Answer(
            flavour,
            model,
            prep.prompt_tokens[0],
            choices,
            chat=True,
            logprobs=bool(body.logprobs),
            top_logprobs=body.top_logprobs or 0,
            tool_content="" if named else None,
        )
    echo = [prep.prompts[i // body.n] for i in range(count)] if body.echo else []
    return Answer(
        flavour,
        model,
        sum(prep.prompt_tokens),
        choices,
        chat=False,
        logprobs=body.logprobs is not None,
        echo=echo,
    )


def stream_error_event(shape: Shape) -> Callable[[str | None, int], bytes]:
    def event(message: str | None, status: int) -> bytes:
        return stream_error(message or DEFAULT_STREAM_ERROR, error_type(status), status, shape) + (
            b"data: [DONE]\n\n"
        )

    return event


def _error(err: OpenAIError, shape: Shape) -> ContainerAnswer:
    return ContainerAnswer(err.code, [error_body(err.message, err.type, err.code, shape)])


def _serve(
    spec: EndpointSpec, body: ChatBody | CompletionBody, flavour: Flavour, shape: Shape
) -> ContainerAnswer:
    sglang = flavour == "sglang"
    served = spec.served_model_name or spec.model_id
    try:
        prep = prepare(
            body,
            context=spec.limits.max_total_tokens,
            served=None if sglang else served,
            sglang=sglang,
        )
    except OpenAIError as err:
        return _error(err, shape)
    answer = run(prep, spec, flavour, served)
    if not body.stream:
        return ContainerAnswer(200, [orjson.dumps(response(answer))])
    chunks = stream_chunks(
        answer, include_usage=prep.include_usage, continuous=prep.continuous_usage
    )
    return ContainerAnswer(
        200,
        sse(chunks, keep_alive=spec.sse_keep_alive),
        "text/event-stream",
        streamed=True,
        error_event=stream_error_event(shape),
    )


def vllm(spec: EndpointSpec, raw: bytes) -> ContainerAnswer:
    """vLLM's ``/invocations`` (``vllm/entrypoints/sagemaker/api_router.py``)."""
    shape = spec.error_shape
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(OpenAIError(f"JSON decode error: {exc}", type="Bad Request"), shape)
    for kind in (ChatBody, CompletionBody):
        try:
            request: ChatBody | CompletionBody = kind.model_validate(data)
        except ValidationError:
            continue
        return _serve(spec, request, "vllm", shape)
    return _error(OpenAIError(NO_HANDLER), shape)


def _fastapi_message(exc: ValidationError) -> str:
    """SGLang's handler: ``f"{exc} {exc.errors()}"`` of FastAPI's ``RequestValidationError``."""
    errors = []
    for error in exc.errors(include_url=False):
        error = {**error, "loc": ("body", *error["loc"])}
        error.pop("ctx", None)
        errors.append(error)
    plural = "s" if len(errors) != 1 else ""
    text = f"{len(errors)} validation error{plural}:\n" + "".join(f"  {e}\n" for e in errors)
    return f"{text} {errors}"


def sglang(spec: EndpointSpec, raw: bytes) -> ContainerAnswer:
    """SGLang's ``/invocations``: a ``ChatCompletionRequest`` or a 400."""
    try:
        request = ChatBody.model_validate_json(raw)
    except ValidationError as exc:
        err = OpenAIError(_fastapi_message(exc), type="Bad Request")
        return _error(err, "flat")
    return _serve(spec, request, "sglang", "flat")
