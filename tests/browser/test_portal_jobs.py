"""The job pages in a browser: submit a script, watch it reach COMPLETED with its output, cancel a long job, all
without the page reloading; errors of the API shown as such; bob never sees alice's jobs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from playwright.sync_api import Page, expect

SignIn = Callable[[Page, str], None]
Shot = Callable[[Page, str], Path]
MARK = "window.__portalNoReload"
WAIT_MS = 90_000  # Playwright's default of 5 s is for a page's own reactions; these wait on Slurm and the API


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=5_000)


def open_jobs(page: Page, portal: str, sign_in: SignIn, user: str = "alice") -> None:
    sign_in(page, user)
    page.goto(f"{portal}/jobs/")
    expect(page.locator("h1")).to_have_text("Jobs")
    expect(page.locator("#live")).to_have_text("(live)")  # the relayed job stream is open
    page.evaluate(f"{MARK} = true")  # gone if the page reloads or navigates


def still_same_page(page: Page) -> None:
    assert page.evaluate(MARK) is True, "the page reloaded or navigated"


def submit(page: Page, script: str, name: str) -> str:
    page.locator("#script").fill(script)
    page.locator("#script-name").fill(name)
    page.locator("#submit-job").click()
    status = page.locator("#submit-status")
    expect(status).to_have_text(re.compile(r"Submitted: job \d+"))
    found = re.search(r"job (\d+)", status.inner_text())
    assert found
    return found.group(1)


def test_alice_submits_a_job_and_sees_it_complete_with_its_output(
        browser_page: Page, portal: str, sign_in: SignIn, shot: Shot) -> None:
    page = browser_page
    open_jobs(page, portal, sign_in)
    shot(page, "jobs")
    jobid = submit(page, "#!/bin/bash\necho portal-says-hello\necho second line\n", "hello.sh")
    row = page.locator(f"#job-{jobid}")
    expect(row.locator(".job-state")).to_have_text("COMPLETED")
    expect(row).to_contain_text("0:0")
    expect(page.locator("#followed-id")).to_have_text(jobid)
    expect(page.locator("#output")).to_have_text("portal-says-hello\nsecond line\n")
    expect(page.locator("#followed-state")).to_have_text("COMPLETED (exit code 0:0)")
    still_same_page(page)
    shot(page, "completed")


def test_an_example_script_fills_the_editor(browser_page: Page, portal: str, sign_in: SignIn) -> None:
    page = browser_page
    open_jobs(page, portal, sign_in)
    page.locator("#example").select_option("fail")
    expect(page.locator("#script")).to_have_value(re.compile(r"echo 'about to fail' >&2\nexit 3\n$"))
    jobid = submit(page, page.locator("#script").input_value(), "fail.sh")
    expect(page.locator(f"#job-{jobid} .job-state")).to_have_text("FAILED")
    expect(page.locator(f"#job-{jobid}")).to_contain_text("3:0")
    still_same_page(page)


def test_alice_cancels_a_long_job(browser_page: Page, portal: str, sign_in: SignIn, shot: Shot) -> None:
    page = browser_page
    open_jobs(page, portal, sign_in)
    jobid = submit(page, "#!/bin/bash\necho started\nsleep 600\n", "long.sh")
    row = page.locator(f"#job-{jobid}")
    expect(row.locator(".job-state")).to_have_text("RUNNING")
    expect(page.locator("#output")).to_have_text("started\n")
    row.locator("button.cancel").click()
    expect(row.locator(".job-state")).to_have_text("CANCELLED")
    expect(page.locator("#followed-state")).to_contain_text("CANCELLED")
    expect(row.locator("button.cancel")).to_be_hidden()
    still_same_page(page)
    shot(page, "cancelled")


def test_a_job_page_follows_the_output_live(browser_page: Page, portal: str, sign_in: SignIn, shot: Shot) -> None:
    page = browser_page
    open_jobs(page, portal, sign_in)
    jobid = submit(page, "#!/bin/bash\nfor i in 1 2 3; do echo tick $i; sleep 1; done\necho oops >&2\n", "ticks.sh")
    page.locator(f"#job-{jobid} a").click()
    expect(page.locator("#job-id")).to_have_text(jobid)
    page.evaluate(f"{MARK} = true")
    expect(page.locator("#output")).to_contain_text("tick 1")
    expect(page.locator("#job-state")).to_have_text("COMPLETED")
    expect(page.locator("#output")).to_have_text("tick 1\ntick 2\ntick 3\noops\n")  # Slurm's one file for both
    expect(page.locator("#job-exit")).to_have_text("exit code 0:0")
    expect(page.locator("#cancel-job")).to_be_hidden()
    still_same_page(page)
    shot(page, "job-page")


def test_sbatch_refusal_is_shown_with_its_description(browser_page: Page, portal: str, sign_in: SignIn,
                                                      shot: Shot) -> None:
    page = browser_page
    open_jobs(page, portal, sign_in)
    page.locator("#script").fill("#!/bin/bash\n#SBATCH --partition=no-such-partition\necho never\n")
    page.locator("#submit-job").click()
    error = page.locator("#jobs-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("The API answered 400")
    expect(error).to_contain_text("invalid partition", ignore_case=True)
    still_same_page(page)
    shot(page, "sbatch-error")


@pytest.mark.parametrize("value", ["../../etc/passwd", "1;scancel 1", "<script>alert(1)</script>"])
def test_hostile_job_ids_never_reach_the_api(browser_page: Page, portal: str, sign_in: SignIn, value: str) -> None:
    page = browser_page
    sign_in(page, "alice")
    answer = page.request.post(f"{portal}/jobs/cluster/{value}/cancel",
                               headers={"X-CSRF-Token": csrf(page, portal)})
    assert answer.status in (400, 404)
    if answer.status == 400:
        assert "is not a job id" in answer.json()["description"]


def csrf(page: Page, portal: str) -> str:
    page.goto(f"{portal}/jobs/")
    return str(page.locator('meta[name="csrf-token"]').get_attribute("content"))


def test_a_request_without_the_csrf_token_is_refused(browser_page: Page, portal: str, sign_in: SignIn) -> None:
    page = browser_page
    sign_in(page, "alice")
    answer = page.request.post(f"{portal}/jobs/submit", form={"system": "cluster", "script": "#!/bin/bash\necho x\n"})
    assert answer.status == 400


def test_bob_never_sees_alices_jobs(new_page: Callable[[], Page], portal: str, sign_in: SignIn,
                                   shot: Shot, site: Any) -> None:
    alice = new_page()
    open_jobs(alice, portal, sign_in, "alice")
    jobid = submit(alice, "#!/bin/bash\necho alice-secret\nsleep 600\n", "secret.sh")
    expect(alice.locator(f"#job-{jobid} .job-state")).to_have_text("RUNNING")
    bob = new_page()
    open_jobs(bob, portal, sign_in, "bob")
    expect(bob.locator("#jobs-page[data-loaded=true]")).to_have_count(1)  # his queue is listed
    ids = set(bob.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.jobid)"))
    alices = set(site.shell(None, "squeue --noheader --states=all --user=alice --format=%i", check=True).stdout.split())
    assert jobid in alices and not ids & alices
    # His own job appears live; alice's never does, though it runs all along.
    mine = submit(bob, "#!/bin/bash\necho bob\n", "bob.sh")
    expect(bob.locator(f"#job-{mine} .job-state")).to_have_text("COMPLETED")
    expect(bob.locator(f"#job-{jobid}")).to_have_count(0)
    # alice's job page as bob: the API tells him nothing of it.
    bob.goto(f"{portal}/jobs/cluster/{jobid}")
    expect(bob.locator("#jobs-error")).to_contain_text("The API answered 404")
    expect(bob.locator("#output")).to_have_text("")
    shot(bob, "bob-jobs")
    alice.locator(f"#job-{jobid} button.cancel").click()
    expect(alice.locator(f"#job-{jobid} .job-state")).to_have_text("CANCELLED")


def stream_slots(site: Any, user: str) -> set[str]:
    """The user's open event streams as the tasks service counts them (8 at most: a leaked one is a lost place)."""
    r = redis.Redis.from_url(site.env["REDIS_URL"], decode_responses=True)
    try:
        return {str(m) for m in r.zrange(f"firecrest:events:slots:{user}", 0, -1)}
    finally:
        r.close()


