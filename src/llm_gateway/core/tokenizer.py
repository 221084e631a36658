"""Optional prompt-token counting with a model's own ``tokenizer.json``.

TGI counts prompt tokens with the model's tokenizer; the gateway cannot, unless a model's
configuration names its ``tokenizer.json`` and the ``tokenizers`` package is installed
(``pip install 'llm-gateway[tokenizer]'``). Then the token-limit rules run in the gateway too,
before any upstream call, and prompt sizes are known even where the endpoint does not report
them (TGI 0.8.x streams).
"""

from __future__ import annotations

import re
from typing import Protocol

_PIECES = re.compile(r"\s*[A-Za-z0-9']+|\s*[^\sA-Za-z0-9']|\s+")


def estimate_tokens(text: str) -> int:
    """A rough count (words and punctuation) for when neither the endpoint nor a configured
    tokenizer can tell; answers that use it say so."""
    return len(_PIECES.findall(text))


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class HFTokenizer:
    """Counts tokens as TGI does on its raw-prompt routes: special tokens added."""

    def __init__(self, path: str) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise RuntimeError(
                "a tokenizer is configured but the 'tokenizers' package is not installed "
                "(pip install 'llm-gateway[tokenizer]')"
            ) from None
        self._tokenizer = Tokenizer.from_file(path)

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=True).ids)
