"""Stop sequences never reach the client, however the model splits them across tokens."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.stops import StopFilter, cut_at_stop, merge_stops


def stream(tokens: list[str], stops: list[str]) -> tuple[str, bool]:
    f = StopFilter(stops)
    out = "".join(f.push(t) for t in tokens)
    return out + f.flush(), f.stopped


def test_stop_split_across_tokens_is_held_back_then_dropped():
    f = StopFilter(["<|im_end|>"])
    assert f.push("Hello <|") == "Hello "
    assert f.push("im_") == ""
    assert f.push("end|> trailing") == ""
    assert f.stopped and f.flush() == ""


def test_held_back_text_is_released_when_it_cannot_become_a_stop():
    f = StopFilter(["\nUser:"])
    assert f.push("a\nU") == "a"
    assert f.push("ser") == ""
    assert f.push("name") == "\nUsername"
    assert f.push("\n") == ""
    assert f.flush() == "\n"


def test_merge_keeps_client_stops_first_within_the_limit():
    assert merge_stops(["x"], ["</s>", "[INST]"], 4) == ["x", "</s>", "[INST]"]
    assert merge_stops(["a", "b", "c"], ["</s>", "[INST]"], 4) == ["a", "b", "c", "</s>"]
    assert merge_stops(["</s>"], ["</s>", ""], 4) == ["</s>"]


def test_cut_at_the_stop_that_completes_first():
    assert cut_at_stop("one. two\nUser: x", ["\nUser:", "."]) == ("one", True)
    assert cut_at_stop("xyz", ["xyz", "y"]) == ("x", True)  # "y" completes before "xyz"
    assert cut_at_stop("ab", ["b", "ab"]) == ("", True)  # same end: the longer one
    assert cut_at_stop("no stop here", ["\nUser:"]) == ("no stop here", False)


text = st.text(alphabet="ab<|>\nU:s ", max_size=40)
stops = st.lists(st.text(alphabet="ab<|>\nU:s", min_size=1, max_size=6), min_size=1, max_size=4)


@settings(max_examples=500, deadline=None)
@given(whole=text, stops=stops, cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=12))
def test_streamed_equals_whole_text_cut(whole, stops, cuts):
    """Splitting the text into tokens anywhere gives exactly the non-stream answer."""
    points = sorted({c % (len(whole) + 1) for c in cuts})
    tokens, last = [], 0
    for p in [*points, len(whole)]:
        tokens.append(whole[last:p])
        last = p
    expected, found = cut_at_stop(whole, stops)
    assert stream(tokens, stops) == (expected, found)


@settings(max_examples=300, deadline=None)
@given(whole=text, stops=stops)
def test_no_stop_text_is_ever_emitted(whole, stops):
    f = StopFilter(stops)
    emitted = ""
    for ch in whole:
        emitted += f.push(ch)
        # what went out never contains a complete stop sequence
        assert not any(s in emitted for s in stops)
    emitted += f.flush()
    assert not any(s in emitted for s in stops)
