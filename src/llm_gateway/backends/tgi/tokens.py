"""TGI's token and details JSON as the core's typed objects, built once per object.

Tolerates LMI's variants (``log_prob`` for ``logprob``, a missing ``special``) and fields of
the wrong type (read as absent), so a container's quirk never breaks a stream. What is read
here, :mod:`llm_gateway.dialects.tgi.encoding` writes back in TGI 3.x's shape.

>>> token({"id": 5, "text": " Hi", "log_prob": -0.5})
Token(id=5, text=' Hi', logprob=-0.5, special=False)
>>> d = details({"finish_reason": "length", "generated_tokens": 2, "seed": None,
...              "prefill": [{"id": 1, "text": "<s>", "logprob": None}], "tokens": []})
>>> d.finish_reason, d.generated_tokens, d.prefill[0].text, d.best_of_sequences
('length', 2, '<s>', None)
"""

from __future__ import annotations

from typing import Any

from llm_gateway.backends.values import as_int, as_number, as_str
from llm_gateway.core.events import BestOfSequence, Details, PrefillToken, Token


def token(obj: dict[str, Any]) -> Token:
    """A token; ``log_prob`` (LMI) is read as ``logprob``, a missing ``special`` as false.
    The per-token path, so read inline."""
    get = obj.get
    token_id, text, special = get("id"), get("text"), get("special")
    logprob = get("logprob", get("log_prob"))
    return Token(
        token_id if type(token_id) is int else 0,
        text if type(text) is str else "",
        logprob if type(logprob) is float or type(logprob) is int else None,
        special is True,
    )


def tokens(items: Any) -> tuple[Token, ...]:
    return tuple(token(t) for t in items if isinstance(t, dict)) if isinstance(items, list) else ()


def _prefill(items: Any) -> tuple[PrefillToken, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        PrefillToken(
            as_int(t.get("id")) or 0, as_str(t.get("text")) or "", as_number(t.get("logprob"))
        )
        for t in items
        if isinstance(t, dict)
    )


def _top_tokens(rows: Any) -> tuple[tuple[Token, ...], ...]:
    return tuple(tokens(row) for row in rows) if isinstance(rows, list) else ()


TokenLists = tuple[tuple[PrefillToken, ...], tuple[Token, ...], tuple[tuple[Token, ...], ...]]


def _lists(obj: dict[str, Any], token_lists: bool) -> TokenLists:
    """``(prefill, tokens, top_tokens)`` of a details object, or three empty ones."""
    if not token_lists:
        return (), (), ()
    return (
        _prefill(obj.get("prefill")),
        tokens(obj.get("tokens")),
        _top_tokens(obj.get("top_tokens")),
    )


def _sequence(obj: dict[str, Any], token_lists: bool) -> BestOfSequence:
    return BestOfSequence(
        as_str(obj.get("generated_text")),
        as_str(obj.get("finish_reason")),
        as_int(obj.get("generated_tokens")),
        as_int(obj.get("seed")),
        *_lists(obj, token_lists),
    )


def details(obj: Any, *, token_lists: bool = True) -> Details | None:
    """TGI's ``Details`` (buffered) or ``StreamDetails`` (a stream's last event).

    ``token_lists`` false reads the counts alone (how it finished, the tokens generated, the
    seed, the prompt's length, each ``best_of`` sequence's count): what usage and budgets
    need of an answer whose client asked for no details. The token lists are most of such an
    answer, and nothing would read them."""
    if not isinstance(obj, dict):
        return None
    best_of = obj.get("best_of_sequences")
    return Details(
        as_str(obj.get("finish_reason")),
        as_int(obj.get("generated_tokens")),
        as_int(obj.get("seed")),
        as_int(obj.get("input_length")),
        *_lists(obj, token_lists),
        tuple(_sequence(s, token_lists) for s in best_of if isinstance(s, dict))
        if isinstance(best_of, list)
        else None,
    )
