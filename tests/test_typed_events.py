"""The core's typed events lose nothing the gateway relays: what the TGI back-end decodes an
upstream's stream events and buffered answers into, the TGI dialect re-encodes to the very bytes
the upstream sent (TGI 3.x shapes, serde's field order and omissions); what the chat back-ends
read of a chunk's delta and log-probs, the relay writes back as the container sent it."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.backends.chunks import chat_chunk
from llm_gateway.backends.tgi.generate import TGIGenerate, parse_generate_response
from llm_gateway.backends.tgi.stream import TGIStreamDecoder
from llm_gateway.core.events import Details, Finish, TokenEvent, TokenUsage
from llm_gateway.core.generation import GenerationResult
from llm_gateway.core.parameters import GenerateParameters
from llm_gateway.dialects.openai.passthrough import ChatChunkEncoder
from llm_gateway.dialects.tgi.encoding import TGIStreamEncoder, generate_body
from llm_gateway.http.sse import wire

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
logprobs = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=32)
ids = st.integers(0, 2**32 - 1)
reasons = st.sampled_from(["length", "eos_token", "stop_sequence"])
seeds = st.none() | st.integers(0, 2**64 - 1)
counts = st.integers(0, 2**31)


@st.composite
def token(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(ids),
        "text": draw(texts),
        "logprob": draw(logprobs),
        "special": draw(st.booleans()),
    }


@st.composite
def prefill_token(draw: st.DrawFn) -> dict[str, Any]:
    return {"id": draw(ids), "text": draw(texts), "logprob": draw(logprobs)}


def _optional_top(draw: st.DrawFn, out: dict[str, Any]) -> dict[str, Any]:
    """``top_tokens``: serde leaves it out when empty."""
    rows = draw(st.lists(st.lists(token(), min_size=1, max_size=3), max_size=3))
    if rows:
        out["top_tokens"] = rows
    return out


@st.composite
def sequence_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "finish_reason": draw(reasons),
        "generated_tokens": draw(counts),
        "seed": draw(seeds),
        "prefill": draw(st.lists(prefill_token(), max_size=3)),
        "tokens": draw(st.lists(token(), max_size=4)),
    }


@st.composite
def details(draw: st.DrawFn) -> dict[str, Any]:
    out = draw(sequence_fields())
    if draw(st.booleans()):
        out["best_of_sequences"] = [
            _optional_top(draw, {"generated_text": draw(texts), **draw(sequence_fields())})
            for _ in range(draw(st.integers(0, 2)))
        ]
    return _optional_top(draw, out)


@st.composite
def stream_event(draw: st.DrawFn, *, index: int, last: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "token": draw(token())}
    top = draw(st.lists(token(), max_size=3))
    if top:
        out["top_tokens"] = top
    out["generated_text"] = draw(texts) if last else None
    out["details"] = None
    if last:
        stream_details = {
            "finish_reason": draw(reasons),
            "generated_tokens": draw(counts),
            "seed": draw(seeds),
        }
        if draw(st.booleans()):
            stream_details["input_length"] = draw(counts)
        out["details"] = stream_details
    return out


@st.composite
def stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 4))
    return [draw(stream_event(index=i + 1, last=i == n - 1)) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(stream())
def test_stream_events_re_encode_to_the_upstreams_bytes(events: list[dict[str, Any]]) -> None:
    sent = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]
    decoded = TGIStreamDecoder().feed(b"".join(sent))
    assert all(isinstance(e, TokenEvent) for e in decoded)
    encoder = TGIStreamEncoder(details=True)
    assert [wire(encoder.event(e)) for e in decoded if isinstance(e, TokenEvent)] == sent


@settings(max_examples=200, deadline=None)
@given(texts, details())
def test_buffered_details_re_encode_to_the_upstreams_bytes(text: str, sent: dict[str, Any]) -> None:
    upstream = {"generated_text": text, "details": sent}
    generated = parse_generate_response(orjson.dumps([upstream]))
    assert isinstance(generated.details, Details)
    result = GenerationResult(generated.text, generated.details, upstream_seconds=0.0)
    assert orjson.dumps(generate_body(result, details=True)) == orjson.dumps(upstream)


@settings(max_examples=200, deadline=None)
@given(texts, details(), st.booleans(), st.booleans())
def test_details_the_client_did_not_ask_for_keep_their_counts_only(
    text: str, sent: dict[str, Any], details_asked: bool, prefill_asked: bool
) -> None:
    """The gateway always asks TGI for details (usage and budgets need the counts); the token
    lists are read only when the client asked for details or the prompt's tokens."""
    raw = orjson.dumps([{"generated_text": text, "details": sent}])
    asked = GenerateParameters(details=details_asked, decoder_input_details=prefill_asked)
    parsed = TGIGenerate().parse_generated(raw, asked).details
    full = parse_generate_response(raw).details
    assert parsed is not None and full is not None
    assert Finish.of(parsed) == Finish.of(full) and parsed.seed == full.seed
    assert parsed.best_of_tokens == full.best_of_tokens
    if details_asked or prefill_asked:
        assert parsed == full
    else:
        assert parsed.tokens == parsed.prefill == parsed.top_tokens == ()
        assert all(s.tokens == () for s in parsed.best_of_sequences or ())
        assert len(parsed.best_of_sequences or ()) == len(full.best_of_sequences or ())


