"""TGI's generate API on SageMaker's ``/invocations``: ``{"inputs", "parameters", "stream"}``.

``stream`` goes at the top level, where TGI's ``/invocations`` reads it; ``return_full_text``
is always explicit (``/invocations`` defaults it to true) and ``details`` always requested,
because usage and metrics need TGI's counts.

>>> from llm_gateway.core.parameters import GenerateParameters
>>> TGIGenerate().generate_body("Hi", GenerateParameters(max_new_tokens=5), stream=True)
b'{"inputs":"Hi","parameters":{"max_new_tokens":5,"do_sample":false,"return_full_text":false,"details":true},"stream":true}'
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.backends.framing import dumps_request
from llm_gateway.backends.tgi.errors import container_error
from llm_gateway.backends.tgi.stream import TGIStreamDecoder
from llm_gateway.backends.tgi.tokens import details as read_details
from llm_gateway.core.errors import GatewayError, upstream_error
from llm_gateway.core.events import EventDecoder
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Capabilities, Generated


def parse_generate_response(raw: bytes, *, token_lists: bool = True) -> Generated:
    """TGI's compat answer is ``[{"generated_text", "details"?}]``; an object is accepted too.
    ``token_lists`` false: of the details, only the counts are read (:func:`read_details`)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise upstream_error("The model endpoint returned a body that is not JSON") from None
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict) or not isinstance(data.get("generated_text"), str):
        raise upstream_error("The model endpoint returned an unexpected body (no generated_text)")
    details = read_details(data.get("details"), token_lists=token_lists)
    return Generated(data["generated_text"], details)


class TGIGenerate:
    """The default backend: prompts rendered by the gateway's templates, TGI's generate API."""

    name = "tgi"
    # Prompts only; TGI's router echoes the prompt (``return_full_text``) itself.
    capabilities = Capabilities()

    def check(self, parameters: GenerateParameters, *, stream: bool) -> None:
        return None  # TGI takes every field its own validation admits

    def generate_body(self, inputs: str, parameters: GenerateParameters, *, stream: bool) -> bytes:
        payload: dict[str, Any] = {
            "inputs": inputs,
            "parameters": parameters.to_upstream(
                return_full_text=bool(parameters.return_full_text)
            ),
        }
        if stream:
            payload["stream"] = True
        return dumps_request(payload)

    def parse_generated(
        self, raw: bytes, parameters: GenerateParameters | None = None
    ) -> Generated:
        # Details are always asked of TGI for their counts; their token lists are read only
        # when the client asked for details (or the prompt's tokens).
        wanted = parameters is None or bool(parameters.details or parameters.decoder_input_details)
        return parse_generate_response(raw, token_lists=wanted)

    def generate_decoder(self, parameters: GenerateParameters | None = None) -> EventDecoder:
        return TGIStreamDecoder()

    def chat_body(self, data: dict[str, Any], defaults: GenerateParameters | None) -> bytes:
        raise NotImplementedError("TGI's generate API takes prompts, not chat requests")

    def chat_decoder(self) -> EventDecoder:
        raise NotImplementedError("TGI's generate API takes prompts, not chat requests")

    def container_error(self, status: int | None, body: str) -> GatewayError | None:
        return container_error(status, body)