def test_leaving_the_page_closes_the_relayed_stream(new_page: Callable[[], Page], portal: str, sign_in: SignIn,
                                                    site: Any) -> None:
    page = new_page()
    sign_in(page, "bob")
    before = stream_slots(site, "bob")
    page.goto(f"{portal}/jobs/")
    expect(page.locator("#live")).to_have_text("(live)")
    opened: set[str] = set()
    opened = stream_slots(site, "bob") - before  # the relay opened its upstream before the page said live
    assert opened
    page.goto(f"{portal}/transfers/")  # leaves the jobs page: its EventSource closes
    expect(page.locator("h1")).to_have_text("Large transfers")
    deadline = time.monotonic() + 120  # keep-alives every 15 s carry the news: the portal's write, then the API's
    while stream_slots(site, "bob") & opened:
        assert time.monotonic() < deadline, "the portal kept the API's stream open after the page left"
        time.sleep(0.5)


def test_too_many_streams_shows_the_wait(new_page: Callable[[], Page], portal: str, sign_in: SignIn, site: Any,
                                         shot: Shot) -> None:
    """bob's 8 event streams all taken (by his own program): the page says 429 and how long to wait, instead of
    a list that silently never updates. His streams are given back at the end."""
    page = new_page()
    sign_in(page, "bob")
    before = stream_slots(site, "bob")
    headers = {"Authorization": f"Bearer {site.token('bob')}", "X-Machine-Name": "cluster"}
    held: list[requests.Response] = []
    try:
        while True:  # until the API refuses one: then every place is taken (by these and any other of bob's)
            r = requests.get(f"{site.env['FIRECREST_URL']}/tasks/events/jobs", params={"idle": 60},
                             headers=headers, stream=True, timeout=30)
            if r.status_code == 429:
                r.close()
                break
            assert r.status_code == 200 and len(held) < 8, r.text
            held.append(r)
        page.goto(f"{portal}/jobs/")
        error = page.locator("#jobs-error")
        expect(error).to_contain_text("The API answered 429")
        expect(error).to_contain_text(re.compile(r"Try again in \d+ seconds"))
        expect(page.locator("#live")).to_have_text("(not live)")
        shot(page, "too-many-streams")
    finally:
        for r in held:
            r.close()
    taken = stream_slots(site, "bob") - before
    deadline = time.monotonic() + 120  # the API frees a place its client left at the stream's next keep-alive
    while stream_slots(site, "bob") & taken:
        assert time.monotonic() < deadline, "bob's streams were not given back"
        time.sleep(0.5)


def test_a_job_on_the_second_system(browser_page: Page, portal: str, sign_in: SignIn, systems: list[str]) -> None:
    if len(systems) < 2:
        pytest.skip("the site has one system")
    page = browser_page
    open_jobs(page, portal, sign_in)
    page.locator("#system").select_option(systems[1])
    expect(page.locator("#jobs-system")).to_have_text(systems[1])
    expect(page.locator("#live")).to_have_text("(live)")
    jobid = submit(page, "#!/bin/bash\necho on the other system\n", "other.sh")
    expect(page.locator(f"#job-{jobid} .job-state")).to_have_text("COMPLETED")
    expect(page.locator("#output")).to_have_text("on the other system\n")
    still_same_page(page)
