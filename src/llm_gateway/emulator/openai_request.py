"""OpenAI request bodies as vLLM (and SGLang, and LMI's vLLM) read them.

The body models are lax pydantic models like vLLM's (extra fields ignored), because vLLM's
SageMaker ``/invocations`` dispatches *by validation*: the first of ``ChatCompletionRequest``,
``CompletionRequest`` that validates wins, and a body neither accepts gets
``Cannot find suitable handler for request``. Checks vLLM makes after that (context length,
sampling ranges, the model name) raise :class:`OpenAIError` with vLLM's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_gateway.emulator.chat import chat_prompt
from llm_gateway.emulator.model import tokenize
from llm_gateway.emulator.sampler import Sampling, dumps_py, example_value


class OpenAIError(Exception):
    """An error a container answers before generating: vLLM's ``ErrorResponse`` fields."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 400,
        type: str = "BadRequestError",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.type, self.param = message, code, type, param


class _Lax(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Lax):
    include_usage: bool | None = None
    continuous_usage_stats: bool | None = None


class JsonSchema(_Lax):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class ResponseFormat(_Lax):
    type: Literal["text", "json_object", "json_schema", "structural_tag"]
    json_schema: JsonSchema | None = None


class Message(_Lax):
    role: str
    content: str | list[dict[str, Any]] | None = None


class Function(_Lax):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Lax):
    type: Literal["function"] = "function"
    function: Function


class NamedFunction(_Lax):
    name: str


class NamedToolChoice(_Lax):
    type: Literal["function"] = "function"
    function: NamedFunction


class _Common(_Lax):
    model: str | None = None
    max_tokens: int | None = None
    n: int = 1
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> _Common:
        if self.stream_options is not None and not self.stream:
            raise ValueError("Stream options can only be defined when `stream=True`.")
        return self


class ChatBody(_Common):
    messages: list[Message]
    max_completion_tokens: int | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = 0
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None

    @model_validator(mode="after")
    def _check_logprobs(self) -> ChatBody:
        if self.top_logprobs is not None and self.top_logprobs < 0:
            raise ValueError("`top_logprobs` must be a positive value.")
        if self.top_logprobs and not self.logprobs:
            raise ValueError("when using `top_logprobs`, `logprobs` must be set to true.")
        return self


