"""Does everything work?" asked the way a user would: one round of each kind of call for each user, through the
gateway, ending in the backends (the login node, Slurm, Redis, Swift, Keycloak)."""

from __future__ import annotations

import time
import uuid

import requests

from bench.mixed_load import MixedLoad, User


def round_ok(load: MixedLoad, user: User) -> list[str]:
    """One round; returns what failed (empty: everything works)."""
    failed: list[str] = []

    def expect(op: str, reply: requests.Response | None, status: int) -> requests.Response | None:
        if reply is None or reply.status_code != status:
            failed.append(f"{user.name} {op}: {reply.status_code if reply is not None else 'no answer'}")
            return None
        return reply

    if not user.renew():
        return [f"{user.name}: Keycloak issued no token"]
    home = load.dirs[user.name]
    name = f"probe-{uuid.uuid4().hex[:8]}"
    expect("probe-ls", user.call("probe-ls", "GET", "/utilities/ls", params={"targetPath": home}), 200)
    expect("probe-upload", user.call("probe-upload", "POST", "/utilities/upload", data={"targetPath": home},
                                     files={"file": (name, b"probe\n")}), 201)
    expect("probe-systems", user.call("probe-systems", "GET", "/status/systems"), 200)
    script = b"#!/bin/bash\n#SBATCH --output=/dev/null\ntrue\n"
    job = expect("probe-submit", user.call("probe-submit", "POST", "/compute/jobs/upload",
                                           files={"file": ("p.sh", script)}), 201)
    xfer = expect("probe-xfer", user.call("probe-xfer", "POST", "/storage/xfer-external/upload",
                                          data={"sourcePath": name, "targetPath": f"{home}/{name}.up"}), 201)
    for op, reply, until in (("probe-job", job, "200"), ("probe-xfer-task", xfer, "111")):
        if reply is not None:
            task = task_reaches(user, reply.json()["task_id"], until)
            if task.get("status") != until:
                failed.append(f"{user.name} {op}: {task.get('status')} {task.get('data')}")
    if xfer is not None:  # the upload never comes: free the user's place for transfers in flight at once
        expect("probe-invalidate", user.call("probe-invalidate", "POST", "/storage/xfer-external/invalidate",
                                             headers={"X-Task-Id": xfer.json()["task_id"]}), 201)
    return failed


def task_reaches(user: User, task_id: str, until: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    task: dict = {}
    while time.monotonic() < deadline:
        reply = user.call("probe-task", "GET", f"/tasks/{task_id}")
        if reply is not None and reply.status_code == 200:
            task = reply.json()["task"]
            if task["status"] == until or task["status"] in ("400", "115", "118"):
                return task
        time.sleep(0.1)
    return task


def recovery(load: MixedLoad, since: float, timeout: float = 120) -> tuple[float, list[str]]:
    """Seconds from `since` until a whole round works for every user; and the last failures if it never did."""
    failed: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t0 = time.monotonic()  # everything works from the start of the first round that has no failure
        failed = [f for user in load.users for f in round_ok(load, user)]
        if not failed:
            return max(0.0, t0 - since), []
        time.sleep(0.2)
    return float("inf"), failed
