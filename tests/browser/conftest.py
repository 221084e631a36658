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
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

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
# Markdown as models write it: a list, a table, a fenced code block, inline code, a link.
MARKDOWN_ANSWER = """Two ways to stream from the gateway:

1. **OpenAI dialect**: `POST /v1/chat/completions` with `stream: true`.
2. **TGI dialect**: `POST /generate_stream`, *token by token*.

| Dialect | Stream ends with | Error shape |
|:--|:--|:--|
| OpenAI | `data: [DONE]` | `{"error": {"message"}}` |
| TGI | `generated_text` | `{"error", "error_type"}` |

```python
from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="key")
stream = client.chat.completions.create(model="demo", messages=msgs, stream=True)
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="")
```

More in the [API reference](https://platform.openai.com/docs/api-reference/chat)."""
# Model output that tries to run script or escape the page's sanitizing in every usual way;
# each attempt would set window.__pwned (or open a dialog) if it ever ran.
HOSTILE_ANSWER = """Hostile: <img src=x onerror="window.__pwned='img'"> and \
<script>window.__pwned='script'</script>

<iframe src="javascript:window.__pwned='iframe'"></iframe>

<svg onload="window.__pwned='svg'"><circle r="9"></circle></svg>

<a href="javascript:window.__pwned='raw-a'">raw link</a> \
<details open ontoggle="alert('details')">x</details>

[link](javascript:window.__pwned='md-link') [case](JaVaScRiPt:alert('case')) \
[entity](&#106;avascript:alert('entity')) [data](data:text/html,<script>alert(1)</script>) \
<javascript:alert('autolink')>

![pic](x" onerror="window.__pwned='alt') ![tracker](https://tracker.invalid/p.png)

[safe link](https://example.com/docs)"""

# Emulated endpoints; each model below uses one (chatml: any template works with the emulator).
ENDPOINTS: dict[str, dict[str, Any]] = {
    "ui-demo": {"output_text": DEMO_ANSWER},
    "ui-markdown": {
        "pacing": {"first_token_ms": 150, "token_ms": 8},
        "output_text": MARKDOWN_ANSWER,
    },
    # (first_token_ms too: with token_ms alone the emulator sends the first token last.)
    "ui-hostile": {"pacing": {"first_token_ms": 20, "token_ms": 2}, "output_text": HOSTILE_ANSWER},
    "ui-paced": {"pacing": {"first_token_ms": 100, "token_ms": 40}, "output_tokens": 40},
    "ui-long": {"pacing": {"first_token_ms": 50, "token_ms": 40}, "output_tokens": 400},
    "ui-markup": {"output_text": MARKUP_ANSWER},
    "ui-midstream": {
        "pacing": {"token_ms": 30},
        "faults": [{"kind": "model_stream_error", "at_token": 3}],
    },
    "ui-down": {"faults": [{"kind": "internal_failure"}]},
    # Inference components at zero copies: the first call wakes them (test_chat_wake.py).
    "ui-sleepy": {
        "inference_component": "sleepy-1",
        "scale_to_zero": {"wake_seconds": 4, "idle_seconds": 3600},
        "output_text": "Awake now, and answering.",
    },
    "ui-sleepy-stop": {
        "inference_component": "sleepy-stop-1",
        "scale_to_zero": {"wake_seconds": 3600, "idle_seconds": 3600},
    },
}
MODELS = [
    "demo",
    "markdown",
    "hostile",
    "paced",
    "long",
    "markup",
    "midstream",
    "down",
    "sleepy",
    "sleepy-stop",
]
# What the models file says beyond name, endpoint and template.
MODEL_EXTRAS: dict[str, dict[str, Any]] = {
    "sleepy": {
        "inference_component": "sleepy-1",
        "wake": {"wait_seconds": 60, "retry_seconds": 0.5},
    },
    "sleepy-stop": {
        "inference_component": "sleepy-stop-1",
        "wake": {"wait_seconds": 600, "retry_seconds": 0.5},
    },
}


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
                    {
                        "name": name,
                        "endpoint": f"ui-{name}",
                        "template": "chatml",
                        **MODEL_EXTRAS.get(name, {}),
                    }
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
    uncaught script errors, console messages (CSP violations are reported there) and the URLs
    it requested."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(browser: Browser, watched: Watched) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage) per test. After the test: no script
    error, no Content-Security-Policy violation and no request to anywhere but the gateway
    (the page works offline: its libraries are vendored, model output cannot load images)."""
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
    page.on("request", lambda request: watched.requests.append(request.url))
    yield page
    context.close()
    assert watched.errors == [], "the page threw"
    elsewhere = [u for u in watched.requests if not u.startswith(("http://127.0.0.1:", "data:"))]
    assert elsewhere == [], "the page requested something from another origin"
    csp = [m for m in watched.console if "Content Security Policy" in m or "Refused to" in m]
    assert csp == [], "the page broke its own Content-Security-Policy"


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        yield client


# The last answer's text, but only while it is still streaming (read in one go in the page,
# so "partial" and "still streaming" are observed at the same instant).
PARTIAL_ANSWER_JS = """(minLength) => {
  const answers = document.querySelectorAll("li.msg.assistant");
  const last = answers[answers.length - 1];
  if (!last || !last.classList.contains("streaming")) return null;
  const text = last.querySelector(".body").textContent.trim();
  return text.length >= minLength ? text : null;
}"""


def open_chat(page: Page, served: Served, *, key: str | None = API_KEY) -> None:
    """Load the page and, like a user, type the API key; wait for the model list."""
    page.goto(f"{served.url}/ui/")
    if key is not None:
        page.fill("#api-key", key)
        page.press("#api-key", "Tab")  # "change" fires when the field loses focus
        expect(page.locator("#model option")).to_have_count(len(MODELS))


def send(page: Page, text: str, model: str | None = None) -> Locator:
    """Choose a model, type a message and press Enter; the new answer's list item."""
    if model is not None:
        page.select_option("#model", model)
    answers = page.locator("li.msg.assistant")
    before = answers.count()
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    expect(answers).to_have_count(before + 1)
    return answers.last


def partial_answer(page: Page, min_length: int = 1) -> str:
    return page.wait_for_function(PARTIAL_ANSWER_JS, arg=min_length).json_value()


def text_of(locator: Locator) -> str:
    """A locator's text content ("" for none), typed as ``str``."""
    return locator.text_content() or ""


def body_of(request: Request) -> dict[str, Any]:
    """A request's JSON body, which these tests always send."""
    body = request.post_data_json
    assert isinstance(body, dict)
    return body
