"""The models file, as pydantic models.

>>> cfg = GatewayConfig.model_validate({"models": [{"name": "m", "endpoint": "m-tgi"}]})
>>> cfg.default.name, cfg.default.limits.max_total_tokens
('m', 2048)
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llm_gateway.config.budgets import BudgetsConfig
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.parameters import GenerateParameters, Limits
from llm_gateway.core.validation import validate
from llm_gateway.identity.algorithms import ASYMMETRIC, DEFAULT_ALGORITHMS
from llm_gateway.identity.urls import is_allowed_url
from llm_gateway.templates.families import FAMILIES

# Names fixed by the product contract (SPEC §6); "none" sends prompts as they are.
TEMPLATE_FAMILIES = ("none", *FAMILIES)

# SageMaker's EndpointName / InferenceComponentName patterns (service-2.json).
EndpointName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length=63)
]
ComponentName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length=63)
]
# A public model id: used in URLs (/models/{name}/…) and as OpenAI's "model".
ModelName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=128)
]


class ChatTemplate(BaseModel):
    """A Hugging Face ``chat_template`` (Jinja) with the tokens it refers to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_template: str = Field(min_length=1)
    bos_token: str = ""
    eos_token: str = ""
    stop: list[str] = Field(default_factory=list)
    # Whether the model's tokenizer adds BOS itself on TGI's raw-prompt path.
    add_bos_token: bool = True

    @field_validator("chat_template")
    @classmethod
    def _compiles(cls, value: str) -> str:
        from llm_gateway.templates.jinja import compile_template  # only for Jinja templates

        try:
            compile_template(value)
        except Exception as exc:
            raise ValueError(f"chat_template does not compile: {exc}") from None
        return value


class WakeConfig(BaseModel):
    """How to treat a model whose inference component is at zero copies (SPEC §5.5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How long a request may wait for the model to scale up (bounded by its deadline).
    wait_seconds: float = Field(600.0, ge=0)
    # How often the call is retried while the model wakes.
    retry_seconds: float = Field(20.0, gt=0)
    # A configured model that answers at once while this one wakes.
    fallback: str | None = None


class ModelConfig(BaseModel):
    """One model the gateway serves, backed by one SageMaker endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ModelName
    endpoint: EndpointName
    inference_component: ComponentName | None = None
    model_id: str | None = None  # the Hugging Face id, reported by /info
    # The TGI version the endpoint runs (e.g. "3.3.6", "0.8.2"), reported by /info as
    # `version`; unset: /info says null rather than guess.
    tgi_version: (
        Annotated[str, StringConstraints(pattern=r"^\d+\.\d+(\.\d+)?([-+.].*)?$")] | None
    ) = None
    template: str | ChatTemplate = "none"
    limits: Limits = Field(default_factory=Limits)
    defaults: GenerateParameters | None = None
    # The upstream protocol (llm_gateway.backends): TGI's generate API (the default) or TGI's
    # Messages API (TGI >= 2.4 on /invocations; the older `chat_api: true` means the same).
    # A key of llm_gateway.backends.BACKENDS (checked when the app is composed, so adding a
    # backend needs no change here): tgi | tgi-messages | openai.
    backend: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")] = "tgi"
    # backend openai: the container serves chat completions only (SGLang's /invocations).
    chat_only: bool = False
    # backend openai: TGI sampling hints an OpenAI server lacks (typical_p, watermark) are
    # dropped (reported in x-llm-gateway-dropped-params) or refused with 422 (SPEC 5.1).
    unsupported_params: Literal["drop", "refuse"] = "drop"
    tokenizer: str | None = None  # optional tokenizer.json for exact prompt-token counts
    wake: WakeConfig = Field(default_factory=WakeConfig)
    # Models tried, in order, before the first byte when this one is not ready, throttled,
    # unavailable or warming.
    fallbacks: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _chat_api_is_a_backend(cls, data: Any) -> Any:
        """``chat_api: true`` (older files) is ``backend: tgi-messages``."""
        if isinstance(data, dict) and "chat_api" in data:
            data = dict(data)
            chat_api = data.pop("chat_api")
            if chat_api is True and data.get("backend", "tgi-messages") != "tgi-messages":
                raise ValueError("chat_api: true contradicts backend; use backend alone")
            if chat_api is True:
                data["backend"] = "tgi-messages"
            elif chat_api is not False:
                raise ValueError("chat_api must be true or false")
        return data

    @model_validator(mode="after")
    def _chat_only_is_openai(self) -> ModelConfig:
        if self.chat_only and self.backend != "openai":
            raise ValueError("chat_only: true applies to backend: openai only")
        return self

    @field_validator("template", mode="before")
    @classmethod
    def _chat_template_errors(cls, value: Any) -> Any:
        """A mapping is a chat template: its own error (e.g. Jinja's), not the union's."""
        if isinstance(value, dict):
            try:
                return ChatTemplate.model_validate(value)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(part) for part in first["loc"])
                message = str(first["msg"]).removeprefix("Value error, ")
                raise ValueError(f"{where}: {message}" if where else message) from None
        return value

    @field_validator("template")
    @classmethod
    def _known_family(cls, value: str | ChatTemplate) -> str | ChatTemplate:
        if isinstance(value, str) and value not in TEMPLATE_FAMILIES:
            raise ValueError(
                f"unknown template family '{value}'; use one of {', '.join(TEMPLATE_FAMILIES)} "
                "or {chat_template: ...}"
            )
        return value

    @field_validator("defaults")
    @classmethod
    def _defaults_pass_validation(
        cls, value: GenerateParameters | None, info: ValidationInfo
    ) -> GenerateParameters | None:
        """Defaults apply to streamed and buffered requests alike (the OpenAI dialect always
        streams upstream): a default that TGI refuses in either mode would fail requests that
        never mentioned it, so it fails start-up instead."""
        limits = info.data.get("limits")
        if value is None or not isinstance(limits, Limits):
            return value
        for stream in (False, True):
            try:
                validate(value, "x", limits, stream=stream)
            except GatewayError as exc:
                field = exc.param or "?"
                shown = getattr(value, field, None)
                mode = "streamed" if stream else "buffered"
                raise ValueError(
                    f"{field}: {shown!r} would refuse every {mode} request "
                    f"({exc.message}); remove it from defaults or change it"
                ) from None
        return value


