"""Answers rendered as Markdown in chromium: lists, tables and code blocks render (while the
answer streams, too), hostile model output never runs nor escapes sanitizing, code blocks copy
to the clipboard, each answer shows its timings and usage, both dialects' errors read well,
and the conversation survives a reload."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from playwright.sync_api import Page, Route, expect

from .conftest import Served, Watched, body_of, open_chat, send, text_of

# Every element under the conversation that could run script or load something: event handler
# attributes, script-capable URLs, and tags that have no business in a rendered answer.
DANGER_JS = """() => {
  const found = [];
  for (const node of document.querySelectorAll("#log *")) {
    for (const attr of node.attributes) {
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, "").toLowerCase();
      if (attr.name.toLowerCase().startsWith("on")) found.push(node.tagName + "[" + attr.name + "]");
      if (["href", "src", "action", "formaction", "xlink:href", "srcdoc"].includes(attr.name)
          && /^(javascript|vbscript|data):/.test(value)) found.push(node.tagName + "[" + attr.name + "=" + value + "]");
      if (attr.name === "style") found.push(node.tagName + "[style]");
    }
    const tag = node.tagName.toLowerCase();
    if (["script", "iframe", "svg", "img", "object", "embed", "details", "math", "style", "form",
         "input", "base", "link", "meta", "video", "audio", "source"].includes(tag)) found.push(tag);
  }
  return found;
}"""


def test_markdown_renders_lists_tables_and_code(page: Page, served: Served) -> None:
    open_chat(page, served)
    answer = send(page, "How do I stream?", model="markdown")
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    body = answer.locator(".body")

    items = body.locator("ol > li")
    expect(items).to_have_count(2)
    expect(items.first.locator("strong")).to_have_text("OpenAI dialect")
    expect(items.first.locator("code")).to_have_text(["POST /v1/chat/completions", "stream: true"])
    expect(items.nth(1).locator("em")).to_have_text("token by token")

    table = body.locator("table")
    expect(table.locator("thead th")).to_have_text(["Dialect", "Stream ends with", "Error shape"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text("OpenAI")
    # Alignment becomes a class: an inline style attribute would break the page's CSP.
    expect(table.locator("th").first).to_have_class("align-left")

    code = body.locator(".code-block pre code")
    expect(code).to_have_count(1)
    expect(code).to_have_class("language-python")
    expect(code).to_contain_text('client = OpenAI(base_url="http://127.0.0.1:8080/v1"')
    expect(body.locator(".code-block .code-lang")).to_have_text("python")

    link = body.get_by_role("link", name="API reference")
    expect(link).to_have_attribute("href", "https://platform.openai.com/docs/api-reference/chat")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b.*\bnoreferrer\b"))
    # No Markdown syntax left over as text.
    assert "**" not in text_of(body) and "|:--" not in text_of(body)


def test_markdown_renders_while_the_answer_streams(page: Page, served: Served) -> None:
    open_chat(page, served)
    answer = send(page, "How do I stream?", model="markdown")
    # A list item already rendered while the cursor still blinks: not raw text until the end.
    page.wait_for_function(
        """() => {
          const last = [...document.querySelectorAll("li.msg.assistant")].pop();
          return last && last.classList.contains("streaming")
            && last.querySelector(".body ol > li strong") !== null;
        }"""
    )
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    expect(answer.locator(".body table")).to_have_count(1)


def test_hostile_output_never_runs_nor_escapes_sanitizing(
    page: Page, served: Served, watched: Watched
) -> None:
    open_chat(page, served)
    answer = send(page, "Try to break out", model="hostile")
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    page.wait_for_timeout(300)  # time for an onerror/onload/ontoggle to fire, if one existed

    assert page.evaluate("window.__pwned") is None
    assert watched.dialogs == []
    assert page.evaluate(DANGER_JS) == []

    body = answer.locator(".body")
    # Raw HTML the model wrote is shown as text, not parsed.
    expect(body).to_contain_text("""<img src=x onerror="window.__pwned='img'">""")
    expect(body).to_contain_text("<script>window.__pwned='script'</script>")
    expect(body).to_contain_text("""<svg onload="window.__pwned='svg'">""")
    # Every link left is an absolute web link that opens in a new tab without an opener.
    links = page.evaluate(
        """() => [...document.querySelectorAll("#log a")].map(
             (a) => [a.textContent, a.getAttribute("href"), a.target, a.rel])"""
    )
    assert links, "the safe link should survive"
    for text, href, target, rel in links:
        if href is None:
            continue  # neutralised: text only
        assert href.startswith("https://"), (text, href)
        assert target == "_blank" and "noopener" in rel.split(), (text, rel)
    hrefs = {text: href for text, href, _, _ in links}
    assert hrefs["safe link"] == "https://example.com/docs"
    # Images are links, never fetched (the page fixture fails on any request elsewhere).
    assert hrefs["[image: tracker]"] == "https://tracker.invalid/p.png"
    # The script-URL links kept their text and lost their target.
    for name in ("link", "case", "entity", "data"):
        assert hrefs.get(name) is None, name


def test_hostile_output_is_safe_after_a_reload_too(
    page: Page, served: Served, watched: Watched
) -> None:
    """The saved conversation is rendered again on reload, through the same sanitizer."""
    open_chat(page, served)
    answer = send(page, "Try to break out", model="hostile")
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    page.reload()
    expect(page.locator("li.msg.assistant .body")).to_contain_text("Hostile:")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert watched.dialogs == []
    assert page.evaluate(DANGER_JS) == []


def test_copy_button_copies_the_code_block(page: Page, served: Served) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    open_chat(page, served)
    answer = send(page, "Show me code", model="markdown")
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    button = answer.get_by_role("button", name="Copy code")
    expect(button).to_have_count(1)
    button.click()
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    code = text_of(answer.locator("pre code"))
    assert copied == code.rstrip("\n")
    assert copied.startswith("from openai import OpenAI\n\nclient = OpenAI(")
    assert copied.endswith('print(chunk.choices[0].delta.content or "", end="")')
    expect(button).to_have_text("Copy", timeout=5_000)  # back to its label


def test_each_answer_shows_its_timings_and_usage(page: Page, served: Served) -> None:
    open_chat(page, served)
    with page.expect_request("**/v1/chat/completions") as sent:
        answer = send(page, "How do I stream?", model="markdown")
    assert body_of(sent.value)["stream_options"] == {"include_usage": True}
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    meta = answer.locator(".meta")

    # The emulated model waits 150 ms before its first token, then 8 ms per token.
    ttft = text_of(meta.locator(".ttft"))
    match = re.fullmatch(r"first token (\d+) ms|first token (\d+\.\d\d) s", ttft)
    assert match, ttft
    ttft_ms = float(match[1]) if match[1] else float(match[2]) * 1000
    assert 140 <= ttft_ms < 5000, ttft

    tps = text_of(meta.locator(".tps"))
    match = re.fullmatch(r"(\d+\.\d) tokens/s", tps)
    assert match and 5 < float(match[1]) < 1000, tps

    usage = text_of(meta.locator(".usage"))
    match = re.fullmatch(r"(\d+) prompt \+ (\d+) completion tokens", usage)
    assert match and int(match[1]) > 0 and int(match[2]) > 200, usage
    expect(meta.locator(".finish")).to_have_text("finish: stop")

    # The gateway's Server-Timing header, read by the page (same origin: no CORS needed).
    server = text_of(meta.locator(".server-timing"))
    assert re.search(r"upstream \d+\.\d ms", server) and re.search(r"gateway \d+\.\d ms", server)


def fulfill_json(status: int, body: Mapping[str, object]) -> Callable[[Route], None]:
    """A route handler answering one JSON error, as a gateway or proxy would."""

    def handler(route: Route) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    return handler


def fulfill_stream(*events: Mapping[str, object], done: bool = False) -> Callable[[Route], None]:
    """A route handler answering a 200 SSE stream of EVENTS (then [DONE] if DONE)."""
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    if done:
        lines.append("data: [DONE]\n\n")

    def handler(route: Route) -> None:
        route.fulfill(status=200, content_type="text/event-stream", body="".join(lines))

    return handler


def token(text: str) -> Mapping[str, object]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


def test_errors_before_the_stream_read_well_in_both_dialects(page: Page, served: Served) -> None:
    """The page talks to the OpenAI dialect, but whatever sits in front of a model may answer
    in TGI's shape: both read as one line with the status and the type. (The gateway's own
    OpenAI errors are tested against the real thing in test_chat_ui.py; these shapes are
    served by the browser's request interception.)"""
    open_chat(page, served)
    page.route(
        "**/v1/chat/completions",
        fulfill_json(
            422,
            {
                "error": "Input validation error: `temperature` must be strictly positive",
                "error_type": "validation",
            },
        ),
    )
    answer = send(page, "Hi", model="demo")
    expect(answer).to_have_attribute("data-outcome", "failed")
    expect(answer.get_by_role("alert")).to_have_text(
        "Error: Input validation error: `temperature` must be strictly positive (422, validation)"
    )

    page.unroute("**/v1/chat/completions")
    page.route(
        "**/v1/chat/completions",
        fulfill_json(
            400,
            {
                "error": {
                    "message": "max_tokens must be at least 1",
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": "invalid_value",
                }
            },
        ),
    )
    answer = send(page, "Hi", model="demo")
    expect(answer.get_by_role("alert")).to_have_text(
        "Error: max_tokens must be at least 1 "
        "(400, invalid_request_error, invalid_value, param: max_tokens)"
    )
    # Neither failed question is part of the conversation; the last is offered again.
    expect(page.locator("li.msg.user.unanswered")).to_have_count(2)
    expect(page.locator("#prompt")).to_have_value("Hi")

    # TGI's overload answer, with the Retry-After the gateway sends along.
    page.unroute("**/v1/chat/completions")
    page.route(
        "**/v1/chat/completions",
        lambda route: route.fulfill(
            status=429,
            headers={"retry-after": "3"},
            content_type="application/json",
            body=json.dumps({"error": "Model is overloaded", "error_type": "overloaded"}),
        ),
    )
    answer = send(page, "Hi", model="demo")
    expect(answer.get_by_role("alert")).to_have_text(
        "Error: Model is overloaded (429, overloaded) Retry after 3 s."
    )


