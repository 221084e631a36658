"""Upstream protocols behind the core's :class:`~llm_gateway.core.ports.Backend` seam.

Each backend turns validated requests into request bytes and the upstream's bytes into the
core's typed events. :data:`BACKENDS` is the registry the composition root reads: a model's
``backend`` setting names one of its keys. Adding a backend is one module plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_gateway.backends.tgi.generate import TGIGenerate
from llm_gateway.backends.tgi.messages import TGIMessages
from llm_gateway.core.ports import Backend


def _openai(*, chat_only: bool = False, unsupported_params: str = "drop") -> Backend:
    """Loaded when a model uses it: most deployments front TGI only (cold starts count)."""
    from llm_gateway.backends.openai import OpenAIBackend

    return OpenAIBackend(chat_only=chat_only, unsupported_params=unsupported_params)


# A factory per backend; ``chat_only=True`` is passed for models that set it (openai only),
# and ``unsupported_params`` to openai.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "tgi": TGIGenerate,
    "tgi-messages": TGIMessages,
    "openai": _openai,
}
