"""The transfers page in a browser: a 20 MB upload straight from the browser to Swift's temp URL with a moving
progress bar, the file then on the cluster with the same bytes; a download by its temp URL link; invalidation."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

SignIn = Callable[[Page, str], None]
Shot = Callable[[Page, str], Path]
SIZE = 20 * 1024 * 1024
WAIT_MS = 120_000  # a transfer goes through Swift and a job on the xfer partition
# Loopback moves 20 MB faster than the browser reports upload progress (about every 100 ms): the test slows the
# page's network (Chromium's own throttling, through the DevTools protocol) so the bar shows its steps.
UPLOAD_BYTES_PER_S = 4 * 1024 * 1024
# Records each value the progress bar takes (its `value` attribute reflects the property the page sets).
WATCH_BAR = """() => {
  window.__barValues = [];
  const bar = document.getElementById('upload-progress');
  new MutationObserver(() => window.__barValues.push(bar.value)).observe(bar, {attributes: true});
}"""


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / f"portal-{uuid.uuid4().hex[:8]}.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def open_transfers(page: Page, portal: str, sign_in: SignIn, user: str = "alice") -> None:
    sign_in(page, user)
    page.goto(f"{portal}/transfers/")
    expect(page.locator("h1")).to_have_text("Large transfers")


def slow_network(page: Page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": UPLOAD_BYTES_PER_S})


def upload(page: Page, target: Path, file: Path) -> str:
    """Upload `file` into the directory `target` from the page; the transfer's task id."""
    page.locator("#upload-target").fill(str(target))
    page.locator("#upload-file").set_input_files(str(file))
    page.locator("#upload-start").click()
    row = page.locator("#transfers tbody tr", has_text=file.name).first
    expect(row.locator(".transfer-status")).to_contain_text("114")
    return str(row.get_attribute("data-task"))


def test_alice_uploads_20_mb_with_a_moving_progress_bar(browser_page: Page, portal: str, sign_in: SignIn,
                                                        shot: Shot, big_file: Path, home_dir: Path) -> None:
    page = browser_page
    open_transfers(page, portal, sign_in)
    page.evaluate(WATCH_BAR)
    page.evaluate("window.__portalNoReload = true")
    slow_network(page)
    page.locator("#upload-target").fill(str(home_dir))
    page.locator("#upload-file").set_input_files(str(big_file))
    page.locator("#upload-start").click()
    expect(page.locator("#upload-status")).to_contain_text("MiB sent")
    shot(page, "uploading")
    expect(page.locator("#upload-status")).to_contain_text("the system now takes it")
    row = page.locator("#transfers tbody tr", has_text=big_file.name).first
    expect(row.locator(".transfer-status")).to_contain_text("114")
    shot(page, "uploaded")
    values = page.evaluate("window.__barValues")
    steps = sorted(set(values))
    assert len([v for v in steps if 0 < v < 100]) >= 3, f"the bar did not move in steps: {values}"
    assert values == sorted(values) and steps[-1] == 100
    assert page.evaluate("window.__portalNoReload") is True
    landed = home_dir / big_file.name
    assert landed.stat().st_size == SIZE
    assert hashlib.sha256(landed.read_bytes()).digest() == hashlib.sha256(big_file.read_bytes()).digest()


def test_alice_downloads_by_the_link_then_invalidates_it(browser_page: Page, portal: str, sign_in: SignIn,
                                                         shot: Shot, home_dir: Path, tmp_path: Path) -> None:
    page = browser_page
    source = home_dir / "to-download.bin"
    content = os.urandom(3 * 1024 * 1024 + 17)
    source.write_bytes(content)
    os.chown(source, home_dir.stat().st_uid, home_dir.stat().st_gid)
    open_transfers(page, portal, sign_in)
    page.locator("#download-source").fill(str(source))
    page.locator("#download-start").click()
    row = page.locator("#transfers tbody tr", has_text=str(source)).first
    link = row.locator("a.download-link")
    expect(link).to_be_visible()
    expect(row.locator(".transfer-status")).to_contain_text("117")
    shot(page, "download-ready")
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "saved.bin"
    download.value.save_as(saved)
    assert saved.read_bytes() == content
    url = str(link.get_attribute("href"))
    row.locator("button.invalidate").click()
    expect(row.locator(".transfer-status")).to_contain_text("302")
    expect(row.locator("a.download-link")).to_have_count(0)
    assert requests.get(url, timeout=30).status_code == 404  # the object is gone
    shot(page, "invalidated")


