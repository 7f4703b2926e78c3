"""Playwright fixtures for the web portal: Debian's Chromium (never a downloaded browser), a fresh browser context
per test, the Keycloak sign-in as a user would do it, and screenshots kept as test artifacts."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from common.stack_env import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / ".artifacts" / "screenshots"
SIGN_IN_LOCK = REPO / ".artifacts" / "sign-in.lock"
TIMEOUT_MS = 60_000  # a page waits on the API's answer (a utilities command, a job submission)


@pytest.fixture(scope="session")
def portal(site: Any) -> str:
    """The portal's base URL (native site only: the compose site has no portal)."""
    if site.compose:
        pytest.skip("the portal runs on the native site")
    url = site.env.get("FIRECREST_PORTAL_URL", "http://127.0.0.1:5107").rstrip("/")
    r = requests.get(f"{url}/systems", allow_redirects=False, timeout=10)
    assert r.status_code == 302, f"the portal at {url} does not answer as expected: {r.status_code}"
    return url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: deploy/local/install installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in fresh contexts (own cookies: one per user of a test), closed at the end of the test."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


@pytest.fixture
def browser_page(new_page: Callable[[], Page]) -> Page:
    return new_page()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """shot(page, step) saves .artifacts/screenshots/<test>-<step>.png (full page)."""
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(page: Page, step: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def password(site: Any, user: str) -> str:
    return str(site.secret(f"keycloak-user-{user}"))


@pytest.fixture
def sign_in(site: Any, portal: str) -> Callable[[Page, str], None]:
    """sign_in(page, user): open the portal, sign in at Keycloak's form, accept the consent page when it shows,
    and land back on the portal signed in as `user`."""

    def run(page: Page, user: str) -> None:
        # One sign-in at a time across test processes: Keycloak 26 stores a user's first consent to a client
        # without a uniqueness check, and two at once leave two rows that fail every later token request (500).
        SIGN_IN_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(SIGN_IN_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            page.goto(f"{portal}/systems")
            page.locator("#username").fill(user)
            page.locator("#password").fill(password(site, user))
            page.locator("#kc-login").click()
            consent = page.locator("[name=accept]")
            signed_in = page.locator("#current-user")
            expect(consent.or_(signed_in).first).to_be_visible()
            if consent.count() and consent.first.is_visible():
                consent.first.click()
            expect(page.locator("#current-user")).to_have_text(user)
        assert page.url.startswith(portal)

    return run
