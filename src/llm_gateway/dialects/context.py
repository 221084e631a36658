"""What every dialect's routes need: the models, the switches, the generation service and the
chat pipeline. Built once by the composition root (app.py); the web layer never sees it."""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.config.schema import GatewayConfig, ModelConfig
from llm_gateway.config.settings import Settings
from llm_gateway.core.errors import model_not_allowed, model_not_found
from llm_gateway.core.generation import GenerationService
from llm_gateway.core.pipeline import Pipeline
from llm_gateway.http.auth import ALLOWED_MODELS
from llm_gateway.http.context import ALIAS

# Names TGI's own clients send for "the model behind this URL": TGI serves its one model
# whatever the name (huggingface_hub and LangChain's ChatHuggingFace send "dummy").
PLACEHOLDER_NAMES = frozenset({"", "tgi", "dummy"})
# Where the OpenAI-shaped and Anthropic routes live: the usual ``/v1`` and, per model, under
# ``/models/{name}`` (the path names the model, as TGI's per-model routes do).
V1_BASES = ("/v1", "/models/{name}/v1")


def answered_as(model: ModelConfig) -> str:
    """The ``model`` an answer names: the alias the client used, else the configured name."""
    return ALIAS.get() or model.name


def is_placeholder(name: str) -> bool:
    """Whether a requested model name means "the default model".

    >>> [is_placeholder(n) for n in ("tgi", "dummy", "", "https://h/models/x", "llama")]
    [True, True, True, True, False]
    """
    return name in PLACEHOLDER_NAMES or name.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class GatewayContext:
    config: GatewayConfig
    settings: Settings
    service: GenerationService
    pipeline: Pipeline  # the steps chat-shaped requests share (templates, stops, collecting)

    def check_input_size(self, text: str, *, param: str, status: int) -> None:
        """Prompts beyond ``GATEWAY_MAX_INPUT_CHARS`` are refused before any work."""
        self.pipeline.check_size(text, param=param, status=status)

    def model(self, name: str | None) -> ModelConfig:
        """The named model, or the default one for no name and TGI's placeholder names;
        a ``model_aliases`` glob maps other names to a configured model; unknown names are
        404 ``model_not_found``; a model the signed-in user's token does not
        allow (``models_claim``) is 403."""
        if name is None or is_placeholder(name):
            return self._allowed(self.config.default)
        model = self.config.get(name)
        if model is None:
            target = self.config.alias_target(name)
            if target is None:
                raise model_not_found(name)
            model = self.config.get(target)
            assert model is not None  # aliases name configured models (checked at start-up)
            ALIAS.set(name)
        return self._allowed(model)

    def visible_models(self) -> list[ModelConfig]:
        """The models the current caller may use (all but for a token with ``models_claim``)."""
        allowed = ALLOWED_MODELS.get()
        models = self.config.models
        return list(models) if allowed is None else [m for m in models if m.name in allowed]

    @staticmethod
    def _allowed(model: ModelConfig) -> ModelConfig:
        allowed = ALLOWED_MODELS.get()
        if allowed is not None and model.name not in allowed:
            raise model_not_allowed(model.name)
        return model
