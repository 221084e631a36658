"""Streamed and buffered answers list the same logprobs when a stop sequence cuts the text
(issue 12 item 11): no logprob for a token whose text was withheld."""

from __future__ import annotations

import openai
import pytest

HI = [{"role": "user", "content": "Tell me something"}]


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)


def streamed_chat(oai, **kwargs):
    text, tokens = "", []
    for chunk in oai.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.logprobs and choice.logprobs.content:
                tokens += [t.token for t in choice.logprobs.content]
    return text, tokens


def streamed_completion(oai, **kwargs):
    text, tokens = "", []
    for chunk in oai.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            text += choice.text or ""
            if choice.logprobs and choice.logprobs.tokens:
                tokens += choice.logprobs.tokens
    return text, tokens


def stops_across_tokens(tokens: list[str]) -> list[str]:
    """Stop sequences that start inside one token and end inside a later one."""
    out = []
    for i in range(1, min(len(tokens) - 2, 8)):
        a, b = tokens[i], tokens[i + 1]
        if len(a) >= 2 and b:
            out.append(a[-1] + b[: max(1, len(b) - 1)])
    return out


def test_chat_stream_lists_no_logprob_for_withheld_text(oai):
    base = {"model": "tgi3", "messages": HI, "max_tokens": 16, "seed": 11, "logprobs": True}
    whole = oai.chat.completions.create(**base)
    tokens = [t.token for t in whole.choices[0].logprobs.content]
    checked = 0
    for stop in stops_across_tokens(tokens):
        buffered = oai.chat.completions.create(**base, stop=[stop])
        text, streamed_tokens = streamed_chat(oai, **base, stop=[stop])
        assert text == buffered.choices[0].message.content
        buffered_tokens = [t.token for t in buffered.choices[0].logprobs.content]
        assert streamed_tokens == buffered_tokens, (stop, text)
        assert sum(len(t) for t in streamed_tokens[:-1]) < len(text) or not text
        checked += 1
    assert checked >= 3


def test_completion_stream_lists_no_logprob_for_withheld_text(oai):
    base = {"model": "tgi3", "prompt": "Once upon", "max_tokens": 16, "seed": 4, "logprobs": 1}
    whole = oai.completions.create(**base)
    checked = 0
    for stop in stops_across_tokens(whole.choices[0].logprobs.tokens):
        buffered = oai.completions.create(**base, stop=[stop])
        text, streamed_tokens = streamed_completion(oai, **base, stop=[stop])
        assert text == buffered.choices[0].text
        assert streamed_tokens == buffered.choices[0].logprobs.tokens, (stop, text)
        checked += 1
    assert checked >= 3
