"""An OpenAI server's answers in the core's terms: TGI token events and details rebuilt from
completion (or chat) chunks, ``logprobs`` and ``usage``; chat chunks are read by
:mod:`llm_gateway.backends.chunks`.

Streams come as SSE (vLLM, SGLang: ``data: {…}`` … ``data: [DONE]``, optional ``: keep-alive``)
or JSON Lines (LMI: bare objects, ``[DONE]`` turned into an empty line); both are read, split
anywhere. The last token event is held back until the finish chunk and the usage chunk have
arrived, so that it can carry ``generated_text`` and exact counts.

TGI's ``finish_reason`` from the container's: ``length`` is ``length``; ``stop`` with a matched
stop *string* (vLLM ``stop_reason``, SGLang ``matched_stop``) is ``stop_sequence``; any other
``stop`` (EOS, a stop token id) is ``eos_token``.

>>> d = TokenDecoder(chat=False)
>>> events = d.feed(b'data: {"choices":[{"index":0,"text":" Hi","finish_reason":null}]}\\n\\n'
...                 b'data: {"choices":[{"index":0,"text":"","finish_reason":"stop","stop_reason":null}]}\\n\\n')
>>> [e.token.text for e in events]
[' Hi']
>>> last = d.feed(b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\\n\\n')[0]
>>> last.generated_text, last.token.special, last.details
(' Hi', True, Details(finish_reason='eos_token', generated_tokens=2, seed=None, input_length=3, prefill=(), tokens=(), top_tokens=(), best_of_sequences=None))
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.backends.framing import LineDecoder, malformed
from llm_gateway.backends.openai.errors import error_event
from llm_gateway.core.errors import incomplete_stream, upstream_error
from llm_gateway.core.events import Details, StreamItem, Token, TokenEvent
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.core.ports import Generated

# (token text, logprob, top alternatives as (text, logprob) best first, or None)
Entry = tuple[str, float | None, list[tuple[str, float | None]] | None]
# A token and its top_tokens row (None: none were asked for)
Built = tuple[Token, tuple[Token, ...] | None]
UNKNOWN = Token(0, "", None, False)  # a top_tokens entry the container did not report
EMPTY_EOS = Token(0, "", None, True)


def tgi_finish(reason: Any, matched: Any) -> str:
    """TGI's finish reason from the container's ``finish_reason`` and matched stop."""
    if reason == "length":
        return "length"
    if isinstance(matched, str):
        return "stop_sequence"
    return "eos_token"


def _matched(choice: dict[str, Any]) -> Any:
    return choice.get("stop_reason", choice.get("matched_stop"))


def _entries(logprobs: Any, chat: bool) -> list[Entry]:
    """Per-token log-probs of a completion choice (parallel lists) or a chat choice
    (``content`` entries), as one shape."""
    if not isinstance(logprobs, dict):
        return []
    out: list[Entry] = []
    if chat:
        for item in logprobs.get("content") or ():
            if not isinstance(item, dict):
                continue
            top = item.get("top_logprobs")
            alternatives = (
                [(str(t.get("token", "")), t.get("logprob")) for t in top if isinstance(t, dict)]
                if isinstance(top, list)
                else None
            )
            out.append((str(item.get("token", "")), item.get("logprob"), alternatives))
        return out
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    for i, text in enumerate(tokens):
        top = tops[i] if i < len(tops) else None
        alternatives = (
            sorted(top.items(), key=lambda kv: -(kv[1] if kv[1] is not None else -1e30))
            if isinstance(top, dict)
            else None
        )
        out.append((str(text), values[i] if i < len(values) else None, alternatives))
    return out


class TokenBuilder:
    """TGI tokens from one piece of an answer: its visible text, log-probs and token ids."""

    __slots__ = ("top_n",)

    def __init__(self, top_n: int) -> None:
        self.top_n = top_n

    def row(
        self, token: Token, alternatives: list[tuple[str, float | None]] | None
    ) -> tuple[Token, ...] | None:
        """TGI's ``top_tokens`` row for ``token``: always ``top_n`` wide, as TGI's. The
        container's alternatives come first (best first); the token itself is added when
        they leave it out, and what the container did not report (an EOS it showed no
        log-probs for) is filled with unknown entries (``text: ""``, ``logprob: null``)."""
        if not self.top_n:
            return None
        # the chosen token, named by the container: its id, its specialness
        row = [
            Token(token.id, text, logprob, token.special)
            if text == token.text
            else Token(0, text, logprob, False)
            for text, logprob in (alternatives or [])[: self.top_n]
        ]
        if len(row) < self.top_n and all(r.text != token.text for r in row):
            row.append(token)
        row += [UNKNOWN] * (self.top_n - len(row))
        return tuple(row)

    def tokens(self, text: str, entries: list[Entry], ids: Any, eos: bool) -> list[Built]:
        """``eos``: the answer ends here on an end-of-sequence token, which TGI shows as a last
        special token (taken from the log-probs when they name it, else an empty one)."""
        ids = ids if isinstance(ids, list) else []
        eos_entry: Entry | None = None
        if eos and entries:
            head = "".join(e[0] for e in entries[:-1])
            whole = head + entries[-1][0]
            if not text or (head == text and whole != text) or (whole != text and len(entries) > 1):
                eos_entry = entries[-1]
                entries = entries[:-1]
        out: list[Built] = []
        if entries:
            texts = [e[0] for e in entries]
            if "".join(texts) != text:  # the visible text decides; log-probs name pieces
                texts = [text] + [""] * (len(entries) - 1)
            for i, (entry, shown) in enumerate(zip(entries, texts, strict=True)):
                token_id = ids[i] if len(ids) > i and isinstance(ids[i], int) else 0
                token = Token(token_id, shown, entry[1], False)
                out.append((token, self.row(token, entry[2])))
        elif text:
            token_id = ids[0] if ids and isinstance(ids[0], int) else 0
            token = Token(token_id, text, None, False)
            out.append((token, self.row(token, None)))
        if eos:
            if eos_entry is not None:
                token_id = ids[-1] if len(ids) > len(out) and isinstance(ids[-1], int) else 0
                special = Token(token_id, eos_entry[0], eos_entry[1], True)
                out.append((special, self.row(special, eos_entry[2])))
            else:
                out.append((EMPTY_EOS, self.row(EMPTY_EOS, None)))
        return out


def _seed(parameters: GenerateParameters | None) -> int | None:
    """TGI reports the seed of sampled generations; a greedy one has none."""
    if parameters is None or not parameters.sampling:
        return None
    return parameters.seed


def _choice_text(choice: dict[str, Any], chat: bool) -> str:
    if not chat:
        return str(choice.get("text") or "")
    part = choice.get("delta")
    if not isinstance(part, dict):
        part = choice.get("message")
    content = part.get("content") if isinstance(part, dict) else None
    return content if isinstance(content, str) else ""


class TokenDecoder(LineDecoder):
    """Completion chunks (or, ``chat``, chat chunks) of choice 0 as TGI token events."""

    __slots__ = (
        "_builder",
        "_chat",
        "_count",
        "_finish",
        "_pending",
        "_ready",
        "_seed",
        "_texts",
        "_usage",
    )

    def __init__(self, *, chat: bool, parameters: GenerateParameters | None = None) -> None:
        super().__init__()
        self._chat = chat
        self._builder = TokenBuilder((parameters.top_n_tokens or 0) if parameters else 0)
        self._seed = _seed(parameters)
        self._pending: TokenEvent | None = None
        self._count = 0
        self._texts: list[str] = []
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._ready: list[StreamItem] = []  # events decoded from the lines fed so far

    def _line(self, line: bytes) -> StreamItem | None:
        return None if self.finished else super()._line(line)

    def _payload(self, obj: dict[str, Any]) -> StreamItem | None:  # type: ignore[override]
        if obj.get("error") is not None:
            return self._fail(error_event(obj))
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return self._fail(malformed("no choices"))
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._ready += self._choice(choice)
        if self._finish is not None and (isinstance(usage, dict) or not choices):
            last = self._last()
            if last is not None:
                self._ready.append(last)
        return None

    def _choice(self, choice: dict[str, Any]) -> list[TokenEvent]:
        text = _choice_text(choice, self._chat)
        reason = choice.get("finish_reason")
        if reason:
            self._finish = tgi_finish(reason, _matched(choice))
        eos = self._finish == "eos_token" and bool(reason)
        entries = _entries(choice.get("logprobs"), self._chat)
        self._texts.append(text)
        out: list[TokenEvent] = []
        for token, top in self._builder.tokens(text, entries, choice.get("token_ids"), eos):
            self._count += 1
            event = TokenEvent(index=self._count, token=token, top_tokens=top)
            if self._pending is not None:
                out.append(self._pending)
            self._pending = event
        return out

    def _last(self) -> TokenEvent | None:
        """The held-back last token with the generation's text and details."""
        if self.finished:
            return None
        self.finished = True
        if self._pending is None:  # the answer had no token: an empty EOS
            self._pending = TokenEvent(1, EMPTY_EOS, self._builder.row(EMPTY_EOS, None))
        event = self._pending
        self._pending = None
        usage = self._usage or {}
        generated, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
        details = Details(
            self._finish,
            generated if isinstance(generated, int) else self._count,
            self._seed,
            prompt if isinstance(prompt, int) else None,
        )
        event.generated_text = "".join(self._texts)
        event.details = details
        return event

    def _done(self) -> StreamItem | None:
        if self._finish is None:
            return self._fail(incomplete_stream())
        return self._last()

    def _take(self, items: list[StreamItem]) -> list[StreamItem]:
        ready, self._ready = self._ready, []
        return ready + items

    def feed(self, chunk: bytes) -> list[StreamItem]:
        if self.finished:
            return []
        return self._take(super().feed(chunk))

    def close(self) -> list[StreamItem]:
        if self.finished:
            return []
        rest = self._lines.flush()
        out: list[StreamItem] = []
        if rest:
            item = self._line(rest)
            if item is not None:
                out.append(item)
        if not self.finished:
            if self._finish is not None:  # JSON Lines streams end without [DONE]
                last = self._last()
                if last is not None:
                    out.append(last)
            else:
                self.finished = True
                out.append(incomplete_stream())
        return self._take(out)


