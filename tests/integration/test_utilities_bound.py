"""One user's synchronous commands are bounded per utilities process (429 + Retry-After), so another user is
still served while they run. The burst goes straight to the utilities service: the gateway's own per-user rate
limit would answer first."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from test_utilities import ALICE, fifo_as, ok
from test_utilities_bad_input import api, home

UTILITIES_WORKERS = 2  # deploy/local/stack/components/services.py
THREADS = 16  # gunicorn threads per utilities worker
SYNC_PER_USER = 8  # deploy/local/site.yaml limits.sync_commands_per_user (per worker process)

__all__ = ["api", "home"]  # fixtures shared with the bad-input suite


# --- a per-user bound on synchronous commands -----------------------------------------------------------------------

def test_one_user_cannot_hold_every_thread(site, api, home):
    """alice sends more commands that block (head of a FIFO, until the 5 s limit) than both worker processes have
    threads: those beyond her bound get 429 with Retry-After at once, and bob is answered while hers still run
    (without the bound his request would wait behind them)."""
    fifo = f"{home}/fifo-{uuid.uuid4().hex[:6]}"
    fifo_as(ALICE, fifo)
    url = site.service_url("utilities")
    alice = {"Authorization": f"Bearer {site.token('alice')}", "X-Machine-Name": "cluster"}
    bob = {"Authorization": f"Bearer {site.token('bob')}", "X-Machine-Name": "cluster"}
    count = UTILITIES_WORKERS * THREADS + 8
    with ThreadPoolExecutor(max_workers=count) as pool:
        blocked = [pool.submit(requests.get, f"{url}/head", params={"targetPath": fifo}, headers=alice, timeout=60)
                   for _ in range(count)]
        while not any(f.done() and f.result().status_code == 429 for f in blocked):  # alice is at her bound
            assert not all(f.done() for f in blocked), [f.result().status_code for f in blocked]
            time.sleep(0.01)
        served = requests.get(f"{url}/whoami", headers=bob, timeout=60)
        still_running = [f for f in blocked if not f.done()]
        answers = [f.result() for f in blocked]
    assert served.status_code == 200 and served.json()["output"] == "bob"
    assert any(f.result().status_code == 400 for f in still_running)  # bob did not wait for alice's commands
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) == {400, 429}, statuses
    assert statuses.count(400) <= UTILITIES_WORKERS * SYNC_PER_USER
    for response in answers:
        if response.status_code == 429:
            assert response.headers["Retry-After"].isdigit()
            assert response.json()["description"] == "Too many commands at once"
            assert "at once" in response.json()["error"]
        else:
            assert "X-Timeout" in response.headers  # the FIFO never had a writer


def test_the_bound_is_per_user_and_released(site, api):
    """After a burst ends, alice is served again (slots are released on every outcome)."""
    for _ in range(3 * SYNC_PER_USER):
        ok(api.get("/whoami"), 200, "User information", "alice")
