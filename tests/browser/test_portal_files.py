"""alice's file browser in the portal: her home, folders, upload and download, view, rename, delete, API errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Locator, Page, expect

Shot = Callable[[Page, str], Path]


@pytest.fixture
def files_page(browser_page: Page, sign_in: Callable[[Page, str], None], portal: str,
               home_dir: Path) -> Page:
    """alice signed in, on the file browser at a fresh folder of her home."""
    sign_in(browser_page, "alice")
    browser_page.goto(f"{portal}/files?system=cluster&path={home_dir.name}")
    expect(browser_page.locator("#crumbs")).to_contain_text(home_dir.name)
    return browser_page


def row(page: Page, name: str) -> Locator:
    # A CSS string: JSON's quoting of '"' and '\\' is CSS's (other characters kept as they are).
    return page.locator(f"#listing tr[data-name={json.dumps(name, ensure_ascii=False)}]")


def test_alice_sees_her_home(browser_page: Page, sign_in: Callable[[Page, str], None], portal: str,
                             home_dir: Path, shot: Shot) -> None:
    page = browser_page
    sign_in(page, "alice")
    page.locator("nav a", has_text="Files").click()
    expect(page.locator("#crumbs")).to_have_text("~")
    expect(row(page, home_dir.name)).to_be_visible()  # her folder made for this test, in her home
    expect(row(page, home_dir.name)).to_contain_text("alice:alice")
    shot(page, "home")


def test_make_a_directory_and_enter_it(files_page: Page, home_dir: Path, shot: Shot) -> None:
    page = files_page
    page.locator("#mkdir input[name=name]").fill("results")
    page.locator("#mkdir button").click()
    expect(page.locator(".notice")).to_contain_text("Made the directory results")
    expect(row(page, "results")).to_be_visible()
    assert (home_dir / "results").is_dir()
    row(page, "results").locator("a", has_text="results/").click()
    expect(page.locator("#crumbs")).to_have_text(f"~ / {home_dir.name} / results")
    expect(page.locator("#listing")).to_contain_text("Empty directory.")
    shot(page, "mkdir")


def test_upload_and_download_return_the_same_bytes(files_page: Page, home_dir: Path, shot: Shot) -> None:
    page = files_page
    data = bytes(range(256)) * 40 + b"\x00end"
    page.locator("#upload input[type=file]").set_input_files(
        files=[{"name": "blob.bin", "mimeType": "application/octet-stream", "buffer": data}])
    page.locator("#upload button").click()
    expect(page.locator(".notice")).to_contain_text("Uploaded blob.bin")
    expect(row(page, "blob.bin")).to_contain_text(str(len(data)))
    assert (home_dir / "blob.bin").read_bytes() == data
    shot(page, "uploaded")
    with page.expect_download() as download:
        row(page, "blob.bin").locator("a.download").click()
    assert download.value.suggested_filename == "blob.bin"
    assert Path(download.value.path()).read_bytes() == data


def test_view_a_text_file(files_page: Page, home_dir: Path, shot: Shot) -> None:
    page = files_page
    text = "first line\n<script>alert('not run')</script>\nünïcode ✓\n"
    page.locator("#upload input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": text.encode()}])
    page.locator("#upload button").click()
    row(page, "notes.txt").locator("a", has_text="notes.txt").click()
    expect(page.locator("h1")).to_have_text("notes.txt")
    expect(page.locator("#file-text")).to_have_text(text)  # shown as text, never run as markup
    shot(page, "view")


def test_rename_then_delete(files_page: Page, home_dir: Path, shot: Shot) -> None:
    page = files_page
    (home_dir / "old.txt").write_text("x")
    page.reload()
    form = row(page, "old.txt").locator("form.rename")
    form.locator("input[name=name]").fill("new.txt")
    form.locator("button").click()
    expect(page.locator(".notice")).to_contain_text("Renamed old.txt to new.txt")
    expect(row(page, "new.txt")).to_be_visible()
    expect(row(page, "old.txt")).to_have_count(0)
    shot(page, "renamed")
    page.once("dialog", lambda dialog: dialog.accept())  # the page asks before deleting
    row(page, "new.txt").locator("form.delete button").click()
    expect(page.locator(".notice")).to_contain_text("Deleted new.txt")
    expect(row(page, "new.txt")).to_have_count(0)
    assert not (home_dir / "new.txt").exists()
    shot(page, "deleted")


def test_declining_the_delete_question_keeps_the_file(files_page: Page, home_dir: Path) -> None:
    page = files_page
    (home_dir / "keep.txt").write_text("x")
    page.reload()
    page.once("dialog", lambda dialog: dialog.dismiss())
    row(page, "keep.txt").locator("form.delete button").click()
    expect(row(page, "keep.txt")).to_be_visible()
    assert (home_dir / "keep.txt").exists()


def test_an_api_error_is_shown_with_its_description(files_page: Page, home_dir: Path, shot: Shot) -> None:
    page = files_page
    page.locator("#mkdir input[name=name]").fill("no-such-parent/sub")
    page.locator("#mkdir button").click()
    error = page.locator("#api-error")
    expect(error).to_contain_text("The API answered 400")
    expect(error).to_contain_text("X-Invalid-Path")
    expect(error).to_contain_text("No such file or directory")
    expect(page.locator("#listing")).to_be_visible()  # the page is still the folder, with its actions
    assert not (home_dir / "no-such-parent").exists()
    shot(page, "api-error")


@pytest.mark.parametrize("name", ['<img src=x onerror="document.title=1">', "--help", "a b; rm -rf ~", "ü ✓"])
def test_hostile_names_are_names(files_page: Page, home_dir: Path, name: str) -> None:
    page = files_page
    page.locator("#mkdir input[name=name]").fill(name)
    page.locator("#mkdir button").click()
    expect(page.locator(".notice")).to_have_text(f"Made the directory {name}")
    expect(row(page, name)).to_be_visible()
    assert (home_dir / name).is_dir()
    assert page.locator("#listing img").count() == 0 and page.title() != "1"


@pytest.mark.parametrize(("system", "path"), [
    ("cluster", "/etc/shadow"), ("cluster", "--help"), ("cluster", "$(touch /tmp/portal-pwned)"),
    ("cluster\r\nX-Injected: 1", "notes.txt"), ("no-such-system", "notes.txt"), ("cluster", ""),
])
def test_hostile_view_requests_show_the_refusal(files_page: Page, portal: str, system: str, path: str) -> None:
    page = files_page
    response = page.goto(f"{portal}/files/view?{urlencode({'system': system, 'path': path})}")
    assert response is not None and response.status == 400
    expect(page.locator("#api-error")).to_contain_text("The API answered 400")
    assert "Traceback" not in page.content()
    assert not Path("/tmp/portal-pwned").exists()


def test_a_file_over_the_limit_gets_the_apis_413(files_page: Page, home_dir: Path, shot: Shot) -> None:
    page = files_page
    page.locator("#upload input[type=file]").set_input_files(
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"\0" * (6 * 1024 * 1024)}])
    page.locator("#upload button").click()
    error = page.locator("#api-error")
    expect(error).to_contain_text("The API answered 413")
    expect(error).to_contain_text("The file is over")  # the site's UTILITIES_MAX_FILE_SIZE (5 MB)
    expect(error.locator("a", has_text="Transfers")).to_be_visible()
    assert not (home_dir / "big.bin").exists()
    shot(page, "too-large")
