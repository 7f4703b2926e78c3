"""The API documentation in a real browser (Debian's Chromium driven by Playwright): the page at the gateway's
/docs/ lists the operations, loads nothing from another host, and "Try it out" with alice's token (given to the
Authorize dialog, as a reader pastes one) calls the gateway and shows the 200 answer. Screenshots:
.artifacts/screenshots/apidocs-*.png."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".artifacts" / "screenshots"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TIMEOUT_MS = 30_000


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"apidocs-{name}.png"), full_page=False)


@pytest.fixture(scope="module")
def docs(site) -> str:
    if site.compose:
        pytest.skip("the compose site does not deploy the API documentation")
    return f"{site.env['FIRECREST_URL']}/docs/"


@pytest.fixture
def docs_page(browser_page):
    """A fresh page (tests/browser/conftest.py); every URL it requested is in `page.requested`, errors in
    `page.errors`."""
    page = browser_page
    page.set_default_timeout(TIMEOUT_MS)
    page.requested, page.errors = [], []
    page.on("request", lambda r: page.requested.append(r.url))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def operations() -> int:
    spec = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    return sum(1 for item in spec["paths"].values() for method in item if method in METHODS)


def test_the_page_lists_every_operation_from_the_sites_own_files(docs, docs_page):
    page = docs_page
    page.goto(docs)
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() == operations()
    assert page.locator("#operations-utilities-get_utilities_whoami").is_visible()
    page.locator("#operations-tag-status").scroll_into_view_if_needed()
    shot(page, "index")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(docs))
    assert [u for u in page.requested if not (u.startswith(origin + "/") or u.startswith("data:"))] == []
    assert page.errors == []


def test_try_it_out_with_alices_token_calls_the_gateway(site, docs, docs_page):
    page = docs_page
    page.goto(docs)
    page.locator(".opblock").first.wait_for()
    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator(".auth-container", has_text="bearer").locator("input").fill(site.token("alice"))
    shot(page, "authorize")
    dialog.locator("button.modal-btn.authorize").click()
    dialog.locator("button.btn-done").click()
    operation = page.locator("#operations-utilities-get_utilities_whoami")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("tr[data-param-name='X-Machine-Name'] input").fill(site.env["FIRECREST_SYSTEM"])
    with page.expect_response(lambda r: r.url.endswith("/utilities/whoami")) as answer:
        operation.locator("button.execute").click()
    assert answer.value.status == 200
    assert answer.value.url == f"{site.env['FIRECREST_URL']}/utilities/whoami"
    live = operation.locator(".live-responses-table .response")
    live.first.wait_for()
    assert live.locator(".response-col_status").first.inner_text().strip() == "200"
    assert '"output": "alice"' in operation.locator(".live-responses-table .microlight").first.inner_text()
    operation.scroll_into_view_if_needed()
    shot(page, "try-it")
    assert page.errors == []
