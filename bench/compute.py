"""Compute (job submission) through the gateway against the raw pooled-SSH floor measured in the same run.

(1) Submission throughput: C concurrent clients each POST /compute/jobs/upload a small `true` job for D seconds
    and poll GET /tasks/<id> (every ~5 ms) until the task is at 200; submissions/s end to end, submit-to-200
    latency, errors. Floor: C concurrent raw `sbatch --parsable` on pooled SSH as alice, exactly the line the
    service sends (compute/slurm.py's Submit, the site's timeout, an `ID=<uuid>` tag). Also printed: the host's
    CPU per submission by process group, and where a submission's time goes (the audit log's command times).
(2) Job id known: M sequential submissions in the contract's flow (POST /compute/jobs/upload, then GET
    /tasks/<id> at once and every 20 ms until 200), the time until the job id is known; floor: M sequential raw
    sbatch on pooled SSH. Also: polls per submission and where the time goes (audit log, by X-Request-ID).
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
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import ENV, Figures, percentile, report, site, wrk
from bench.compute_host import (
    audit_times,
    cancel_left,
    cpu_line,
    cpu_snapshot,
    job_ids_left,
    job_records,
    phases,
    settle,
)
from bench.compute_load import USER, Floor, Gateway, closed_loop, now_ms


def loop_with_cpu(name: str, call: Callable[[], bool], clients: int, seconds: float,
                  ops: Callable[[], int]) -> tuple[Figures, float, str]:
    """closed_loop, and the host's CPU use over it per operation (ops() is counted once the loop has ended)."""
    cpu = cpu_snapshot()
    t0 = time.perf_counter()
    fig, p95 = closed_loop(name, call, clients, seconds)
    return fig, p95, cpu_line(cpu, time.perf_counter() - t0, ops())


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
            raise SystemExit(f"compute: the warm-up submission failed: {failures or 'the raw sbatch'}")
    settled = [settle()]
    floor_fig, floor_p95, floor_cpu = loop_with_cpu(f"floor: raw sbatch, {clients} concurrent channels",
                                                    floor.sbatch, clients, floor_seconds,
                                                    lambda: len(floor.job_ids) - 5)
    cancelled = cancel_left(set(floor.job_ids))
    runs.clear()
    throttled, polls = gw.throttled, gw.polls
    settled.append(settle())
    records_gw = job_records()
    failures.clear()
    gw_fig, gw_p95, gw_cpu = loop_with_cpu(f"POST jobs/upload -> task 200, {clients} clients", gateway_call,
                                           clients, seconds, lambda: max(1, len(runs)))
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


def section2(gw: Gateway, floor: Floor, n: int, poll_s: float) -> tuple[list[tuple[Figures, Figures | None]],
                                                                       list[str], str]:
    """The contract's flow, one submission at a time: POST /compute/jobs/upload, then GET /tasks/<id> at once and
    every `poll_s` until 200; the time until the job id is known, against one raw sbatch on pooled SSH. Returns
    the rows, the notes and the id of one finished task of the user (for section 3)."""
    settled = settle()
    gw.renew()
    raw: list[float] = []
    for _ in range(n):
        t0 = now_ms()
        if floor.sbatch():
            raw.append(now_ms() - t0)
    runs: dict[str, tuple[float, float]] = {}  # request id -> (time.time() posted, time.time() 200 seen)
    known: list[float] = []
    polls, errors, task_id = gw.polls, 0, ""
    for _ in range(n):
        rid = f"bench-s-{uuid.uuid4().hex}"
        posted, t0 = time.time(), now_ms()
        submitted = gw.submit(rid)
        status, data, seen = gw.wait(submitted, poll_s) if submitted else (None, {}, 0.0)
        if status != "200" or not str(data.get("jobid", "")).isdigit():
            errors += 1
            continue
        known.append(now_ms() - t0)
        runs[rid], task_id = (posted, seen), submitted or ""
    if not known or not raw:
        raise SystemExit("job id known: no submission reached 200")
    floor_fig = Figures("floor: raw sbatch, sequential", statistics.median(raw), percentile(raw, 0.99),
                        len(raw) / (sum(raw) / 1000), n - len(raw))
    fig = Figures(f"POST + GET /tasks/<id> every {poll_s * 1000:.0f} ms until 200, sequential",
                  statistics.median(known), percentile(known, 0.99), len(known) / (sum(known) / 1000), errors)
    notes = [settled,
             f"job id known: p50 {fig.p50_ms:.1f} ms = {fig.p50_ms / floor_fig.p50_ms:.2f}x one raw sbatch "
             f"({floor_fig.p50_ms:.1f} ms); p95 {percentile(known, 0.95):.1f} ms (target: <= about 2x)",
             f"task polls per submission: {(gw.polls - polls) / len(known):.2f} (1.00: the first poll found 200)",
             "where a submission's time goes (audit log, by request id):",
             *(f"  {line}" for line in phases(runs, audit_times(set(runs))))]
    return [(floor_fig, None), (fig, floor_fig)], notes, task_id


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
    parser.add_argument("--sequential", type=int, default=50, help="sequential submissions (section 2)")
    parser.add_argument("--sequential-poll-ms", type=float, default=20, help="task poll interval (section 2)")
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
        rows2, notes2, alice_task = section2(gateways[USER], floor, args.sequential, args.sequential_poll_ms / 1000)
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
    report("2. submitting a job until its id is known (the contract's flow), one at a time", rows2)
    for note in notes2:
        print(f"    {note}")
    report("3. GET /tasks/<id> through the gateway vs the tasks service directly", rows3)
    for note in notes3:
        print(f"    {note}")


if __name__ == "__main__":
    main()
