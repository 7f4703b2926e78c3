"""An application without the jobs scope: the same portal, registered as the client `firecrest-viewer` (scopes
firecrest-read and firecrest-files only), cannot submit or cancel a job; the page shows the API's 403 and why."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from common.stack_env import REPO

Shot = Callable[[Page, str], Path]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def viewer_portal(site: Any, portal: str, tmp_path: Path) -> Iterator[str]:
    """The portal's code run as the application firecrest-viewer, on a port of its own (the realm accepts any
    port of a loopback redirect URI), for this test only."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FIRECREST_URL": site.env["FIRECREST_URL"], "KEYCLOAK_URL": site.env["KEYCLOAK_URL"],
           "KEYCLOAK_REALM": site.env["KEYCLOAK_REALM"], "FIRECREST_PORTAL_CLIENT_ID": "firecrest-viewer",
           "FIRECREST_PORTAL_URL": url, "FIRECREST_PORTAL_SECRET_KEY": secrets.token_hex(32),
           "FIRECREST_PORTAL_STATE_DIR": str(tmp_path)}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen([str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8",
                                "--worker-class", "gthread", "--graceful-timeout", "2", "--chdir", str(REPO),
                                "portal.app:create()"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:  # until it answers (a redirect to the sign-in), or it has died
            assert process.poll() is None, "the viewer portal exited"
            try:
                if requests.get(f"{url}/jobs/", allow_redirects=False, timeout=2).status_code == 302:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()  # a page still open holds a relayed stream: the graceful stop ends it after 2 s
        process.wait(timeout=60)


def sign_in_at(page: Page, url: str, site: Any, user: str) -> None:
    page.goto(f"{url}/jobs/")
    page.locator("#username").fill(user)
    page.locator("#password").fill(str(site.secret(f"keycloak-user-{user}")))
    page.locator("#kc-login").click()
    consent, signed_in = page.locator("[name=accept]"), page.locator("#current-user")
    expect(consent.or_(signed_in).first).to_be_visible()
    if consent.count() and consent.first.is_visible():
        consent.first.click()
    expect(page.locator("#current-user")).to_have_text(user)


def test_an_application_without_the_jobs_scope_cannot_submit(browser_page: Page, viewer_portal: str, site: Any,
                                                              shot: Shot) -> None:
    page = browser_page
    sign_in_at(page, viewer_portal, site, "alice")
    expect(page.locator("h1")).to_have_text("Jobs")
    page.locator("#script").fill("#!/bin/bash\necho should-never-run\n")
    page.locator("#submit-job").click()
    error = page.locator("#jobs-error")
    expect(error).to_contain_text("The API answered 403", timeout=60_000)
    expect(error).to_contain_text("firecrest-jobs")
    expect(error).to_contain_text("may not do this")
    expect(page.locator("#submit-status")).to_have_text("")
    shot(page, "no-jobs-scope")
    # Reading is allowed: the queue is listed (the page says so once loaded).
    expect(page.locator("#jobs-page[data-loaded=true]")).to_have_count(1, timeout=60_000)