def test_the_gateways_own_validation_error_reads_well(page: Page, served: Served) -> None:
    open_chat(page, served)
    page.fill("#max-tokens", "0")
    answer = send(page, "Hi", model="demo")
    expect(answer).to_have_attribute("data-outcome", "failed")
    expect(answer.get_by_role("alert")).to_contain_text(
        re.compile(r"\(4\d\d, invalid_request_error")
    )


def test_errors_mid_stream_read_well_in_both_dialects(page: Page, served: Served) -> None:
    open_chat(page, served)
    tgi_error = {
        "error": "Request failed during generation: CUDA out of memory",
        "error_type": "generation",
    }
    page.route(
        "**/v1/chat/completions", fulfill_stream(token("Partial"), token(" answer"), tgi_error)
    )
    answer = send(page, "Hi", model="demo")
    expect(answer).to_have_attribute("data-outcome", "failed")
    expect(answer.locator(".body")).to_have_text("Partial answer\n")
    expect(answer.get_by_role("alert")).to_have_text(
        "Error: Request failed during generation: CUDA out of memory (generation)"
    )

    page.unroute("**/v1/chat/completions")
    openai_error = {
        "error": {
            "message": "The model stopped answering",
            "type": "server_error",
            "code": "timeout",
        }
    }
    page.route("**/v1/chat/completions", fulfill_stream(token("Half"), openai_error, done=True))
    answer = send(page, "Again", model="demo")
    expect(answer).to_have_attribute("data-outcome", "failed")
    expect(answer.get_by_role("alert")).to_have_text(
        "Error: The model stopped answering (server_error, timeout)"
    )


