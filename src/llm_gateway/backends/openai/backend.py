"""The ``openai`` backend: containers whose ``/invocations`` takes OpenAI bodies (vLLM DLCs,
SGLang DLC, LMI v17+).

- Chat requests of the OpenAI dialect are relayed (``capabilities.chat``): tools, ``n``,
  ``response_format`` and logprobs go to the container, whose chat template applies.
- Prompts (the TGI dialect's ``/generate``, ``/generate_stream`` and ``POST /``, and
  ``/v1/completions``) become completion requests, or with ``chat_only`` (SGLang serves chat
  only) a chat request whose one user message is the prompt; the answers are rebuilt as TGI
  token events and ``details`` (:mod:`.decode`).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.backends.framing import ChatChunkDecoder
from llm_gateway.backends.openai import request
from llm_gateway.backends.openai.decode import TokenDecoder, parse_answer
from llm_gateway.backends.openai.errors import container_error, error_event
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.events import EventDecoder
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Capabilities, Generated


class OpenAIBackend:
    """An OpenAI server behind SageMaker's ``/invocations``."""

    name = "openai"
    # The container applies OpenAI's chat fields itself, but echoes no prompt on streams.
    capabilities = Capabilities(
        chat=True, tools=True, logprobs=True, choices=True, prompt_echo=False
    )

    def __init__(self, *, chat_only: bool = False, unsupported_params: str = "drop") -> None:
        self.chat_only = chat_only
        self.unsupported_params = unsupported_params  # drop | refuse (sampling hints)

    def check(self, parameters: GenerateParameters, *, stream: bool) -> tuple[str, ...]:
        return request.check(
            parameters,
            stream=stream,
            chat_only=self.chat_only,
            unsupported_params=self.unsupported_params,
        )

    def generate_body(self, inputs: str, parameters: GenerateParameters, *, stream: bool) -> bytes:
        if self.chat_only:
            return request.chat_body(inputs, parameters, stream=stream)
        return request.completion_body(inputs, parameters, stream=stream)

    def parse_generated(
        self, raw: bytes, parameters: GenerateParameters | None = None
    ) -> Generated:
        return parse_answer(raw, chat=self.chat_only, parameters=parameters)

    def generate_decoder(self, parameters: GenerateParameters | None = None) -> EventDecoder:
        return TokenDecoder(chat=self.chat_only, parameters=parameters)

    def chat_body(self, data: dict[str, Any], defaults: GenerateParameters | None) -> bytes:
        return request.relay_body(data, defaults)

    def chat_decoder(self) -> EventDecoder:
        return ChatChunkDecoder(error_event)

    def container_error(self, status: int | None, body: str) -> GatewayError | None:
        return container_error(status, body)
