"""The load of bench/compute.py: submissions and task polls through the gateway, the raw sbatch floor on pooled
SSH, and the closed loop that runs either of them from concurrent clients."""

from __future__ import annotations

import os
import pwd
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.common_bench import ENV, Figures, RawSSH, percentile, service_line, token
from common.slurm.submit import Submit

USER = "alice"
SCRIPT = b"#!/bin/bash\ntrue\n"


def now_ms() -> float:
    return time.perf_counter() * 1000


class Gateway:
    """Submissions and task polls through the gateway, one requests.Session per thread."""

    def __init__(self, url: str, user: str) -> None:
        self.url, self.user = url, user
        self.local = threading.local()
        self.renew()
        self.lock = threading.Lock()
        self.task_ids: list[str] = []
        self.job_ids: list[str] = []
        self.throttled = 0  # 429s (the per-user limit), on submissions and polls
        self.polls = 0

    def renew(self) -> None:  # tokens live 5 minutes: a fresh one per section
        self.headers = {"Authorization": f"Bearer {token(self.user)}", "X-Machine-Name": ENV["FIRECREST_SYSTEM"]}

    @property
    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def submit(self, request_id: str) -> str | None:
        """The task id, or None when the submission was refused (after retrying 429s)."""
        while True:
            r = self.session.post(f"{self.url}/compute/jobs/upload", headers={**self.headers,
                                  "X-Request-ID": request_id}, files={"file": ("bench-job.sh", SCRIPT)},
                                  timeout=30)
            if r.status_code != 429:
                break
            with self.lock:
                self.throttled += 1
            time.sleep(0.005)
        if r.status_code != 201:
            return None
        task_id = r.json()["task_id"]
        with self.lock:
            self.task_ids.append(task_id)
        return task_id

    def status(self, task_id: str) -> tuple[str | None, dict]:
        """The task's status ("100", "200", "400"...), or None for a throttled or failed read."""
        r = self.session.get(f"{self.url}/tasks/{task_id}", headers=self.headers, timeout=30)
        with self.lock:
            self.polls += 1
            self.throttled += r.status_code == 429
        if r.status_code == 429:
            return None, {}
        if r.status_code != 200:
            return None, {}
        task = r.json()["task"]
        return str(task["status"]), task.get("data") if isinstance(task.get("data"), dict) else {}

    def detail(self, task_id: str) -> str:
        """The task's data as text (the error message of a task at 400)."""
        r = self.session.get(f"{self.url}/tasks/{task_id}", headers=self.headers, timeout=30)
        return str(r.json().get("task", {}).get("data")) if r.status_code == 200 else f"HTTP {r.status_code}"

    def wait(self, task_id: str, interval_s: float, timeout_s: float = 60) -> tuple[str | None, dict, float]:
        """Poll until the task has finished: (status, data, time.time() of the poll that saw it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, data = self.status(task_id)
            seen = time.time()
            if status is not None and status not in ("100", "101"):
                if str(data.get("jobid", "")).isdigit():
                    with self.lock:
                        self.job_ids.append(str(data["jobid"]))
                return status, data, seen
            time.sleep(interval_s)
        return None, {}, time.time()

def closed_loop(name: str, call: Callable[[], bool], clients: int, seconds: float) -> tuple[Figures, float]:
    """`clients` threads each repeating `call` for `seconds`; (figures, p95 ms). req/s counts the good calls,
    over the time until the last one ended."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = time.perf_counter()
    end = start + seconds

    def loop(_: int) -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t0 = now_ms()
            good = call()
            dt = now_ms() - t0
            with lock:
                if good:
                    latencies.append(dt)
                else:
                    errors += 1

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(loop, range(clients)))
    elapsed = time.perf_counter() - start
    if not latencies:
        raise SystemExit(f"{name}: no call succeeded ({errors} errors)")
    fig = Figures(name, statistics.median(latencies), percentile(latencies, 0.99), len(latencies) / elapsed, errors)
    return fig, percentile(latencies, 0.95)


class Floor:
    """The floor's own directory under the user's home (made as root, owned by the user): the batch script, and
    the jobs' working directory (their slurm-N.out)."""

    def __init__(self) -> None:
        self.dir = Path(f"/home/{USER}/.bench-compute-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.script = self.dir / "bench-job.sh"
        account = pwd.getpwnam(USER)
        self.dir.mkdir(0o755)
        self.script.write_bytes(SCRIPT)
        self.script.chmod(0o755)
        for p in (self.dir, self.script):
            os.chown(p, account.pw_uid, account.pw_gid)
        self.raw = RawSSH(USER)
        self.job_ids: list[str] = []
        self.lock = threading.Lock()

    def line(self, request_id: str) -> str:
        return service_line(Submit(str(self.script), str(self.dir), f"bench-{request_id}"), request_id)

    def sbatch(self) -> bool:
        status, out = self.raw.run(self.line(str(uuid.uuid4())))
        jobid = out.strip().split(b";")[0].decode()
        if status != 0 or not jobid.isdigit():
            return False
        with self.lock:
            self.job_ids.append(jobid)
        return True
