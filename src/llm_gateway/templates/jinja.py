"""Hugging Face ``chat_template`` strings, rendered safely with transformers' conventions.

jinja2's ``ImmutableSandboxedEnvironment`` (templates cannot reach Python internals or mutate
builtins), ``trim_blocks``/``lstrip_blocks`` and ``loopcontrols`` as transformers uses them,
``raise_exception``, ``strftime_now`` and a ``tojson`` that does not HTML-escape. ``{%
generation %}`` tags (training-only) are removed, as TGI does. Rendering errors, including a
template's own ``raise_exception``, become TGI's ``template_error``.

>>> t = JinjaTemplate("{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\\n{% endfor %}",
...                   bos_token="<s>", add_bos_token=True)
>>> from llm_gateway.templates.messages import Message
>>> t.render([Message("user", "Hi")])
'user: Hi\\n'
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llm_gateway.core.errors import template_error
from llm_gateway.templates.messages import Message

_GENERATION_TAGS = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """Compile once per template string; syntax errors surface at start-up."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(_GENERATION_TAGS.sub("", source))


class JinjaTemplate:
    """A configured ``chat_template`` with the tokens it refers to."""

    def __init__(
        self,
        source: str,
        *,
        bos_token: str = "",
        eos_token: str = "",
        add_bos_token: bool = True,
        stop: tuple[str, ...] = (),
    ) -> None:
        self.template = compile_template(source)
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.add_bos_token = add_bos_token
        self.stop = stop

    def render(self, messages: list[Message]) -> str:
        if not messages:
            raise template_error("`messages` must not be empty")
        items = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.content}
            for m in messages
        ]
        final = items[-1]["role"] == "assistant"
        try:
            text = self.template.render(
                messages=items,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                add_generation_prompt=not final,
            )
        except jinja2.exceptions.TemplateError as exc:
            raise template_error(str(exc)) from None
        except Exception as exc:  # the sandbox's SecurityError, type errors in templates…
            raise template_error(f"{type(exc).__name__}: {exc}") from None
        if final:
            # Continue the last assistant message (TGI ≥ 3.0): cut right after its text.
            content = items[-1]["content"]
            cut = text.rfind(content) if content else -1
            if cut >= 0:
                text = text[: cut + len(content)]
            text = text.rstrip()
        # TGI's tokenizer adds BOS on the raw-prompt path: drop exactly one leading BOS.
        if self.add_bos_token and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token) :]
        return text