def parse_answer(
    raw: bytes, *, chat: bool, parameters: GenerateParameters | None = None
) -> Generated:
    """A buffered ``text_completion`` (or ``chat.completion``) as TGI's text and details."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise upstream_error("The model endpoint returned a body that is not JSON") from None
    if isinstance(data, dict) and data.get("error") is not None:
        raise error_event(data)
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise upstream_error("The model endpoint returned an unexpected body (no choices)")
    choice = choices[0]
    text = _choice_text(choice, chat)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    finish = tgi_finish(choice.get("finish_reason"), _matched(choice))
    entries = _entries(choice.get("logprobs"), chat)
    generated = usage.get("completion_tokens")
    if isinstance(generated, int) and len(entries) > generated:
        entries = entries[-generated:]  # `echo` puts the prompt's log-probs first
    top_n = (parameters.top_n_tokens or 0) if parameters else 0
    tokens: list[Built] = []
    if entries:
        shown = text
        if parameters is not None and parameters.return_full_text:  # `echo`: prompt + answer
            shown = "".join(e[0] for e in entries)
        builder = TokenBuilder(top_n)
        tokens = builder.tokens(shown, entries, choice.get("token_ids"), finish == "eos_token")
    prompt = usage.get("prompt_tokens")
    details = Details(
        finish,
        generated if isinstance(generated, int) else len(tokens),
        _seed(parameters),
        prompt if isinstance(prompt, int) else None,
        tokens=tuple(t for t, _ in tokens),
        top_tokens=tuple(top or () for _, top in tokens) if top_n and tokens else (),
    )
    return Generated(text, details)