class CompletionBody(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = None
    echo: bool | None = False


@dataclass
class Prepared:
    """A request ready to generate: prompts (one per choice group), their token counts, and the
    answer's knobs."""

    body: ChatBody | CompletionBody
    prompts: list[str]
    prompt_tokens: list[int]
    sampling: Sampling
    tool: str | None  # the function to call, when the answer is a tool call
    fixed_text: str | None  # structured output

    @property
    def chat(self) -> bool:
        return isinstance(self.body, ChatBody)

    @property
    def include_usage(self) -> bool:
        options = self.body.stream_options
        return bool(options and options.include_usage)

    @property
    def continuous_usage(self) -> bool:
        options = self.body.stream_options
        return bool(options and options.include_usage and options.continuous_usage_stats)


def chat_prompt_text(body: ChatBody) -> str:
    """The simulated chat template: ChatML, with the tool definitions in a system turn."""
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    if body.tools:
        tools = [t.model_dump(exclude_none=True) for t in body.tools]
        messages.insert(0, {"role": "system", "content": f"<tools>{tools}</tools>"})
    return chat_prompt(messages)


def _prompts(body: ChatBody | CompletionBody) -> tuple[list[str], list[int]]:
    if isinstance(body, ChatBody):
        text = chat_prompt_text(body)
        return [text], [len(tokenize(text))]
    prompt = body.prompt
    if isinstance(prompt, str):
        return [prompt], [len(tokenize(prompt))]
    if prompt and all(isinstance(p, int) for p in prompt):
        return [str(prompt)], [len(prompt)]
    texts: list[str] = []
    counts: list[int] = []
    for item in prompt:
        if isinstance(item, str):
            texts.append(item)
            counts.append(len(tokenize(item)))
        elif isinstance(item, list):
            texts.append(str(item))
            counts.append(len(item))
    return texts, counts


def _tool(body: ChatBody) -> str | None:
    """The function the simulated model calls, or None for a text answer.

    A named ``tool_choice`` calls that function and ``required`` the first tool, always (vLLM
    forces them by guided decoding). Under ``auto`` the first tool is called unless the
    conversation's last message is a tool result: then the model answers in text, so an agent
    loop (call, result, answer) ends after one round trip instead of at its turn limit.
    """
    if not body.tools or body.tool_choice == "none":
        return None
    if isinstance(body.tool_choice, NamedToolChoice):
        name = body.tool_choice.function.name
        if name not in {t.function.name for t in body.tools}:
            raise OpenAIError(f"Tool '{name}' has not been passed in `tools`.")
        return name
    if body.tool_choice != "required" and body.messages and body.messages[-1].role == "tool":
        return None
    return body.tools[0].function.name


def prepare(
    body: ChatBody | CompletionBody, *, context: int, served: str | None, sglang: bool = False
) -> Prepared:
    """vLLM's checks after dispatch, in its order; raises :class:`OpenAIError`. ``served``:
    the only model name accepted besides "" (None: any, as SGLang)."""
    if body.model and served is not None and body.model != served:
        raise OpenAIError(
            f"The model `{body.model}` does not exist.", code=404, type="NotFoundError"
        )
    prompts, counts = _prompts(body)
    max_tokens = body.max_tokens
    if isinstance(body, ChatBody) and body.max_completion_tokens is not None:
        max_tokens = body.max_completion_tokens
    if isinstance(body, CompletionBody) and max_tokens is None:
        max_tokens = 16
    for n_input in counts:
        _check_context(n_input, max_tokens, context, sglang)
    if body.n < 1:
        raise OpenAIError(f"n must be at least 1, got {body.n}.")
    if body.temperature is not None and body.temperature < 0:
        raise OpenAIError(f"temperature must be non-negative, got {body.temperature}.")
    if body.top_p is not None and not 0 < body.top_p <= 1:
        raise OpenAIError(f"top_p must be in (0, 1], got {body.top_p}.")
    if max_tokens is not None and max_tokens < 1:
        raise OpenAIError(f"max_tokens must be at least 1, got {max_tokens}.")
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if isinstance(body, ChatBody):
        top_n = (body.top_logprobs or 0) if body.logprobs else 0
    else:
        top_n = body.logprobs if body.logprobs is not None else 0
    tool = _tool(body) if isinstance(body, ChatBody) else None
    remaining = context - max(counts, default=0)
    sampling = Sampling(
        max_tokens=max_tokens if max_tokens is not None else remaining,
        temperature=body.temperature,
        seed=body.seed,
        stops=stops,
        stop_token_ids=list(body.stop_token_ids or []),
        top_n=top_n,
        # vLLM's (and LMI's) switch; SGLang's own is no_stop_trim (both are extra fields here)
        keep_stop=(body.model_extra or {}).get(
            "no_stop_trim" if sglang else "include_stop_str_in_output"
        )
        is True,
    )
    return Prepared(body, prompts, counts, sampling, tool, _structured(body))


def _check_context(n_input: int, max_tokens: int | None, context: int, sglang: bool) -> None:
    if sglang:  # TokenizerManager._validate_one_request
        if n_input >= context:
            raise OpenAIError(
                f"The input ({n_input} tokens) is longer than the model's context length "
                f"({context} tokens)."
            )
        if max_tokens is not None and max_tokens + n_input >= context:
            raise OpenAIError(
                "Requested token count exceeds the model's maximum context length of "
                f"{context} tokens. You requested a total of {max_tokens + n_input} tokens: "
                f"{n_input} tokens from the input messages and {max_tokens} tokens for the "
                "completion. Please reduce the number of tokens in the input messages or the "
                "completion to fit within the limit."
            )
        return
    if n_input >= context:  # vLLM OpenAIServing._validate_input
        raise OpenAIError(
            f"This model's maximum context length is {context} tokens. However, your request "
            f"has {n_input} input tokens. Please reduce the length of the input messages."
        )
    if max_tokens is not None and max_tokens > context - n_input:
        raise OpenAIError(
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {context} tokens and your request has {n_input} input "
            f"tokens ({max_tokens} > {context} - {n_input})."
        )


def _structured(body: ChatBody | CompletionBody) -> str | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_schema" and fmt.json_schema is not None:
        return dumps_py(example_value(fmt.json_schema.schema_ or {}))
    return dumps_py({"answer": "simulated"})
