"""The chat page signs in (issue #20 item 5), in chromium against ``llm-gateway serve --sign-in``
(its OpenID Connect test provider, oidc-provider-mock) and the emulator: the provider's own
sign-in page, the authorization code flow with PKCE, chatting with the user's token (verified by
the gateway), who is signed in and the budget left, renewal or a new sign-in when the token
runs out, and signing out. The API-key field keeps working for partners."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from playwright.sync_api import Browser, Page, Route, expect

from tests.processes import serving

from .conftest import API_KEY, body_of, send, text_of
from .test_chat_ui import update_screenshots

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "chat-sign-in.png"
MODELS = ["demo", "paced"]
DAILY_TOKENS = 50_000


@dataclass
class SignInServed:
    url: str
    issuer: str
    client_id: str


@pytest.fixture(scope="module")
def sign_in_served(
    ui_emulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SignInServed]:
    """``llm-gateway serve --sign-in`` with a partner key and a daily budget per user (in the
    embedded DynamoDB-compatible store the command starts)."""
    from llm_gateway.local import use_emulator

    tmp = tmp_path_factory.mktemp("sign-in-gateway")
    config = tmp / "models.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "default_model": "demo",
                "models": [
                    {"name": name, "endpoint": f"ui-{name}", "template": "chatml"}
                    for name in MODELS
                ],
                "budgets": {"user_default": {"tokens_per_day": DAILY_TOKENS}},
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
    log = tmp / "serve.log"
    args = ("--config", str(config), "--sign-in", "--no-metrics", "--log-level", "warning")
    with serving(*args, env=env, log=log, timeout=60) as url:
        banner = log.read_text()
        found = re.search(r"auth\.jwt: issuer (http://\S+), audience and client_id (\S+)", banner)
        assert found, banner
        yield SignInServed(url, found[1], found[2])


@pytest.fixture
def page(browser: Browser, sign_in_served: SignInServed) -> Iterator[Page]:
    """A fresh context per test. The chat page must throw nothing, break none of its CSP and
    ask nothing of any origin but the gateway's and the issuer's. (The test provider's own
    pages link a style sheet on a CDN: those requests are refused here, and not the chat
    page's doing.)"""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(15_000)
    loopback = re.compile(r"^(http://127\.0\.0\.1:\d+/|data:)")
    context.route(lambda url: not loopback.match(url), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    console: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    def on_request(request: object) -> None:
        url, frame_url = request.url, request.frame.url  # type: ignore[attr-defined]
        if frame_url.startswith(sign_in_served.url) and not loopback.match(url):
            elsewhere.append(url)

    page.on("request", on_request)
    yield page
    context.close()
    assert errors == [], "the page threw"
    assert elsewhere == [], "the chat page requested something from another origin"
    csp = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert csp == [], "the page broke its own Content-Security-Policy"


def stored_user(page: Page) -> dict[str, object] | None:
    """What oidc-client-ts keeps for the signed-in user in sessionStorage."""
    raw = page.evaluate(
        """() => Object.keys(sessionStorage).filter((k) => k.startsWith("oidc.user:"))
              .map((k) => sessionStorage.getItem(k))"""
    )
    assert len(raw) <= 1
    return json.loads(raw[0]) if raw else None


def sign_in_as(page: Page, served: SignInServed, user: str) -> None:
    """Press Sign in, answer the provider's page as ``user``, land back on the chat page."""
    page.click("#sign-in")
    page.wait_for_url(f"{served.issuer}/oauth2/authorize?*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["client_id"] == [served.client_id]
    assert query["redirect_uri"] == [f"{served.url}/ui/"]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]  # PKCE
    assert len(query["code_challenge"][0]) == 43
    page.get_by_role("button", name=user, exact=True).click()
    page.wait_for_url(f"{served.url}/ui/")  # the code and state are gone from the address


def expired_copy(token: str) -> str:
    """``token`` with an ``exp`` in the past (the page reads it; it never sends it)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = claims["iat"] - 60
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_sign_in_chat_with_the_users_token_and_sign_out(
    page: Page, sign_in_served: SignInServed
) -> None:
    served = sign_in_served
    page.goto(f"{served.url}/ui/")
    # auth.jwt is on: nothing is anonymous, and the page says how to get in.
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-in")).to_have_text("Sign in")
    expect(page.locator("#sign-out")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(
        "Sign in or enter an API key to load the models"
    )

    sign_in_as(page, served, "alice")
    expect(page.locator("#who")).to_have_text("Signed in as Alice Example")
    expect(page.locator("#sign-out")).to_be_visible()
    expect(page.locator("#sign-in")).to_be_hidden()
    expect(page.locator("#model option")).to_have_count(len(MODELS))
    expect(page.locator("#api-key-signed-in")).to_be_visible()
    user = stored_user(page)
    assert user is not None and isinstance(user["id_token"], str)
    # Tokens live in this tab's sessionStorage only.
    assert page.evaluate("Object.keys(localStorage)") == []

    # The provider's access tokens are opaque, so the page sends the ID token, which the
    # gateway verifies; the answer's budget headers show what is left of alice's day.
    with page.expect_request("**/v1/chat/completions") as sent:
        answer = send(page, "Hello from Alice", model="demo")
    assert sent.value.headers["authorization"] == f"Bearer {user['id_token']}"
    assert "x-api-key" not in sent.value.headers
    assert body_of(sent.value)["messages"] == [{"role": "user", "content": "Hello from Alice"}]
    expect(answer).to_have_attribute("data-outcome", "done")
    expect(answer.locator(".body")).not_to_be_empty()
    budget = page.locator("#budget")
    expect(budget).to_be_visible()
    expect(budget).to_have_text(re.compile(r"^Budget left: [\d,]+ of 50,000 tokens$"))
    left = int(text_of(budget).split()[2].replace(",", ""))
    assert 0 < left < DAILY_TOKENS

    if update_screenshots():
        page.set_viewport_size({"width": 1100, "height": 600})
        page.locator("#prompt").blur()
        SCREENSHOT.write_bytes(page.screenshot(animations="disabled"))

    page.reload()  # same tab: still signed in
    expect(page.locator("#who")).to_have_text("Signed in as Alice Example")
    expect(page.locator("#model option")).to_have_count(len(MODELS))

    # Signing out goes through the provider's end-session page and comes back here.
    page.click("#sign-out")
    page.wait_for_url(f"{served.issuer}/oauth2/end_session?*")
    assert parse_qs(urlsplit(page.url).query)["id_token_hint"] == [user["id_token"]]
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{served.url}/ui/")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#who")).to_have_text("")
    expect(page.locator("#status")).to_contain_text("Sign in or enter an API key")
    assert stored_user(page) is None

    # The API-key field is still there for partners.
    page.fill("#api-key", API_KEY)
    page.press("#api-key", "Tab")
    expect(page.locator("#model option")).to_have_count(len(MODELS))
    with page.expect_request("**/v1/chat/completions") as sent:
        answer = send(page, "Hello with a key", model="demo")
    assert sent.value.headers["authorization"] == f"Bearer {API_KEY}"
    expect(answer).to_have_attribute("data-outcome", "done")


def test_an_expired_token_is_renewed_or_the_user_asked_to_sign_in_again(
    page: Page, sign_in_served: SignInServed
) -> None:
    """The page renews a token about to expire with the refresh token. The test provider's
    refresh answers carry no new ID token (the one the gateway is sent), so the page forgets
    the expired one and asks the user to sign in again, instead of sending it."""
    served = sign_in_served
    page.goto(f"{served.url}/ui/")
    sign_in_as(page, served, "bob")
    expect(page.locator("#who")).to_have_text("Signed in as Bob Example")
    expect(page.locator("#model option")).to_have_count(len(MODELS))

    # Age bob's ID token past its expiry, where oidc-client-ts keeps it.
    key = page.evaluate(
        """() => Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"))"""
    )
    user = stored_user(page)
    assert user is not None and user.get("refresh_token")
    user["id_token"] = expired_copy(str(user["id_token"]))
    page.evaluate("([k, v]) => sessionStorage.setItem(k, v)", [key, json.dumps(user)])

    refreshes: list[str] = []

    def watch_token_calls(route: Route) -> None:
        if "grant_type=refresh_token" in (route.request.post_data or ""):
            refreshes.append(route.request.url)
        route.continue_()

    page.route(f"{served.issuer}/oauth2/token", watch_token_calls)
    chats: list[str | None] = []
    page.on(
        "request",
        lambda r: chats.append(r.headers.get("authorization")) if "/v1/" in r.url else None,
    )
    page.fill("#prompt", "Still there?")
    page.press("#prompt", "Enter")

    expect(page.locator("#who")).to_have_text("Your sign-in has expired.")
    expect(page.locator("#sign-in")).to_have_text("Sign in again")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-out")).to_be_hidden()
    assert refreshes == [f"{served.issuer}/oauth2/token"]  # renewal was tried, once
    # The expired token was never sent: the request went without credentials and was refused.
    answer = page.locator("li.msg.assistant").last
    expect(answer).to_have_attribute("data-outcome", "failed")
    expect(answer.locator(".error-text")).to_contain_text("401")
    assert chats and all(header is None for header in chats)
    assert stored_user(page) is None

    sign_in_as(page, served, "bob")  # asked again, signed in again
    expect(page.locator("#who")).to_have_text("Signed in as Bob Example")
    answer = send(page, "Back again", model="demo")
    expect(answer).to_have_attribute("data-outcome", "done")


def jwt_shaped(claims: dict[str, object], header: dict[str, object] | None = None) -> str:
    """Three base64url parts, as a JWT looks to the page (which never checks signatures)."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header or {'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_access_token_is_sent_when_it_is_a_jwt_else_the_id_token(
    page: Page, sign_in_served: SignInServed
) -> None:
    """SPEC 5.3: Cognito's access tokens are JWTs (sent); oidc-provider-mock's and Google's
    are opaque (the ID token is sent instead); something merely dotted is no JWT."""
    page.goto(f"{sign_in_served.url}/ui/")
    expect(page.locator("#sign-in")).to_be_visible()
    access = jwt_shaped({"exp": 4_000_000_000, "client_id": "c", "token_use": "access"})
    id_token = jwt_shaped({"exp": 4_000_000_000, "aud": "c"})
    cases = [
        ({"access_token": access, "id_token": id_token}, access),
        ({"access_token": "x0YbsrxVuuXOARg2uST6", "id_token": id_token}, id_token),
        ({"access_token": "x.y.", "id_token": id_token}, id_token),
        (
            {"access_token": jwt_shaped({"exp": 1}, header={"typ": "JWT"}), "id_token": id_token},
            id_token,
        ),
        ({"access_token": "opaque", "id_token": "also.opaque"}, None),
    ]
    for user, expected in cases:
        assert page.evaluate("(u) => window.gatewaySignIn.tokenToSend(u)", user) == expected, user
