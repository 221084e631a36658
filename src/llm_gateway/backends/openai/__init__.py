"""OpenAI servers as the upstream (``backend: openai``): vLLM's and SGLang's OpenAI servers and
LMI v17+ behind SageMaker's ``/invocations``. :mod:`.request` maps TGI's parameters onto
completion or chat bodies (and refuses what cannot be honoured), :mod:`.decode` rebuilds TGI
token events and details from the answers, :mod:`.errors` reads the containers' error bodies.
See ``docs/backends.md``."""

from llm_gateway.backends.openai.backend import OpenAIBackend

__all__ = ["OpenAIBackend"]
