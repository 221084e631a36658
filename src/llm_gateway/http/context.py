"""What every route needs: the models, the switches and the generation service."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from llm_gateway.config.schema import GatewayConfig, ModelConfig
from llm_gateway.config.settings import Settings
from llm_gateway.core.errors import model_not_found, request_error
from llm_gateway.core.generation import GenerationService
from llm_gateway.http.timing import Timing
from llm_gateway.observability.record import RequestRecord
from llm_gateway.templates import PromptTemplate


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
        """The named model, or the default one; unknown names are 404 ``model_not_found``."""
        if name is None:
            return self.config.default
        model = self.config.get(name)
        if model is None:
            raise model_not_found(name)
        return model


def request_timing(request: Request) -> Timing:
    """The request's :class:`Timing`, set by the gateway middleware (or a fresh one)."""
    timing = request.scope.get("state", {}).get("timing")
    if timing is None:
        timing = Timing()
        request.scope.setdefault("state", {})["timing"] = timing
    return timing


def request_deadline(request: Request) -> float | None:
    """The request's ``time.monotonic()`` deadline (see :mod:`llm_gateway.http.deadline`)."""
    return request.scope.get("state", {}).get("deadline")


def request_record(request: Request) -> RequestRecord:
    """The request's :class:`RequestRecord`, set by the middleware (or a detached one)."""
    record = request.scope.get("state", {}).get("record")
    if record is None:
        record = RequestRecord(
            request_id="", method=request.method, path=request.url.path, started=0.0
        )
        request.scope.setdefault("state", {})["record"] = record
    return record
