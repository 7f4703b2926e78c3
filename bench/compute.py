"""Compute (job submission) through the gateway against the raw pooled-SSH floor measured in the same run.

(1) Submission throughput: C concurrent clients each POST /compute/jobs/upload a small `true` job for D seconds
    and poll GET /tasks/<id> (every ~5 ms) until the task is at 200; submissions/s end to end, submit-to-200
    latency, errors. Floor: C concurrent raw `sbatch --parsable` on pooled SSH as alice, exactly the line the
    service sends (compute/slurm.py's Submit, the site's timeout, an `ID=<uuid>` tag). Also printed: the host's
    CPU per submission by process group, and where a submission's time goes (the audit log's command times).
(2) sbatch-to-200: M sequential submissions, each polled by a dedicated poller (~2 ms); the time from sbatch
    returning on the login node (the audit log's record of the sbatch line, matched by our X-Request-ID) to the
    first poll that saw status "200".
(3) Tasks reads: wrk on GET /tasks/<id> through the gateway (64 connections); floor: the same wrk against the
    tasks service directly (FIRECREST_INTERNAL_TASKS_URL, the same token). The gateway limits each user to
    1000 req/s (kong/kong.yml): 429s are counted apart, and if there are any the load is run again split
    between alice and bob (each reading a task of their own).

Slurm runs these `true` jobs at only ~15/s here, far below the submission rates: after each run our own jobs still
queued are cancelled (scancel by id), and each measurement first waits for the host to be quiet. Finished jobs stay
in slurmctld's table for MinJobAge (300 s) and a full table (MaxJobCount 10000) makes sbatch time out: each run
makes ~1,600 jobs, so leave a few minutes between runs (the table's fill is printed).
Files made: the floor's script and job outputs (a directory under /home/alice, made as root), and each
submission's /home/<user>/firecrest/<task id>/; all removed at the end once their jobs have left the queue.
Usage (site up, as root): .venv/bin/python bench/compute.py [--clients 16] [--seconds 20] [--sequential 50]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pwd
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import ENV, Figures, RawSSH, percentile, report, service_line, site, token, wrk
from common.slurm.submit import Submit
from common.stack_env import stack_dir

USER = "alice"
SCRIPT = b"#!/bin/bash\ntrue\n"
SLURM_STATES_LEFT = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")


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


CPU_GROUPS = (("compute.app", "compute"), ("tasks.app", "tasks"), ("haproxy", "gateway"), ("sshd", "sshd"),
              ("slurmctld", "slurmctld"), ("munged", "munged"), ("slurmdbd", "slurmdbd"), ("mariadbd", "mariadb"),
              ("redis-server", "redis"))
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> tuple[float, dict[int, tuple[str, float]]]:
    """(host busy CPU ms, {pid: (group, CPU ms)}) for the site's long-lived processes and this one."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    busy = (user + nice + system + irq + softirq + steal) * TICK_MS
    procs: dict[int, tuple[str, float]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        group = "bench client" if int(d.name) == os.getpid() else next(
            (g for needle, g in CPU_GROUPS if needle in cmdline), None)
        if group:
            procs[int(d.name)] = (group, (int(stat[11]) + int(stat[12])) * TICK_MS)  # utime + stime
    return busy, procs


def cpu_line(before: tuple[float, dict[int, tuple[str, float]]], seconds: float, ops: int) -> str:
    """Host CPU use since `before`, per operation, split by process group; `other` is what ran in processes that
    came and went (the commands over SSH with their wrapper, sbatch/scontrol, munge clients, the jobs)."""
    busy, procs = cpu_snapshot()
    total = busy - before[0]
    groups: dict[str, float] = {}
    for pid, (group, ms) in procs.items():
        groups[group] = groups.get(group, 0) + ms - before[1].get(pid, (group, 0))[1]
    groups["other"] = total - sum(groups.values())
    cores = os.cpu_count() or 1
    parts = ", ".join(f"{g} {ms / ops:.1f}" for g, ms in sorted(groups.items(), key=lambda kv: -kv[1]) if ms > 0)
    return (f"host CPU {total / (seconds * 1000 * cores):.0%} busy of {cores} cores; {total / ops:.1f} CPU-ms per op: "
            f"{parts}")


def settle(max_s: float = 30, busy_below: float = 0.35) -> str:
    """Wait (up to max_s) for the host to be quiet: Slurm goes on working after a burst (cancelled jobs are
    written to slurmdbd/mariadb, queued ones are started), which would otherwise weigh on the next measurement."""
    start = time.monotonic()
    busy = 1.0
    while time.monotonic() - start < max_s:
        before = cpu_snapshot()[0]
        time.sleep(1)
        busy = (cpu_snapshot()[0] - before) / (1000 * (os.cpu_count() or 1))
        if busy < busy_below:
            break
    return f"waited {time.monotonic() - start:.0f} s for the host to settle (CPU {busy:.0%} busy)"


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


COMMANDS = ("mkdir", "dd", "sbatch", "scontrol")  # what one upload submission runs on the login node, in order


def audit_times(request_ids: set[str], wait_s: float = 5) -> dict[str, dict[str, float]]:
    """{request id: {"mkdir": t, "dd": t, "sbatch": t, "scontrol": t}}: when the login node saw each command of
    the submission finish (epoch s, from the audit log's `time`, ms resolution)."""
    log = stack_dir() / "log" / "audit.log"
    found: dict[str, dict[str, float]] = {}
    deadline = time.monotonic() + wait_s
    while True:
        with log.open() as f:
            for line in f:
                if '"request_id": "bench-' not in line:  # cheap filter before the JSON: all ours start so
                    continue
                record = json.loads(line)
                rid = record.get("request_id")
                if rid not in request_ids:
                    continue
                when = datetime.datetime.fromisoformat(record["time"]).timestamp()
                for word in COMMANDS:
                    if f" {word} " in record["command"]:
                        found.setdefault(rid, {}).setdefault(word, when)
        if all("sbatch" in found.get(rid, {}) for rid in request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)  # the collector writes a moment after the command


def phases(runs: dict[str, tuple[float, float]], audit: dict[str, dict[str, float]]) -> list[str]:
    """p50/p95 of each step of the submissions, from the POST to the poll that saw 200 (runs: request id ->
    (time.time() posted, time.time() 200 seen))."""
    steps = [("POST -> mkdir done (task created, queued)", None, "mkdir"), ("mkdir -> dd (script written)", "mkdir",
             "dd"), ("dd -> sbatch returned", "dd", "sbatch"), ("sbatch -> scontrol show job", "sbatch",
             "scontrol"), ("scontrol -> poll saw 200 (task update)", "scontrol", None)]
    lines = []
    for label, a, b in steps:
        values = []
        for rid, (posted, seen) in runs.items():
            t = audit.get(rid, {})
            start = posted if a is None else t.get(a)
            end = seen if b is None else t.get(b)
            if start is not None and end is not None:
                values.append((end - start) * 1000)
        if values:
            lines.append(f"{label:<42} p50 {percentile(values, 0.5):7.1f} ms  p95 {percentile(values, 0.95):7.1f} ms"
                         f"  (n {len(values)})")
    return lines


def slurm_env() -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": ENV.get("SLURM_CONF", str(stack_dir() / "slurm/etc/slurm.conf"))}


def job_ids_left(job_ids: set[str]) -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T", "--states=all"], capture_output=True, text=True,
                         env=slurm_env(), check=False).stdout
    return {jid for jid, state in (line.split()[:2] for line in out.splitlines() if line.strip())
            if jid in job_ids and state in SLURM_STATES_LEFT}


