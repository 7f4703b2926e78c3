"""The portal refreshes the session's access token with the refresh token before a call would use an expiring one.

The test ages the stored session (the portal's state directory, which root reads like the portal's own account)
instead of waiting out the token's five minutes."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable
from typing import Any

from cachelib.file import FileSystemCache
from playwright.sync_api import Page, expect

ACCOUNT = "firecrest-portal"


def store(site: Any) -> FileSystemCache:
    """The portal's session store; threshold 0: this process keeps no count file (root's would lock the portal out)."""
    return FileSystemCache(str(site.dir / "portal" / "sessions"), threshold=0, mode=0o600)


def session_id(page: Page, portal: str) -> str:
    return next(c["value"] for c in page.context.cookies(portal) if c["name"] == "firecrest_portal")


def test_an_expiring_access_token_is_refreshed(browser_page: Page, sign_in: Callable[[Page, str], None],
                                                portal: str, site: Any) -> None:
    page = browser_page
    sign_in(page, "alice")
    cache, key = store(site), f"portal:{session_id(page, portal)}"
    before = cache.get(key)
    assert before and before["tokens"]["refresh_token"]
    cache.set(key, {**before, "tokens": {**before["tokens"], "expires_at": time.time() - 1}}, timeout=3600)
    entry = pwd.getpwnam(ACCOUNT)
    os.chown(cache._get_filename(key), entry.pw_uid, entry.pw_gid)  # written by root, read by the portal

    page.goto(f"{portal}/files")
    expect(page.locator("#listing")).to_be_visible()
    expect(page.locator("#api-error")).to_have_count(0)
    after = cache.get(key)["tokens"]
    assert after["access_token"] != before["tokens"]["access_token"]
    assert after["expires_at"] > time.time() + 60  # a fresh token (Keycloak's live 5 minutes)
