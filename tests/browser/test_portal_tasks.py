"""The user's tasks in the portal, and what bob never sees of alice's (files, tasks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

Shot = Callable[[Page, str], Path]
SCRIPT = b"#!/bin/bash\n#SBATCH --time=00:01:00\necho portal-task\n"


def submit(site: Any, user: str) -> str:
    """A task of `user`'s (a job submission through the gateway, as any client makes one): its id."""
    r = requests.post(f"{site.env['FIRECREST_URL']}/compute/jobs/upload",
                      headers={"Authorization": f"Bearer {site.token(user)}", "X-Machine-Name": "cluster"},
                      files={"file": ("portal-task.sh", SCRIPT)}, timeout=60)
    assert r.status_code == 201, r.text
    return str(r.json()["task_id"])


@pytest.fixture(scope="module")
def alice_task(site: Any) -> Iterator[str]:
    yield submit(site, "alice")


def test_alice_sees_her_tasks(browser_page: Page, sign_in: Callable[[Page, str], None], alice_task: str,
                              shot: Shot) -> None:
    page = browser_page
    sign_in(page, "alice")
    page.locator("nav a", has_text="Tasks").click()
    expect(page.locator("h1")).to_have_text("Tasks")
    task = page.locator(f"#tasks tr[data-task=\"{alice_task}\"]")
    expect(task).to_contain_text("compute")
    expect(task).to_contain_text("cluster")
    shot(page, "tasks")


def test_bob_never_sees_alices_tasks(browser_page: Page, sign_in: Callable[[Page, str], None], alice_task: str,
                                     site: Any, portal: str, shot: Shot) -> None:
    bob_task = submit(site, "bob")
    page = browser_page
    sign_in(page, "bob")
    page.goto(f"{portal}/tasks")
    expect(page.locator(f"#tasks tr[data-task=\"{bob_task}\"]")).to_be_visible()  # the list is loaded: his own is there
    expect(page.locator(f"#tasks tr[data-task=\"{alice_task}\"]")).to_have_count(0)
    assert alice_task[:12] not in page.content()
    shot(page, "bob-tasks")


def test_bob_never_sees_alices_files(browser_page: Page, sign_in: Callable[[Page, str], None], portal: str,
                                     home_dir: Path, shot: Shot) -> None:
    (home_dir / "secret.txt").write_text("alice's")
    page = browser_page
    sign_in(page, "bob")
    page.goto(f"{portal}/files?system=cluster&path=/home/alice")
    error = page.locator("#api-error")
    expect(error).to_contain_text("The API answered 400")
    expect(error).to_contain_text("X-Permission-Denied")
    expect(error).to_contain_text("permission denied")
    expect(page.locator("#listing tbody tr[data-name]")).to_have_count(0)
    shot(page, "bob-alice-home")
    for url in (f"{portal}/files/view?system=cluster&path={home_dir}/secret.txt",
                f"{portal}/files?system=cluster&path={home_dir}"):
        page.goto(url)  # below a folder bob cannot enter, the API says X-Invalid-Path (as upstream), with the reason
        expect(page.locator("#api-error")).to_contain_text("Permission denied")
        assert "alice's" not in page.locator("main").inner_text()
    response = page.request.get(f"{portal}/files/download?system=cluster&path={home_dir}/secret.txt")
    assert response.status == 400 and b"alice's" not in response.body()
