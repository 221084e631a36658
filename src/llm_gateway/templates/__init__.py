"""Prompt templates: chat messages to each model's exact prompt, and its default stops.

A model's ``template`` is a built-in family name (:mod:`.families`), ``none``, or a Hugging
Face ``chat_template`` (:mod:`.jinja`).

>>> from llm_gateway.templates.messages import Message
>>> t = template_for("llama2")
>>> t.render([Message("user", "Hi")]), t.stop
('[INST] Hi [/INST]', ('</s>', '[INST]'))
"""

from __future__ import annotations

from typing import Protocol

from llm_gateway.core.errors import template_error
from llm_gateway.templates.families import FAMILIES
from llm_gateway.templates.messages import Message


class PromptTemplate(Protocol):
    @property
    def stop(self) -> tuple[str, ...]:
        """The family's default stop sequences."""
        ...

    def render(self, messages: list[Message]) -> str: ...


class NoTemplate:
    """``template: none``: the model takes raw prompts only (``/v1/completions``, TGI routes)."""

    stop: tuple[str, ...] = ()

    def render(self, messages: list[Message]) -> str:
        raise template_error("template not found")


def template_for(spec: object) -> PromptTemplate:
    """The template a model's ``template`` setting names (a family, ``none`` or a ChatTemplate)."""
    if spec is None or spec == "none":
        return NoTemplate()
    if isinstance(spec, str):
        return FAMILIES[spec]
    # jinja2 is imported only by models that use a Hugging Face template (cold starts count)
    from llm_gateway.templates.jinja import JinjaTemplate

    return JinjaTemplate(
        spec.chat_template,  # type: ignore[attr-defined]
        bos_token=spec.bos_token,  # type: ignore[attr-defined]
        eos_token=spec.eos_token,  # type: ignore[attr-defined]
        add_bos_token=spec.add_bos_token,  # type: ignore[attr-defined]
        stop=tuple(spec.stop),  # type: ignore[attr-defined]
    )


__all__ = ["FAMILIES", "Message", "PromptTemplate", "template_for"]
