"""Consent at Keycloak: the portal is a third-party application, so alice grants it its scopes at sign-in, sees it
in Keycloak's account console, and can withdraw that consent there; the next sign-in asks for it again."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Page, expect

from common.stack_env import REPO

Shot = Callable[[Page, str], Path]
SIGN_IN_LOCK = REPO / ".artifacts" / "sign-in.lock"  # tests/browser/conftest.py's sign_in takes it too


def consents(site: Any, user: str) -> dict[str, list[str]]:
    """The user's consents as Keycloak's admin API has them: client id -> granted scopes."""
    base = site.env["KEYCLOAK_URL"]
    token = requests.post(f"{base}/realms/master/protocol/openid-connect/token", timeout=30,
                          data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                                "password": site.secret("keycloak-admin")}).json()["access_token"]
    admin = f"{base}/admin/realms/{site.env['KEYCLOAK_REALM']}"
    headers = {"Authorization": f"Bearer {token}"}
    [found] = requests.get(f"{admin}/users", params={"username": user, "exact": "true"}, headers=headers,
                           timeout=30).json()
    given = requests.get(f"{admin}/users/{found['id']}/consents", headers=headers, timeout=30).json()
    return {c["clientId"]: sorted(c["grantedClientScopes"]) for c in given}


def test_consent_is_asked_shown_and_withdrawn_at_keycloak(site, portal, new_page, sign_in, shot: Shot):
    page = new_page()
    sign_in(page, "alice")  # accepts the consent page if this is alice's first sign-in to the portal
    granted = consents(site, "alice")["firecrest-portal"]
    assert {"firecrest-read", "firecrest-files", "firecrest-jobs", "firecrest-transfers"} <= set(granted)

    # Another sign-in of alice's (another test process) would give the consent again: none until this ends.
    with open(SIGN_IN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        withdraw_and_sign_in_again(site, portal, page, new_page(), shot)


def withdraw_and_sign_in_again(site: Any, portal: str, page: Page, again: Page, shot: Shot) -> None:
    # The account console, in the same browser: Keycloak's session signs alice in there without her password.
    page.goto(f"{site.env['KEYCLOAK_URL']}/realms/{site.env['KEYCLOAK_REALM']}/account/applications")
    expect(page.locator("#toggle-firecrest-portal")).to_be_visible()
    page.locator("#toggle-firecrest-portal").click()
    details = page.locator("#content-firecrest-portal")
    expect(details).to_be_visible()
    shot(page, "account-console")
    details.get_by_role("button", name="Remove access").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.locator("#toggle-firecrest-portal")).to_have_count(0)
    assert "firecrest-portal" not in consents(site, "alice")

    # A new browser: signing in to the portal asks for the scopes again, by their descriptions.
    again.goto(f"{portal}/systems")
    again.locator("#username").fill("alice")
    again.locator("#password").fill(site.secret("keycloak-user-alice"))
    again.locator("#kc-login").click()
    expect(again.locator("[name=accept]")).to_be_visible()
    expect(again.locator("body")).to_contain_text("Submit and cancel batch jobs as you")
    shot(again, "consent-asked-again")
    again.locator("[name=accept]").click()
    expect(again.locator("#current-user")).to_have_text("alice")
    assert "firecrest-jobs" in consents(site, "alice")["firecrest-portal"]
