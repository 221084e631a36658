"""The chat page in a real browser: Debian's chromium driven by Playwright, against
``llm-gateway serve`` (a subprocess, as a user runs it) talking through boto3 to an emulator
with endpoints made for these tests (paced, faulty, markup-emitting).

Playwright's own browser download cannot work here, so the tests use ``/usr/bin/chromium`` and
install the Debian package when it is missing (``make test`` does that before pytest too). A
missing browser that cannot be installed fails the tests; they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, sync_playwright

from llm_gateway.emulator import Emulator, EndpointSpec
from llm_gateway.local import BackgroundServer, use_emulator
from tests.processes import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "ui-test-key"
MARKUP_ANSWER = (
    "Here: <script>alert(1)</script> and <img src=x onerror=alert(2)> done.\n"
    "```html\n<b>bold</b><script>alert(3)</script>\n```"
)
DEMO_ANSWER = (
    "Here is how to stream an answer with the openai SDK:\n"
    "```python\n"
    "from openai import OpenAI\n\n"
    'client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="key")\n'
    "for chunk in client.chat.completions.create(\n"
    '    model="demo", stream=True,\n'
    '    messages=[{"role": "user", "content": "Hi"}],\n'
    "):\n"
    '    print(chunk.choices[0].delta.content or "", end="")\n'
    "```\n"
    "Each chunk carries one token, so the answer appears as the model writes it."
)

# Emulated endpoints; each model below uses one (chatml: any template works with the emulator).
ENDPOINTS: dict[str, dict[str, Any]] = {
    "ui-demo": {"output_text": DEMO_ANSWER},
    "ui-paced": {"pacing": {"first_token_ms": 100, "token_ms": 40}, "output_tokens": 40},
    "ui-long": {"pacing": {"first_token_ms": 50, "token_ms": 40}, "output_tokens": 400},
    "ui-markup": {"output_text": MARKUP_ANSWER},
    "ui-midstream": {
        "pacing": {"token_ms": 30},
        "faults": [{"kind": "model_stream_error", "at_token": 3}],
    },
    "ui-down": {"faults": [{"kind": "internal_failure"}]},
}
MODELS = ["demo", "paced", "long", "markup", "midstream", "down"]


def ensure_chromium() -> str:
    """``/usr/bin/chromium``, installing Debian's package first when it is missing."""
    if shutil.which("chromium") and os.path.exists(CHROMIUM):
        return CHROMIUM
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:  # a fresh machine's package lists may be empty or stale
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Debian's chromium is needed for the browser tests and could not be installed "
            f"(`apt-get install -y chromium`, as root):\n{result.stdout[-1500:]}"
            f"{result.stderr[-1500:]}",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def ui_emulator() -> Iterator[str]:
    """An emulator of its own (the shared one's endpoints are not paced); URL only, so the
    process-wide AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME of the other tests stays untouched."""
    emu = Emulator({name: EndpointSpec.model_validate(s) for name, s in ENDPOINTS.items()})
    server = BackgroundServer(emu.app()).start()
    yield server.url
    server.stop()


@dataclass
class Served:
    url: str
    banner: str


@pytest.fixture(scope="session")
def served(ui_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``llm-gateway serve`` with API keys on and GATEWAY_UI unset: the page must be there by
    default, reachable without a key."""
    tmp = tmp_path_factory.mktemp("ui-gateway")
    config = tmp / "models.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "default_model": "demo",
                "models": [
                    {"name": name, "endpoint": f"ui-{name}", "template": "chatml"}
                    for name in MODELS
                ],
            }
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "AWS_ENDPOINT_URL", "AWS_PROFILE"))
    }
    use_emulator(ui_emulator, env)
    env["GATEWAY_API_KEYS"] = API_KEY
    env["GATEWAY_UPSTREAM_MAX_ATTEMPTS"] = "1"  # a failing endpoint fails at once
    log = tmp / "serve.log"
    args = ("--config", str(config), "--no-metrics", "--log-level", "warning")
    with serving(*args, env=env, log=log) as url:
        yield Served(url, log.read_text())


# Module scope, not session: while Playwright's sync API is active it keeps an asyncio loop
# running in the main thread, and the rest of the suite (Mangum, asyncio.run) needs it gone.
@pytest.fixture(scope="module")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    executable = ensure_chromium()
    browser = playwright_session.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Watched:
    """What a page did that a test should know about: dialogs (alert/confirm/prompt),
    uncaught script errors, and console messages (CSP violations are reported there)."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(browser: Browser, watched: Watched) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage) per test. After the test: no script
    error and no Content-Security-Policy violation happened."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        watched.console.append(f"{message.type}: {message.text}")

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("console", on_console)
    yield page
    context.close()
    assert watched.errors == [], "the page threw"
    csp = [m for m in watched.console if "Content Security Policy" in m or "Refused to" in m]
    assert csp == [], "the page broke its own Content-Security-Policy"


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        yield client