def test_transfers_are_listed_after_a_reload(browser_page: Page, portal: str, sign_in: SignIn,
                                             home_dir: Path, tmp_path: Path) -> None:
    page = browser_page
    small = tmp_path / f"small-{uuid.uuid4().hex[:6]}.txt"
    small.write_text("a small file\n")
    open_transfers(page, portal, sign_in)
    tid = upload(page, home_dir, small)
    page.reload()
    row = page.locator(f"#transfer-{tid}")
    expect(row.locator(".transfer-status")).to_contain_text("114")
    assert (home_dir / small.name).read_text() == "a small file\n"


def test_api_refusals_are_shown(browser_page: Page, portal: str, sign_in: SignIn, shot: Shot,
                                tmp_path: Path) -> None:
    page = browser_page
    small = tmp_path / "x.txt"
    small.write_text("x")
    open_transfers(page, portal, sign_in)
    page.locator("#upload-target").fill("/root/not-yours")
    page.locator("#upload-file").set_input_files(str(small))
    page.locator("#upload-start").click()
    error = page.locator("#transfers-error")
    expect(error).to_contain_text("The API answered 400")
    expect(error).to_contain_text(re.compile("targetPath", re.I))
    page.locator("#download-source").fill("/home/alice/no-such-file-here")
    page.locator("#download-start").click()
    expect(error).to_contain_text("sourcePath error")
    shot(page, "refused")


def test_bob_sees_none_of_alices_transfers(new_page: Callable[[], Page], portal: str, sign_in: SignIn,
                                           home_dir: Path, tmp_path: Path) -> None:
    small = tmp_path / f"alice-{uuid.uuid4().hex[:6]}.txt"
    small.write_text("alice's\n")
    alice = new_page()
    open_transfers(alice, portal, sign_in, "alice")
    tid = upload(alice, home_dir, small)
    bob = new_page()
    open_transfers(bob, portal, sign_in, "bob")
    expect(bob.locator(f"#transfer-{tid}")).to_have_count(0)
    answer = bob.request.get(f"{portal}/transfers/{tid}")
    assert answer.status == 403 and alice.request.get(f"{portal}/transfers/{tid}").status == 200


@pytest.mark.parametrize(("route", "form", "said"), [
    ("download", {"sourcePath": "relative/../etc/passwd"}, "must be an absolute path"),
    ("download", {"sourcePath": "/home/alice/$(id)`id`;x"}, "sourcePath error"),
    ("upload", {"targetPath": "/tmp\n/x", "sourcePath": "f.bin"}, "must be an absolute path"),
    ("upload", {"targetPath": "/home/alice", "sourcePath": "../.."}, "the file needs a name"),
    ("upload", {"targetPath": "/home/alice", "sourcePath": "a\x00b"}, "the file needs a name"),
    ("download", {"system": "../../etc", "sourcePath": "/home/alice/x"}, "choose a system"),
])
def test_hostile_values_are_refused_with_a_reason(browser_page: Page, portal: str, sign_in: SignIn, route: str,
                                                  form: dict[str, str], said: str) -> None:
    page = browser_page
    open_transfers(page, portal, sign_in)
    token = str(page.locator('meta[name="csrf-token"]').get_attribute("content"))
    answer = page.request.post(f"{portal}/transfers/{route}", form={"system": "cluster", **form},
                               headers={"X-CSRF-Token": token})
    assert answer.status == 400
    assert said in answer.json()["description"]


@pytest.mark.parametrize("tid", ["..%2F..%2Fetc", "x" * 65, "a-b"])
def test_hostile_task_ids_never_reach_the_api(browser_page: Page, portal: str, sign_in: SignIn, tid: str) -> None:
    page = browser_page
    open_transfers(page, portal, sign_in)
    assert page.request.get(f"{portal}/transfers/{tid}").status in (400, 404)
    answer = page.request.get(f"{portal}/transfers/events?tasks={tid}")
    assert "not a task id" in answer.text() or answer.status == 400