def test_lmi_tokens_are_read_in_tgi_terms_and_written_in_tgi_shape() -> None:
    """LMI's ``log_prob`` and a missing ``special`` come out as TGI's ``logprob``/``special``."""
    sent = {
        "generated_text": "Hi",
        "details": {
            "finish_reason": "length",
            "generated_tokens": 1,
            "seed": None,
            "prefill": [],
            "tokens": [{"id": 7, "text": "Hi", "log_prob": -0.5}],
        },
    }
    generated = parse_generate_response(orjson.dumps(sent))
    result = GenerationResult(generated.text, generated.details, upstream_seconds=0.0)
    assert orjson.loads(orjson.dumps(generate_body(result, details=True)))["details"]["tokens"] == [
        {"id": 7, "text": "Hi", "logprob": -0.5, "special": False}
    ]


def test_chat_usage_without_a_completion_count_is_marked_not_guessed() -> None:
    counted = chat_chunk({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    prompt_only = chat_chunk({"choices": [], "usage": {"prompt_tokens": 9}})
    nothing = chat_chunk({"choices": [], "usage": {"completion_tokens": 4}})
    assert counted is not None and counted.usage == TokenUsage(9, 4)
    assert prompt_only is not None and prompt_only.usage == TokenUsage(
        9, 0, completion_counted=False
    )
    assert nothing is not None and nothing.usage is None
    assert chat_chunk({"usage": {"prompt_tokens": 1}}) is None  # no choices: not a chunk


# -- chat chunks: what the relay reads of a delta, it writes back as the upstream sent it ------

words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


@st.composite
def top_logprob(draw: st.DrawFn) -> dict[str, Any]:
    text = draw(words)
    return {"token": text, "logprob": draw(logprobs), "bytes": list(text.encode())}


@st.composite
def chat_logprob(draw: st.DrawFn) -> dict[str, Any]:
    return {**draw(top_logprob()), "top_logprobs": draw(st.lists(top_logprob(), max_size=2))}


@st.composite
def tool_call(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """A fragment in OpenAI's field order: the first names the call, later ones add arguments."""
    out: dict[str, Any] = {"index": index}
    if draw(st.booleans()):
        out |= {"id": draw(words), "type": "function"}
        out["function"] = {"name": draw(words), "arguments": draw(texts)}
    else:
        out["function"] = {"arguments": draw(texts)}
    return out


@st.composite
def delta(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"content": draw(words)}
    for key in ("reasoning_content", "reasoning"):
        if draw(st.booleans()):
            out[key] = draw(words)
    calls = [draw(tool_call(i)) for i in range(draw(st.integers(0, 2)))]
    if calls:
        out["tool_calls"] = calls
    return out


@settings(max_examples=200, deadline=None)
@given(delta(), st.none() | st.lists(chat_logprob(), max_size=3))
def test_relayed_deltas_and_logprobs_are_the_upstreams(
    sent: dict[str, Any], entries: list[dict[str, Any]] | None
) -> None:
    choice = {"index": 0, "delta": sent, "logprobs": None, "finish_reason": None}
    if entries is not None:
        choice["logprobs"] = {"content": entries}
    chunk = chat_chunk({"id": "x", "object": "chat.completion.chunk", "choices": [choice]})
    assert chunk is not None
    encoder = ChatChunkEncoder(
        chat=True,
        completion_id="c",
        model="m",
        created=1,
        stops=[],
        include_usage=False,
        logprobs=False,
        prompt_estimate=1,
        relay=True,
    )
    out = wire(encoder.event(chunk))
    relayed = orjson.loads(out.split(b"\n\n")[1].removeprefix(b"data: "))["choices"][0]
    assert orjson.dumps(relayed["delta"]) == orjson.dumps(sent)
    assert orjson.dumps(relayed["logprobs"]) == orjson.dumps(choice["logprobs"])
