"""The chat page while a model scales up from zero (issue #22 item 10), in chromium against
``llm-gateway serve`` and the emulator's inference components at zero copies (see conftest):
the gateway holds the stream with ``: waiting for the model to scale up``, and the page says
the model is starting, how long it has waited and what to expect, until the first token."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from .conftest import Served, open_chat, send, text_of
from .test_chat_ui import update_screenshots

WAITED = re.compile(r"^Waited \d+ s\.$")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "chat-waking.png"
SCREENSHOT_CLIP = {"x": 0, "y": 0, "width": 1100, "height": 400}
RETRY_SECONDS = 0.5  # the sleepy models' wake.retry_seconds (conftest)


def wake_stats(emulator: str, endpoint: str) -> dict[str, Any]:
    """The emulated component's copy count and no-capacity failures so far."""
    stats = httpx.get(f"{emulator}/_emulator/endpoints/{endpoint}/stats").json()
    wake: dict[str, Any] = stats["scale_to_zero"]
    return wake


def test_a_waking_model_shows_that_it_is_starting_then_answers(
    page: Page, served: Served, ui_emulator: str
) -> None:
    assert wake_stats(ui_emulator, "ui-sleepy")["state"] == "asleep"
    open_chat(page, served)
    answer = send(page, "Are you there?", model="sleepy")

    notice = answer.locator(".waking")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("role", "status")
    expect(notice.locator(".waking-title")).to_contain_text("Starting the model")
    expect(notice.locator(".waking-help")).to_contain_text("On AWS this takes minutes")
    expect(notice.locator(".waking-help")).to_contain_text("Stop cancels the wait")
    expect(page.locator("#status")).to_have_text("sleepy is starting (it had scaled to zero)…")
    # The time waited ticks while nothing else arrives.
    elapsed = notice.locator(".waking-elapsed")
    expect(elapsed).to_have_text(WAITED)
    first = text_of(elapsed)
    expect(elapsed).not_to_have_text(first)
    expect(elapsed).to_have_text(WAITED)
    expect(answer).to_have_class("msg assistant streaming waking-up")
    expect(page.locator("#stop-button")).to_be_enabled()
    if update_screenshots():
        page.locator("#prompt").blur()
        page.screenshot(path=SCREENSHOT, animations="disabled", clip=SCREENSHOT_CLIP)

    # The model wakes (4 s after the first call): the notice goes, the answer streams.
    expect(answer).to_have_attribute("data-outcome", "done", timeout=20_000)
    expect(answer.locator(".body")).to_have_text("Awake now, and answering.")
    expect(answer.locator(".waking")).to_have_count(0)
    wake = text_of(answer.locator(".meta .wake"))
    assert wake.startswith("model started after "), wake
    expect(page.locator("#status")).to_have_text("Ready.")
    # It was the real thing: the gateway met the no-capacity error, and the call woke it.
    woke = wake_stats(ui_emulator, "ui-sleepy")
    assert woke["state"] == "awake" and woke["wakes"] == 1, woke
    assert woke["no_capacity_failures"] >= 1

    page.reload()  # the record of the wait is kept with the answer
    expect(page.locator("li.msg.assistant .meta .wake")).to_have_text(wake)


def test_stop_cancels_the_wait_for_a_starting_model(
    page: Page, served: Served, ui_emulator: str
) -> None:
    open_chat(page, served)
    answer = send(page, "Wake up, please", model="sleepy-stop")
    expect(answer.locator(".waking .waking-elapsed")).to_have_text(WAITED)

    # The gateway is retrying meanwhile (the first failed call started the wake).
    assert eventually(
        lambda: wake_stats(ui_emulator, "ui-sleepy-stop")["no_capacity_failures"] >= 2
    )

    page.click("#stop-button")
    expect(answer).to_have_attribute("data-outcome", "stopped")
    expect(answer.locator(".waking")).to_have_count(0)
    wake = text_of(answer.locator(".meta .wake"))
    assert wake.startswith("waited ") and wake.endswith(" for the model to start"), wake
    expect(page.locator("#status")).to_have_text("Stopped.")
    # Nothing was answered: the question goes back into the message box, ready to resend.
    expect(page.locator("li.msg.user").last).to_have_class("msg user unanswered")
    expect(page.locator("#prompt")).to_have_value("Wake up, please")
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#stop-button")).to_be_disabled()
    # And the gateway stops waiting too: its retries (every 0.5 s while the stream was held)
    # come to an end instead of going on for the model's 600 s wake.wait_seconds.
    assert retries_stop(ui_emulator, "ui-sleepy-stop")


def eventually(check: Callable[[], bool], deadline: float = 20.0) -> bool:
    give_up = time.monotonic() + deadline
    while not check():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.1)
    return True


def retries_stop(emulator: str, endpoint: str, deadline: float = 20.0) -> bool:
    """True once the no-capacity failures stay the same over four retry periods."""
    give_up = time.monotonic() + deadline
    seen = wake_stats(emulator, endpoint)["no_capacity_failures"]
    while time.monotonic() < give_up:
        time.sleep(4 * RETRY_SECONDS)
        now = wake_stats(emulator, endpoint)["no_capacity_failures"]
        if now == seen:
            return True
        seen = now
    return False
