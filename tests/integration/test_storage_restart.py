"""Nothing is lost when the storage service dies: uploads waiting for their objects and transfers in the middle
of their jobs are claimed again when it is back, and every task completes or ends with a clear reason."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests
from gateway_client import Api
from test_compute_restart import kill_service
from test_storage import MiB, random_file, run_command, sha256, start_upload

FINAL = {"114", "115", "117", "118", "400"}


@pytest.fixture
def api(site) -> Api:
    return Api(site, "alice", "storage")


def settle(api: Api, task_ids: list[str], timeout: float = 180) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    tasks: dict[str, dict] = {}
    while time.monotonic() < deadline:
        tasks = {t: api.task(t) for t in task_ids}
        if all(task["status"] in FINAL for task in tasks.values()):
            break
        time.sleep(0.5)
    return tasks


def test_killed_while_uploads_wait_for_their_objects(site, api, workdir, home_dir):
    sources = {}
    for i in range(4):
        local = workdir / f"wait-{i}.bin"
        sources[local.name] = random_file(local, 2 * MiB + i)
    started = [start_upload(api, str(workdir / name), str(home_dir)) for name in sources]
    kill_service(site, "storage")
    for _, task in started:  # the users upload while the service is down (Swift is not)
        assert run_command(task["data"]["msg"]["command"]).returncode == 0
    site.control("up")
    tasks = settle(api, [task_id for task_id, _ in started])
    assert {t["status"] for t in tasks.values()} == {"114"}, tasks
    for name, digest in sources.items():
        assert sha256(home_dir / name) == digest


def test_killed_during_transfers(site, api, workdir, home_dir):
    """Killed while xfer jobs pull and push: each transfer starts over (its old job cancelled) and completes,
    or ends with its reason; a completed one has the right bytes."""
    digests = {}
    for i in range(3):
        source = home_dir / f"down-{i}.bin"
        digests[source.name] = random_file(source, 200 * MiB + i)
    for i in range(3):
        local = workdir / f"up-{i}.bin"
        digests[local.name] = random_file(local, 200 * MiB + 10 + i)
    (home_dir / "in").mkdir()
    os.chown(home_dir / "in", home_dir.stat().st_uid, home_dir.stat().st_gid)
    uploads = [start_upload(api, str(workdir / f"up-{i}.bin"), str(home_dir / "in")) for i in range(3)]
    for _, task in uploads:
        assert run_command(task["data"]["msg"]["command"]).returncode == 0
    downloads = []
    for i in range(3):
        reply = api.post("/xfer-external/download", sourcePath=str(home_dir / f"down-{i}.bin"))
        assert reply.status_code == 201
        downloads.append(reply.json()["task_id"])
    ids = [task_id for task_id, _ in uploads] + downloads
    deadline = time.monotonic() + 60  # kill once some transfer jobs run
    while time.monotonic() < deadline and not any(api.task(t)["status"] in ("113", "116") for t in ids):
        time.sleep(0.05)
    kill_service(site, "storage")
    time.sleep(1)
    site.control("up")
    tasks = settle(api, ids, timeout=300)
    for task_id, task in tasks.items():
        status = task["status"]
        assert status in FINAL, (task_id, status)
        if status in ("115", "118", "400"):
            assert task["data"].get("msg") or task["data"].get("error"), task  # a reason
            continue
        if status == "114":
            target = Path(task["data"]["target"])
            assert sha256(target) == digests[target.name]
        else:
            assert status == "117", task
            dest = workdir / f"back-{task_id}"
            with requests.get(task["data"]["url"], stream=True, timeout=60) as reply, dest.open("wb") as f:
                for chunk in reply.iter_content(8 * MiB):
                    f.write(chunk)
            assert sha256(dest) == digests[Path(task["data"]["source"]).name]
    assert sum(t["status"] in ("114", "117") for t in tasks.values()) == len(ids), tasks
    assert not [p for p in (home_dir / "in").iterdir() if p.name.endswith(".part")]
