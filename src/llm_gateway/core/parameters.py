"""TGI's request types: ``GenerateParameters`` and a model's validation ``Limits``.

The fields, JSON types and defaults are TGI 3.x's (``router/src/lib.rs``). Types are strict as
serde's are: a string is not a number, ``1.5`` is not an integer, ``true`` is not ``1``.
Unlike TGI, an explicit ``null`` is accepted for every field and means "not set", because
clients send nulls (``text_generation`` and ``huggingface_hub`` serialise unset fields).

>>> p = GenerateParameters.model_validate({"temperature": 0.5, "stop": ["\\n"]})
>>> p.temperature, p.stop, p.do_sample
(0.5, ['\\n'], None)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

# Rust integer types as constrained ints; the metadata names the Rust type for error messages.
U32 = Annotated[int, Field(ge=0, le=U32_MAX, json_schema_extra={"format": "int32", "minimum": 0})]
U64 = Annotated[int, Field(ge=0, le=U64_MAX, json_schema_extra={"format": "int64", "minimum": 0})]
I32 = Annotated[int, Field(ge=I32_MIN, le=I32_MAX, json_schema_extra={"format": "int32"})]
F32 = Annotated[float, Field(json_schema_extra={"format": "float"})]

# Field -> the Rust type TGI deserialises it as; used to phrase type errors like serde does.
RUST_TYPES: dict[str, str] = {
    "best_of": "usize",
    "temperature": "f32",
    "repetition_penalty": "f32",
    "frequency_penalty": "f32",
    "top_k": "i32",
    "top_p": "f32",
    "typical_p": "f32",
    "do_sample": "a boolean",
    "max_new_tokens": "u32",
    "return_full_text": "a boolean",
    "stop": "a sequence",
    "truncate": "usize",
    "watermark": "a boolean",
    "details": "a boolean",
    "decoder_input_details": "a boolean",
    "seed": "u64",
    "top_n_tokens": "u32",
    "grammar": "internally tagged enum GrammarType",
    "adapter_id": "a string",
    "inputs": "a string",
    "stream": "a boolean",
    "parameters": "struct GenerateParameters",
    "": "struct GenerateRequest",
}


SAMPLING_FIELDS = frozenset({"temperature", "top_p", "top_k", "typical_p"})


class Grammar(BaseModel):
    """TGI's ``GrammarType``: ``{"type": "json" | "json_object" | "regex" | "json_schema", "value": …}``."""

    model_config = ConfigDict(strict=True, extra="ignore")

    type: Literal["json", "json_object", "regex", "json_schema"]
    value: Any

    @model_validator(mode="after")
    def _value_matches_type(self) -> Grammar:
        if self.type == "regex" and not isinstance(self.value, str):
            raise ValueError("invalid type: expected a string for a `regex` grammar")
        if self.type == "json_schema" and not (
            isinstance(self.value, dict) and "schema" in self.value
        ):
            raise ValueError("missing field `schema` in a `json_schema` grammar")
        return self


class GenerateParameters(BaseModel):
    """Every ``GenerateParameters`` field of TGI 3.x. ``None`` means the client did not set it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    best_of: U64 | None = None
    temperature: F32 | None = None
    repetition_penalty: F32 | None = None
    frequency_penalty: F32 | None = None
    top_k: I32 | None = None
    top_p: F32 | None = None
    typical_p: F32 | None = None
    do_sample: bool | None = None
    max_new_tokens: U32 | None = None
    return_full_text: bool | None = None
    stop: list[str] | None = None
    truncate: U64 | None = None
    watermark: bool | None = None
    details: bool | None = None
    decoder_input_details: bool | None = None
    seed: U64 | None = None
    top_n_tokens: U32 | None = None
    grammar: Grammar | None = None
    adapter_id: str | None = None

    @property
    def sampling(self) -> bool:
        """TGI's notion of sampling for the ``best_of`` check (``validation.rs``)."""
        return bool(self.do_sample) or any(
            v is not None for v in (self.temperature, self.top_k, self.top_p, self.typical_p)
        )

    def with_defaults(self, defaults: GenerateParameters | None) -> GenerateParameters:
        """Fill what the client left unset from a model's configured defaults.

        A client that asks for greedy decoding (``do_sample: false``) keeps it: the sampling
        defaults (temperature, top_p, top_k, typical_p) would turn sampling on in TGI.
        """
        if defaults is None:
            return self
        greedy = self.do_sample is False
        updates = {
            name: value
            for name, value in defaults.__dict__.items()
            if value is not None
            and getattr(self, name) in (None, [])
            and not (greedy and name in SAMPLING_FIELDS)
        }
        return self.model_copy(update=updates) if updates else self

    def to_upstream(self, *, return_full_text: bool) -> dict[str, Any]:
        """The ``parameters`` object sent to TGI.

        Only fields that are set are sent (older TGI versions do not know the newer ones);
        ``return_full_text`` is always explicit (SageMaker's ``/invocations`` defaults it to
        true) and ``details`` is always requested because usage and metrics need it.
        """
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if value is None or value is False or value == []:
                continue
            out[name] = value.model_dump() if isinstance(value, Grammar) else value
        out["do_sample"] = bool(self.do_sample)
        out["return_full_text"] = return_full_text
        out["details"] = True
        return out


class Limits(BaseModel):
    """A model's validation limits: the TGI launcher's ``MAX_*`` settings of its endpoint."""

    model_config = ConfigDict(extra="forbid")

    max_input_tokens: int = Field(1024, ge=1)
    max_total_tokens: int = Field(2048, ge=2)
    max_stop_sequences: int = Field(4, ge=0)
    max_best_of: int = Field(2, ge=1)
    max_top_n_tokens: int = Field(5, ge=0)
    # Prompts per request (OpenAI's completions take an array): TGI's MAX_CLIENT_BATCH_SIZE.
    max_client_batch_size: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _input_below_total(self) -> Limits:
        if self.max_input_tokens >= self.max_total_tokens:
            raise ValueError(
                f"max_input_tokens ({self.max_input_tokens}) must be less than "
                f"max_total_tokens ({self.max_total_tokens}), as TGI's launcher requires"
            )
        return self


class GenerateRequest(BaseModel):
    """TGI's ``GenerateRequest`` / ``CompatGenerateRequest`` (``stream`` only matters on ``POST /``)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    inputs: str
    parameters: GenerateParameters | None = None
    stream: bool | None = None

    def effective_parameters(self) -> GenerateParameters:
        """TGI uses ``default_parameters()`` (``do_sample: true``) when ``parameters`` is absent."""
        if self.parameters is None:
            return GenerateParameters(do_sample=True)
        return self.parameters
