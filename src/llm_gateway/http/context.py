"""What every route needs: the models, the switches and the generation service."""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.config.schema import GatewayConfig, ModelConfig
from llm_gateway.config.settings import Settings
from llm_gateway.core.errors import model_not_found, request_error
from llm_gateway.core.generation import GenerationService
from llm_gateway.templates import PromptTemplate

# Names TGI's own clients send for "the model behind this URL": TGI serves its one model
# whatever the name (huggingface_hub and LangChain's ChatHuggingFace send "dummy").
PLACEHOLDER_NAMES = frozenset({"", "tgi", "dummy"})


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
    templates: dict[str, PromptTemplate]  # by model name

    def check_input_size(self, text: str, *, param: str, status: int) -> None:
        """Prompts beyond ``GATEWAY_MAX_INPUT_CHARS`` are refused before any work."""
        limit = self.settings.max_input_chars
        if len(text) > limit:
            raise request_error(
                f"The prompt has {len(text)} characters; this gateway accepts at most {limit} "
                "characters",
                status=status,
                param=param,
            )

    def model(self, name: str | None) -> ModelConfig:
        """The named model, or the default one for no name and TGI's placeholder names;
        unknown names are 404 ``model_not_found``."""
        if name is None or is_placeholder(name):
            return self.config.default
        model = self.config.get(name)
        if model is None:
            raise model_not_found(name)
        return model
