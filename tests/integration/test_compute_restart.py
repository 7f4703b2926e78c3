"""Work in flight survives restarts: the compute service killed (SIGKILL, master and workers) or Redis restarted
in the middle of a burst of submissions. Afterwards every task the clients were given ends (200, or 400 with a
reason), and no task's job exists twice in Slurm (each job carries its task id in its comment)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest
import requests
from gateway_client import Api
from test_compute import script

BURST = 24


def tagged_jobs(site) -> Counter:
    """Task id -> number of alice's jobs carrying it (squeue keeps finished jobs for MinJobAge)."""
    out = subprocess.run(["su", "alice", "-s", "/bin/sh", "-c", "squeue --states=all -h -o %k"],
                         env={**os.environ, **site.slurm_env}, capture_output=True, text=True, check=True).stdout
    return Counter(line.removeprefix("firecrest-task=") for line in out.split() if line.startswith("firecrest-task="))


def burst(api: Api, started: list[str], count: int) -> list[threading.Thread]:
    def one() -> None:
        try:
            reply = api.post("/jobs/upload", files={"file": ("j.sh", script("true"))})
        except requests.RequestException:
            return  # the connection died with the service: the client has no task to follow
        if reply.status_code == 201:
            started.append(reply.json()["task_id"])

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
        time.sleep(0.01)
    return threads


def settle(api: Api, task_ids: list[str], timeout: float = 90) -> dict[str, dict]:
    return {tid: api.wait(tid, timeout) for tid in task_ids}


def check(site, tasks: dict[str, dict]) -> None:
    tags = tagged_jobs(site)
    for tid, task in tasks.items():
        assert task["status"] in ("200", "400"), f"task {tid} left at {task['status']}: {task['data']}"
        assert tags[tid] <= 1, f"task {tid} submitted {tags[tid]} times"
        if task["status"] == "200":
            assert tags[tid] == 1, f"task {tid} reports job {task['data']['jobid']} but Slurm has none tagged"
        else:
            assert task["data"], "a failure without a reason"
    assert all(n == 1 for n in tags.values()), "a job was submitted twice"


def kill_service(site, name: str) -> None:
    master = int((site.dir / "run" / f"{name}.pid").read_text())
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    for pid in [master, *map(int, workers)]:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def api(site) -> Api:
    return Api(site, "alice", "compute")


def test_compute_killed_during_submissions(site, api):
    started: list[str] = []
    threads = burst(api, started, BURST)
    while len(started) < BURST // 3:
        time.sleep(0.005)
    kill_service(site, "compute")
    for t in threads:
        t.join()
    site.control("up")
    assert started
    check(site, settle(api, started))


def test_redis_restarted_during_submissions(site, api):
    started: list[str] = []
    threads = burst(api, started, BURST)
    while len(started) < BURST // 3:
        time.sleep(0.005)
    site.control("restart", "redis")
    for t in threads:
        t.join()
    check(site, settle(api, started))
    assert all(t["status"] == "200" for t in settle(api, started).values())