class JwtConfig(BaseModel):
    """Signed-in end users: the OpenID Connect issuer whose JWTs the gateway accepts (SPEC §5.3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=1)  # `iss` must equal it exactly (trailing slash included)
    audience: list[str] = Field(default_factory=list)  # accepted `aud` (or Cognito `client_id`)
    jwks_uri: str | None = None  # default: from {issuer}/.well-known/openid-configuration
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS), min_length=1)
    leeway_seconds: float = Field(60, ge=0, le=300)
    user_claim: str = Field("sub", min_length=1)
    tenant_claim: str | None = None  # a list claim (e.g. cognito:groups) gives its first value
    models_claim: str | None = None
    client_id: str | None = None  # the chat page's public client; its ID tokens are accepted

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not is_allowed_url(value):
            raise ValueError(
                f"'{value}' must be an https:// URL (http:// only on 127.0.0.1 or localhost)"
            )
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in ASYMMETRIC]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} not accepted: asymmetric algorithms only "
                f"({', '.join(sorted(ASYMMETRIC))}); none and HS* are always refused"
            )
        return value

    @model_validator(mode="after")
    def _some_audience(self) -> JwtConfig:
        if not self.audience and not self.client_id:
            raise ValueError("auth.jwt needs an audience (or a client_id)")
        return self

    @property
    def audiences(self) -> list[str]:
        """What ``aud`` may name: the audience list and the chat page's client id."""
        extra = [self.client_id] if self.client_id and self.client_id not in self.audience else []
        return [*self.audience, *extra]


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jwt: JwtConfig | None = None


class GatewayConfig(BaseModel):
    """The whole models file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_model: str | None = None
    models: list[ModelConfig] = Field(min_length=1)
    budgets: BudgetsConfig | None = None  # per-key token budgets (SPEC §5.4)
    auth: AuthConfig | None = None  # signed-in end users (SPEC §5.3)
    # Client-side model names (globs, first match wins) -> a configured model, every dialect:
    # clients with hard-coded names (claude-sonnet-*, gpt-4o*) reach a hosted model (SPEC §4).
    model_aliases: dict[str, str] = Field(default_factory=dict)

    _by_name: dict[str, ModelConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> GatewayConfig:
        seen: set[str] = set()
        for model in self.models:
            if model.name in seen:
                raise ValueError(f"model name '{model.name}' is used twice")
            seen.add(model.name)
        self._by_name = {model.name: model for model in self.models}
        if self.default_model is not None and self.default_model not in seen:
            raise ValueError(f"default_model '{self.default_model}' is not one of the models")
        for model in self.models:
            for other in (model.wake.fallback, *model.fallbacks):
                if other is not None and (other not in seen or other == model.name):
                    raise ValueError(
                        f"model '{model.name}': fallback '{other}' is not another configured model"
                    )
        for pattern, target in self.model_aliases.items():
            if target not in seen:
                raise ValueError(
                    f"model_aliases: '{pattern}' names '{target}', which is not a configured model"
                )
        return self

    def alias_target(self, name: str) -> str | None:
        """The configured model the first matching ``model_aliases`` glob names, if any.

        >>> config = GatewayConfig.model_validate({"models": [{"name": "qwen", "endpoint": "e"}],
        ...     "model_aliases": {"claude-*": "qwen", "gpt-4o*": "qwen"}})
        >>> config.alias_target("claude-sonnet-4-5"), config.alias_target("llama")
        ('qwen', None)
        """
        for pattern, target in self.model_aliases.items():
            if fnmatch.fnmatchcase(name, pattern):
                return target
        return None

    @property
    def default(self) -> ModelConfig:
        if self.default_model is None:
            return self.models[0]
        return self.get(self.default_model)  # type: ignore[return-value]

    def get(self, name: str) -> ModelConfig | None:
        return self._by_name.get(name)