def job_records() -> str:
    """How full slurmctld's job table is: finished and cancelled jobs stay in it MinJobAge (300 s here), and at
    MaxJobCount (10000) sbatch retries until the service's 5 s remote timeout (the task ends 400, timeout)."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, env=slurm_env(),
                            check=False).stdout
    limit = next((line.split("=", 1)[1].strip() for line in config.splitlines() if line.startswith("MaxJobCount")),
                 "?")
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i"], capture_output=True, text=True,
                         env=slurm_env(), check=False).stdout
    return f"{len(out.splitlines())} of MaxJobCount {limit}"


def cancel_left(job_ids: set[str]) -> int:
    """scancel (as root) those of our own jobs still queued: Slurm runs these `true` jobs at only ~15/s here, far
    below the submission rate, so the backlog would otherwise weigh on the next measurement and outlive the run."""
    left = sorted(job_ids_left(job_ids), key=int)
    for i in range(0, len(left), 500):
        subprocess.run(["scancel", *left[i:i + 500]], env=slurm_env(), check=False, capture_output=True)
    deadline = time.monotonic() + 30
    while job_ids_left(set(left)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return len(left)


def section1(gw: Gateway, floor: Floor, clients: int, seconds: float, floor_seconds: float,
             poll_s: float) -> tuple[list[tuple[Figures, Figures | None]], list[str]]:
    gw.renew()
    runs: dict[str, tuple[float, float]] = {}  # request id -> (time.time() posted, time.time() 200 seen)
    failures: dict[str, int] = {}
    records = job_records()

    def fail(reason: str) -> bool:
        failures[reason] = failures.get(reason, 0) + 1
        return False

    def gateway_call() -> bool:
        rid = f"bench-c-{uuid.uuid4().hex}"
        posted = time.time()
        task_id = gw.submit(rid)
        if task_id is None:
            return fail("submission refused")
        status, data, seen = gw.wait(task_id, poll_s)
        if status != "200" or not str(data.get("jobid", "")).isdigit():
            detail = gw.detail(task_id) if status else "no outcome within 60 s"
            return fail(f"task {status}: {detail[:80]}")
        runs[rid] = (posted, seen)
        return True

    for _ in range(5):  # warm: the pool's connections, the token keys
        if not gateway_call() or not floor.sbatch():
            raise SystemExit("compute: the warm-up submission failed")
    settled = [settle()]
    cpu = cpu_snapshot()
    t0 = time.perf_counter()
    floor_fig, floor_p95 = closed_loop(f"floor: raw sbatch, {clients} concurrent channels", floor.sbatch,
                                       clients, floor_seconds)
    floor_cpu = cpu_line(cpu, time.perf_counter() - t0, len(floor.job_ids) - 5)
    cancelled = cancel_left(set(floor.job_ids))
    runs.clear()
    throttled, polls = gw.throttled, gw.polls
    settled.append(settle())
    records_gw = job_records()
    failures.clear()
    cpu = cpu_snapshot()
    t0 = time.perf_counter()
    gw_fig, gw_p95 = closed_loop(f"POST jobs/upload -> task 200, {clients} clients", gateway_call, clients,
                                 seconds)
    gw_cpu = cpu_line(cpu, time.perf_counter() - t0, max(1, len(runs)))
    polls, throttled = gw.polls - polls, gw.throttled - throttled
    cancelled_gw = cancel_left(set(gw.job_ids))
    notes = [f"{gw_fig.name}: {gw_fig.rps:.1f} submissions/s = {gw_fig.rps / floor_fig.rps:.2f} of the floor's "
             f"{floor_fig.rps:.1f} sbatch/s (target >= 50/s)",
             f"p95: gateway submit-to-200 {gw_p95:.1f} ms, floor sbatch {floor_p95:.1f} ms",
             f"task polls {polls} ({polls / seconds:.0f}/s, {polls / max(1, len(runs)):.1f} per submission); 429s "
             f"(per-user limit, retried): {throttled}",
             f"jobs still queued afterwards, cancelled: floor {cancelled}, gateway {cancelled_gw}",
             f"before the floor: {settled[0]}; before the gateway run: {settled[1]}",
             f"slurmctld job records before the floor: {records}, before the gateway run: {records_gw}",
             f"gateway errors: {failures or 'none'}",
             f"floor   {floor_cpu}",
             f"gateway {gw_cpu}",
             "where a gateway submission's time goes (audit log, by request id):"]
    notes += [f"  {line}" for line in phases(runs, audit_times(set(runs)))]
    return [(floor_fig, None), (gw_fig, floor_fig)], notes


def section2(gw: Gateway, n: int, poll_s: float) -> tuple[list[str], str]:
    """Sequential submissions, each followed by a dedicated poller thread; returns the report lines and the id
    of one finished task of the user (for section 3)."""
    settled = settle()
    gw.renew()
    todo: queue.Queue[str | None] = queue.Queue()
    seen: queue.Queue[tuple[str | None, float]] = queue.Queue()

    def poller() -> None:
        while (task_id := todo.get()) is not None:
            status, _, when = gw.wait(task_id, poll_s)
            seen.put((status, when))

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    runs: dict[str, tuple[str, float, float]] = {}  # request id -> (task id, time.time() posted, first 200 seen)
    errors = 0
    for _ in range(n):
        rid = f"bench-s-{uuid.uuid4().hex}"
        posted = time.time()
        task_id = gw.submit(rid)
        if task_id is None:
            errors += 1
            continue
        todo.put(task_id)
        status, when = seen.get()
        if status != "200":
            errors += 1
            continue
        runs[rid] = (task_id, posted, when)
    todo.put(None)
    thread.join()
    if not runs:
        raise SystemExit("sbatch-to-200: no submission reached 200")
    audit = audit_times(set(runs))
    to_200, post_to_sbatch = [], []
    for rid, (_, posted, when) in runs.items():
        times = audit.get(rid, {})
        if "sbatch" not in times:
            continue
        to_200.append((when - times["sbatch"]) * 1000)
        post_to_sbatch.append((times["sbatch"] - posted) * 1000)
    if not to_200:
        raise SystemExit("sbatch-to-200: no sbatch line found in the audit log")
    p = lambda v, q: percentile(v, q) if v else float("nan")  # noqa: E731
    lines = [
        settled,
        f"{len(to_200)} of {n} sequential submissions matched in the audit log by X-Request-ID; errors {errors}; "
        f"poll every {poll_s * 1000:.0f} ms",
        f"sbatch returned -> poller saw 200   p50 {p(to_200, 0.5):7.1f} ms  p95 {p(to_200, 0.95):7.1f} ms  "
        f"max {max(to_200):7.1f} ms  (target p50 <= 100 ms)",
        f"POST sent -> sbatch returned        p50 {p(post_to_sbatch, 0.5):7.1f} ms  p95 "
        f"{p(post_to_sbatch, 0.95):7.1f} ms  (mkdir, dd, sbatch)",
        "(audit times have 1 ms resolution, truncated; the 200 time is when that poll's response arrived)",
        "each step:",
        *(f"  {line}" for line in phases({rid: (posted, when) for rid, (_, posted, when) in runs.items()}, audit)),
    ]
    return lines, next(iter(runs.values()))[0]


PER_USER_429, PER_SOURCE_429 = "429 retry-after=1", "429 retry-after=10"  # the gateway's two limits (kong.yml)


def describe(codes: dict[str, int], seconds: int) -> str:
    names = {"200": "200", PER_USER_429: "429 per-user limit", PER_SOURCE_429: "429 per-source limit"}
    return ", ".join(f"{names.get(k, k)} {v} ({v / seconds:.0f}/s)" for k, v in sorted(codes.items()))


def section3(gateways: dict[str, Gateway], task_ids: dict[str, str], clients: int, seconds: int,
             ) -> tuple[list[tuple[Figures, Figures | None]], list[str]]:
    settled = settle()
    for gw in gateways.values():
        gw.renew()
    alice = gateways[USER]
    direct: dict[str, int] = {}
    floor = wrk(f"floor: tasks service direct, {clients} clients (wrk)",
                f"{ENV['FIRECREST_INTERNAL_TASKS_URL']}/{task_ids[USER]}",
                {"Authorization": alice.headers["Authorization"]}, clients, seconds, statuses=direct)
    codes: dict[str, int] = {}
    fig = wrk(f"GET /tasks/<id> as {USER}, {clients} clients (wrk)", f"{alice.url}/tasks/{task_ids[USER]}",
              alice.headers, clients, seconds, statuses=codes)
    rows: list[tuple[Figures, Figures | None]] = [(floor, None), (fig, floor)]
    ok = codes.get("200", 0) / seconds
    notes = [settled, f"direct:  {describe(direct, seconds)}", f"gateway: {describe(codes, seconds)}",
             f"{fig.name}: {ok:.0f} req/s answered 200 = {ok / floor.rps:.2f} of the floor's {floor.rps:.0f} "
             "(target >= 1000)"]
    if codes.get(PER_USER_429) or codes.get(PER_SOURCE_429):
        notes.append("  the gateway answered 429s (its req/s, p50 and errors above count them): one user cannot get "
                     "past 1000 req/s (per-user limit, checked after the RSA verification), one address past "
                     "5000 req/s (per-source, 50000 per 10 s)")
        time.sleep(11)  # the per-source window is 10 s: start the split run with it empty
        users = list(gateways)
        split: dict[str, dict[str, int]] = {u: {} for u in users}
        share = clients // len(users)
        with ThreadPoolExecutor(len(users)) as pool:
            figs = list(pool.map(lambda u: wrk(
                f"GET /tasks/<id> as {u}, {share} clients (wrk, concurrent)", f"{gateways[u].url}/tasks/{task_ids[u]}",
                gateways[u].headers, share, seconds, statuses=split[u]), users))
        rows += [(f, floor) for f in figs]
        ok = sum(c.get("200", 0) for c in split.values()) / seconds
        notes.append(f"split {'+'.join(users)} ({share}+{share} connections, each reading its own task): "
                     f"{sum(f.rps for f in figs):.0f} req/s together, {ok:.0f} req/s answered 200 = "
                     f"{ok / floor.rps:.2f} of the floor's")
        notes += [f"  {u}: {describe(c, seconds)}" for u, c in split.items()]
    return rows, notes


def cleanup(floor: Floor, gateways: dict[str, Gateway], wait_s: float) -> str:
    """Wait for the jobs to leave the queue (their outputs land in the directories), then remove the
    directories: the floor's, and each submission's /home/<user>/firecrest/<task id>."""
    job_ids = set(floor.job_ids)
    for gw in gateways.values():
        job_ids |= set(gw.job_ids)
    deadline = time.monotonic() + wait_s
    left = job_ids_left(job_ids) if job_ids else set()
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = job_ids_left(left)
    cancelled = cancel_left(left) if left else 0
    floor.raw.close()
    shutil.rmtree(floor.dir, ignore_errors=True)
    removed = 0
    base = site().systems[ENV["FIRECREST_SYSTEM"]].compute_base_fs
    for user, gw in gateways.items():
        for task_id in gw.task_ids:
            path = Path(base, user, "firecrest", task_id)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    text = f"removed {floor.dir} and {removed} job directories under {base}/<user>/firecrest"
    if cancelled:
        text += f" ({cancelled} of our jobs still queued after {wait_s:.0f} s were cancelled first)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16, help="concurrent submitters (section 1)")
    parser.add_argument("--seconds", type=int, default=20, help="duration of the gateway submission run")
    parser.add_argument("--floor-seconds", type=int, default=5, help="duration of the raw sbatch floor run")
    parser.add_argument("--poll-ms", type=float, default=5, help="task poll interval of the submitters")
    parser.add_argument("--sequential", type=int, default=50, help="submissions for the sbatch-to-200 time")
    parser.add_argument("--poller-ms", type=float, default=2, help="poll interval of the dedicated poller")
    parser.add_argument("--wrk-clients", type=int, default=64, help="connections of the tasks read run")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--drain-seconds", type=int, default=30, help="wait for the jobs to finish before cleanup")
    parser.add_argument("--gateway", default=ENV.get("FIRECREST_URL", ""))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the floor's script is made under /home/alice and the job directories "
                         "are removed at the end")

    gateways = {USER: Gateway(args.gateway, USER), "bob": Gateway(args.gateway, "bob")}
    floor = Floor()
    try:
        rows1, notes1 = section1(gateways[USER], floor, args.clients, args.seconds, args.floor_seconds,
                                 args.poll_ms / 1000)
        lines2, alice_task = section2(gateways[USER], args.sequential, args.poller_ms / 1000)
        bob = gateways["bob"]
        bob.renew()
        bob_task = bob.submit(f"bench-b-{uuid.uuid4().hex}")  # bob's own task, for a split read load
        if bob_task is None or bob.wait(bob_task, 0.01)[0] != "200":
            raise SystemExit("bob's submission failed")
        rows3, notes3 = section3(gateways, {USER: alice_task, "bob": bob_task}, args.wrk_clients,
                                 args.wrk_seconds)
    finally:
        cleaned = cleanup(floor, gateways, args.drain_seconds)

    print(f"floor line (a fresh uuid per call), e.g.\n  {floor.line(str(uuid.uuid4()))}\n{cleaned}")
    report("1. job submission, end to end (task at 200), vs raw sbatch on pooled SSH", rows1)
    for note in notes1:
        print(f"    {note}")
    print("\n== 2. sbatch returning -> task reported 200")
    for line in lines2:
        print(f"  {line}")
    report("3. GET /tasks/<id> through the gateway vs the tasks service directly", rows3)
    for note in notes3:
        print(f"    {note}")


if __name__ == "__main__":
    main()
