"""TGI's Messages API (``backend: tgi-messages``, formerly ``chat_api: true``).

The client's chat body goes upstream as it is (TGI ≥ 2.4 recognises a ``messages`` payload on
SageMaker's ``/invocations``), with four changes: ``model`` becomes ``"tgi"`` (anything else is
read as a LoRA adapter id), the call is always a stream with ``include_usage`` (usage and
metrics need TGI's counts), ``top_p: 1`` is dropped (TGI rejects it) and the model's
configured defaults fill what the client left out. Prompts for the TGI dialect still go to the
generate API, which every Messages-capable TGI also serves.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.backends.framing import ChatChunkDecoder, dumps_request
from llm_gateway.backends.tgi.errors import error_event
from llm_gateway.backends.tgi.generate import TGIGenerate
from llm_gateway.core.events import EventDecoder
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Capabilities

# Model defaults (TGI names) -> the chat field they fill when the client left it out.
_DEFAULTS = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
}


def fill_defaults(body: dict[str, Any], defaults: GenerateParameters | None) -> None:
    """Fill the chat fields the client left out from a model's configured (TGI) defaults."""
    if defaults is None:
        return
    for tgi_name, chat_name in _DEFAULTS.items():
        value = getattr(defaults, tgi_name)
        if (
            value not in (None, [])
            and body.get(chat_name) is None
            and not (chat_name == "max_tokens" and body.get("max_completion_tokens") is not None)
        ):
            body[chat_name] = value


class TGIMessages(TGIGenerate):
    name = "tgi-messages"
    # Chat requests as they are; tools, logprobs and n > 1 are not relayed to TGI.
    capabilities = Capabilities(chat=True)

    def chat_body(self, data: dict[str, Any], defaults: GenerateParameters | None) -> bytes:
        body = dict(data)
        body["model"] = "tgi"
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        if body.get("top_p") == 1:
            del body["top_p"]
        body.pop("n", None)  # only n = 1 gets here
        fill_defaults(body, defaults)
        return dumps_request(body)

    def chat_decoder(self) -> EventDecoder:
        return ChatChunkDecoder(error_event)
