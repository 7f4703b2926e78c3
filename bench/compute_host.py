"""The host side of bench/compute.py: CPU use by process group, waiting for the host to settle, the audit log's
command times, and the Slurm queue (our jobs left, the job table's fill, cancelling)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import time
from pathlib import Path

from bench.common_bench import ENV, percentile
from common.stack_env import stack_dir

SLURM_STATES_LEFT = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
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

COMMANDS = ("tar", "sbatch", "scontrol")  # what an upload submission may run on the login node


def audit_times(request_ids: set[str], wait_s: float = 5) -> dict[str, dict[str, tuple[float, float]]]:
    """{request id: {"tar": (started, ended), "sbatch": (...), ...}}: when the login node saw each command of the
    submission start and end (epoch s, from the audit log's `started` and `time`, ms resolution)."""
    log = stack_dir() / "log" / "audit.log"
    found: dict[str, dict[str, tuple[float, float]]] = {}
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
                ended = datetime.datetime.fromisoformat(record["time"]).timestamp()
                started = datetime.datetime.fromisoformat(record.get("started", record["time"])).timestamp()
                for word in COMMANDS:
                    if f" {word} " in record["command"]:
                        found.setdefault(rid, {}).setdefault(word, (started, ended))
        if all("sbatch" in found.get(rid, {}) for rid in request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)  # the collector writes a moment after the command


def phases(runs: dict[str, tuple[float, float]], audit: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    """p50/p95 of each step of the submissions, from the POST to the poll that saw 200 (runs: request id ->
    (time.time() posted, time.time() 200 seen)); and how many ran `tar` before sbatch, at the same time, or not."""
    steps = [("POST -> sbatch started (task created)", lambda t, posted, seen: t["sbatch"][0] - posted),
             ("sbatch on the login node", lambda t, posted, seen: t["sbatch"][1] - t["sbatch"][0]),
             ("sbatch returned -> poll saw 200", lambda t, posted, seen: seen - t["sbatch"][1]),
             ("tar on the login node", lambda t, posted, seen: t["tar"][1] - t["tar"][0])]
    lines = []
    for label, step in steps:
        values = []
        for rid, (posted, seen) in runs.items():
            with contextlib.suppress(KeyError):
                values.append(step(audit.get(rid, {}), posted, seen) * 1000)
        if values:
            lines.append(f"{label:<42} p50 {percentile(values, 0.5):7.1f} ms  p95 {percentile(values, 0.95):7.1f} ms"
                         f"  (n {len(values)})")
    order = {"before": 0, "alongside": 0, "none": 0}
    for times in (audit.get(rid, {}) for rid in runs):
        if "sbatch" in times:
            tar = times.get("tar")
            order["none" if tar is None else "before" if tar[1] <= times["sbatch"][0] else "alongside"] += 1
    lines.append(f"tar before sbatch {order['before']}, alongside it (directory made ahead) {order['alongside']}, "
                 f"none {order['none']}")
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
