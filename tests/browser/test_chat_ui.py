"""The chat page in chromium, against ``llm-gateway serve`` and the emulator (see conftest)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import Browser, FloatRect, Page, expect
from playwright.sync_api import Error as PlaywrightError

from .conftest import (
    API_KEY,
    MODELS,
    Served,
    Watched,
    body_of,
    open_chat,
    partial_answer,
    send,
    text_of,
)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "chat-ui.png"


def test_page_lists_models_after_the_key_is_entered_and_keeps_it_for_the_tab(
    page: Page, served: Served
) -> None:
    open_chat(page, served, key=None)
    # The gateway wants a key: the page loads anyway and says what is missing.
    expect(page.locator("#status")).to_contain_text("Enter an API key")
    expect(page.locator("#status")).to_have_class("status error")
    expect(page.locator("#model option")).to_have_count(0)

    page.fill("#api-key", API_KEY)
    page.press("#api-key", "Tab")
    options = page.locator("#model option")
    expect(options).to_have_count(len(MODELS))
    assert options.all_text_contents() == MODELS
    expect(page.locator("#status")).to_have_text("Ready.")
    assert page.evaluate("sessionStorage.getItem('llm-gateway.api-key')") == API_KEY

    page.reload()  # same tab: the key is still there and the models load at once
    expect(page.locator("#api-key")).to_have_value(API_KEY)
    expect(page.locator("#model option")).to_have_count(len(MODELS))


def test_controls_start_at_the_seed_defaults_and_are_sent(page: Page, served: Served) -> None:
    open_chat(page, served)
    for field, value in [
        ("#max-tokens", "256"),
        ("#temperature", "0.7"),
        ("#top-p", "0.7"),
        ("#top-k", "50"),
        ("#repetition-penalty", "1.03"),
        ("#stop-sequences", "<|endoftext|>"),
    ]:
        expect(page.locator(field)).to_have_value(value)

    with page.expect_request("**/v1/chat/completions") as sent:
        answer = send(page, "Hello", model="demo")
    request = sent.value
    body = body_of(request)
    assert body["model"] == "demo"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Hello"}]
    assert {k: body[k] for k in ("max_tokens", "temperature", "top_p", "top_k")} == {
        "max_tokens": 256,
        "temperature": 0.7,
        "top_p": 0.7,
        "top_k": 50,
    }
    assert body["repetition_penalty"] == 1.03
    assert body["stop"] == ["<|endoftext|>"]
    headers = request.headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["x-api-key"] == API_KEY
    expect(answer).to_have_attribute("data-outcome", "done")


def test_tokens_appear_while_the_answer_streams(page: Page, served: Served) -> None:
    open_chat(page, served)
    page.select_option("#model", "paced")
    page.fill("#prompt", "Tell me")
    page.press("#prompt", "Shift+Enter")  # a new line, not a send
    page.type("#prompt", "about gateways")
    expect(page.locator("li.msg")).to_have_count(0)

    page.press("#prompt", "Enter")
    user = page.locator("li.msg.user").last
    expect(user.locator(".body")).to_have_text("Tell me\nabout gateways")
    expect(page.locator("#prompt")).to_have_value("")

    partial = partial_answer(page)  # seen while the answer is still coming
    answer = page.locator("li.msg.assistant").last
    expect(page.locator("#stop-button")).to_be_enabled()
    expect(page.locator("#send")).to_be_disabled()

    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    final = text_of(answer.locator(".body")).strip()
    assert final.startswith(partial) and len(final) > len(partial)
    # 40 tokens of text and the EOS token, as TGI counts them.
    expect(answer.locator(".meta .usage")).to_have_text(
        re.compile(r"^\d+ prompt \+ 41 completion tokens$")
    )
    expect(answer.locator(".meta .finish")).to_have_text("finish: stop")
    expect(page.locator("#stop-button")).to_be_disabled()
    expect(page.locator("#send")).to_be_enabled()


def test_stop_ends_a_paced_answer_midway(page: Page, served: Served) -> None:
    open_chat(page, served)
    answer = send(page, "Write a long essay", model="long")
    partial_answer(page, min_length=40)

    page.click("#stop-button")
    expect(answer).to_have_attribute("data-outcome", "stopped")
    stopped = text_of(answer.locator(".body"))
    page.wait_for_timeout(600)  # 15 more tokens would have arrived in this time
    assert text_of(answer.locator(".body")) == stopped
    expect(answer.locator(".meta .outcome")).to_have_text("stopped")
    expect(answer.locator(".meta .ttft")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Stopped.")
    expect(page.locator("#send")).to_be_enabled()

    # The conversation goes on, with the partial answer the user saw as context.
    with page.expect_request("**/v1/chat/completions") as sent:
        nxt = send(page, "Shorter, please", model="demo")
    messages = body_of(sent.value)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "Write a long essay"
    assert messages[1]["content"].strip() == stopped.strip()  # the Markdown source of what was seen
    assert messages[2]["content"] == "Shorter, please"
    expect(nxt).to_have_attribute("data-outcome", "done")


def test_a_model_failing_mid_stream_shows_its_error(page: Page, served: Served) -> None:
    open_chat(page, served)
    answer = send(page, "Hi", model="midstream")
    expect(answer).to_have_attribute("data-outcome", "failed")
    alert = answer.get_by_role("alert")
    expect(alert).to_contain_text("Error:")
    # The gateway's error event, as it sent it: message, then type and code.
    expect(alert).to_contain_text("stream timed out (ModelStreamError)")
    expect(alert).to_contain_text("(server_error, timeout)")
    assert text_of(answer.locator(".body")) != ""  # the tokens before the failure stay
    expect(page.locator("#status")).to_have_text("The request failed.")


def test_a_model_failing_before_the_stream_shows_the_status_and_offers_a_retry(
    page: Page, served: Served
) -> None:
    open_chat(page, served)
    answer = send(page, "Are you there?", model="down")
    expect(answer).to_have_attribute("data-outcome", "failed")
    alert = answer.get_by_role("alert")
    expect(alert).to_contain_text("Error:")
    expect(alert).to_contain_text("(50")  # a 5xx status from the gateway's JSON error
    expect(page.locator("li.msg.user").last).to_have_class("msg user unanswered")
    expect(page.locator("#prompt")).to_have_value("Are you there?")


def test_markup_in_model_output_is_shown_as_text_not_run(
    page: Page, served: Served, watched: Watched
) -> None:
    open_chat(page, served)
    answer = send(page, "Show me markup", model="markup")
    expect(answer).to_have_attribute("data-outcome", "done")
    body = answer.locator(".body")
    expect(body).to_contain_text("Here: <script>alert(1)</script> and <img src=x onerror=alert(2)>")
    expect(body.locator("pre code")).to_have_text("<b>bold</b><script>alert(3)</script>\n")
    expect(body.locator(".code-lang")).to_have_text("html")
    # Nothing the model wrote became an element, and nothing ran.
    assert page.locator("#log script, #log img, #log b").count() == 0
    page.wait_for_timeout(200)
    assert watched.dialogs == []


def test_clear_empties_the_conversation(page: Page, served: Served) -> None:
    open_chat(page, served)
    send(page, "One", model="demo")
    expect(page.locator("li.msg.assistant").last).to_have_attribute("data-outcome", "done")
    page.click("#clear")
    expect(page.locator("#log li")).to_have_count(0)
    with page.expect_request("**/v1/chat/completions") as sent:
        send(page, "Two")
    assert body_of(sent.value)["messages"] == [{"role": "user", "content": "Two"}]


def test_every_control_is_labelled(page: Page, served: Served) -> None:
    open_chat(page, served)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
                 .filter((el) => el.labels.length === 0).map((el) => el.id)"""
    )
    assert unlabelled == []
    for name in ("Send", "Stop", "Clear"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    expect(page.get_by_role("log", name="Conversation")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_attribute("type", "password")


def test_narrow_screen_fits_and_still_chats(page: Page, served: Served) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    open_chat(page, served, key=None)
    # Settings start folded on a phone, but a missing key unfolds them at the key field.
    expect(page.locator("#settings")).to_have_attribute("open", "")
    expect(page.locator("#api-key")).to_be_focused()
    page.keyboard.type(API_KEY)
    page.keyboard.press("Tab")
    expect(page.locator("#model option")).to_have_count(len(MODELS))

    page.reload()  # with the key already there, the settings stay folded for room
    expect(page.locator("#model option")).to_have_count(len(MODELS))
    expect(page.locator("#settings")).not_to_have_attribute("open", "")
    answer = send(page, "Hi from a phone")  # the default model: the first listed
    expect(answer).to_have_attribute("data-outcome", "done")
    for button in ("#send", "#stop-button", "#clear"):
        expect(page.locator(button)).to_be_in_viewport()
    # No sideways scrolling: long code lines scroll inside their own block.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_screenshot_of_a_conversation(page: Page, served: Served, browser: Browser) -> None:
    """docs/chat-ui.png, for the README: a finished Markdown answer (list, table, code block)
    with its timings and usage. Written only on request (``UPDATE_SCREENSHOTS=1``), and then
    only when the page looks different (the timings differ from run to run: their box is left
    out of the comparison), so a test run never changes the work tree."""
    page.set_viewport_size({"width": 1100, "height": 900})
    open_chat(page, served)
    answer = send(page, "How do I stream an answer from the gateway?", model="markdown")
    expect(answer).to_have_attribute("data-outcome", "done", timeout=15_000)
    expect(answer.locator("table")).to_be_visible()
    expect(answer.locator(".meta .tps")).to_be_visible()
    page.locator("#prompt").blur()
    shot = page.screenshot(animations="disabled")
    assert len(shot) > 10_000
    timings = [box for box in (m.bounding_box() for m in answer.locator(".meta").all()) if box]
    if not update_screenshots():
        return
    if not SCREENSHOT.exists() or not looks_the_same(
        browser, SCREENSHOT.read_bytes(), shot, ignore=timings
    ):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(shot)


def update_screenshots() -> bool:
    """Screenshots in docs/ are rewritten only when asked: ``UPDATE_SCREENSHOTS=1``."""
    return os.environ.get("UPDATE_SCREENSHOTS", "") in ("1", "true", "yes")


def looks_the_same(
    browser: Browser, old: bytes, new: bytes, ignore: Sequence[FloatRect] = ()
) -> bool:
    """Same size, and no pixel outside the IGNORE boxes differs by more than a few shades:
    chromium's software rasteriser anti-aliases rounded corners a shade differently from run
    to run."""
    page = browser.new_page()  # about:blank, outside the chat page's CSP
    try:
        return page.evaluate(
            """async ([a, b, ignore]) => {
              const pixels = async (b64) => {
                const image = new Image();
                image.src = "data:image/png;base64," + b64;
                await image.decode();
                const canvas = document.createElement("canvas");
                canvas.width = image.width;
                canvas.height = image.height;
                const context = canvas.getContext("2d");
                context.drawImage(image, 0, 0);
                return context.getImageData(0, 0, image.width, image.height);
              };
              const [x, y] = [await pixels(a), await pixels(b)];
              if (x.width !== y.width || x.height !== y.height) return false;
              const skip = (px, py) => ignore.some(
                (r) => px >= r.x && px < r.x + r.width && py >= r.y && py < r.y + r.height);
              for (let i = 0; i < x.data.length; i++) {
                if (Math.abs(x.data[i] - y.data[i]) <= 8) continue;
                const pixel = Math.floor(i / 4);
                if (!skip(pixel % x.width, Math.floor(pixel / x.width))) return false;
              }
              return true;
            }""",
            [base64.b64encode(old).decode(), base64.b64encode(new).decode(), list(ignore)],
        )
    except PlaywrightError:  # the old file is not a readable PNG: replace it
        return False
    finally:
        page.close()