def test_the_conversation_survives_a_reload_until_cleared(page: Page, served: Served) -> None:
    open_chat(page, served)
    first = send(page, "One", model="demo")
    expect(first).to_have_attribute("data-outcome", "done")
    second = send(page, "Two", model="markdown")
    expect(second).to_have_attribute("data-outcome", "done", timeout=15_000)
    usage = text_of(second.locator(".meta .usage"))

    page.reload()
    messages = page.locator("#log li.msg")
    expect(messages).to_have_count(4)
    expect(page.locator("li.msg.user .body")).to_have_text(["One", "Two"])
    restored = page.locator("li.msg.assistant").last
    expect(restored).to_have_attribute("data-outcome", "done")
    expect(restored.locator("table")).to_have_count(1)  # rendered again, not raw text
    expect(restored.locator(".meta .usage")).to_have_text(usage)
    expect(restored.get_by_role("button", name="Copy code")).to_have_count(1)
    expect(page.locator("#model")).to_have_value("markdown")  # the chosen model is kept too

    with page.expect_request("**/v1/chat/completions") as sent:
        third = send(page, "Three", model="demo")
    roles = [m["role"] for m in body_of(sent.value)["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    expect(third).to_have_attribute("data-outcome", "done")

    page.get_by_role("button", name="Clear").click()
    expect(messages).to_have_count(0)
    page.reload()
    expect(page.locator("#model option").first).to_be_attached()
    expect(messages).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('llm-gateway.conversation')") is None


def test_a_reload_while_streaming_keeps_the_question_out_of_the_next_request(
    page: Page, served: Served
) -> None:
    open_chat(page, served)
    send(page, "Write a long essay", model="long")
    page.wait_for_selector("li.msg.assistant.streaming")
    page.reload()
    expect(page.locator("li.msg.user")).to_have_class("msg user unanswered")
    expect(page.locator("li.msg.assistant .meta .outcome")).to_have_text("interrupted by a reload")
    expect(page.locator("#model option").first).to_be_attached()
    with page.expect_request("**/v1/chat/completions") as sent:
        send(page, "Hello", model="demo")
    assert body_of(sent.value)["messages"] == [{"role": "user", "content": "Hello"}]
