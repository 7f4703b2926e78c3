"""Signing in to the portal at Keycloak (authorization code + PKCE) and out again (ending the Keycloak session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect


def test_alice_signs_in_and_sees_the_systems(browser_page: Page, sign_in: Callable[[Page, str], None],
                                             shot: Callable[[Page, str], Path]) -> None:
    sign_in(browser_page, "alice")
    expect(browser_page.locator("h1")).to_have_text("Systems")
    expect(browser_page.locator("#systems tr[data-system=cluster]")).to_contain_text("available")
    expect(browser_page.locator("#services")).to_contain_text("utilities")
    shot(browser_page, "systems")


def test_the_session_cookie_is_opaque_and_http_only(browser_page: Page, sign_in: Callable[[Page, str], None],
                                                    portal: str) -> None:
    sign_in(browser_page, "alice")
    cookies = [c for c in browser_page.context.cookies(portal) if c["name"] == "firecrest_portal"]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Lax"
    assert "." not in cookies[0]["value"] and len(cookies[0]["value"]) < 100  # an id, not a token (JWTs have dots)
    assert browser_page.evaluate("document.cookie") == ""  # scripts see no cookie at all


def test_signing_out_ends_the_keycloak_session(browser_page: Page, sign_in: Callable[[Page, str], None],
                                               portal: str, shot: Callable[[Page, str], Path]) -> None:
    page = browser_page
    sign_in(page, "alice")
    page.locator("#sign-out").click()
    expect(page.locator("h1")).to_have_text("Signed out")
    assert page.url.startswith(portal)
    shot(page, "signed-out")
    page.goto(f"{portal}/files")  # the portal sends the browser to Keycloak, which must ask for the password again
    expect(page.locator("#password")).to_be_visible()
    expect(page.locator("#current-user")).to_have_count(0)
    shot(page, "password-asked-again")


def test_a_forged_callback_is_refused(browser_page: Page, portal: str, shot: Callable[[Page, str], Path]) -> None:
    page = browser_page
    response = page.goto(f"{portal}/auth/callback?code=stolen&state=guessed")
    assert response is not None and response.status == 400
    expect(page.locator("h1")).to_have_text("Sign-in failed")
    expect(page.locator("main")).to_contain_text("state does not match")
    shot(page, "forged-callback")
