"""Soak: the fault tests' mixed load (bench/mixed_load.py) for --minutes (30 by default) on the native site, with what
every daemon holds at start and end and the requests' errors and latency per minute. Not in CI.

    .venv/bin/python bench/soak.py [--minutes 30] [--warmup 60] [--quiet 35]   (as root, on the site's host)

Baseline. A sample taken under load counts the requests in flight, and one taken cold counts none of the pools,
caches and thread pools a warm process keeps; neither compares with the end. So the soak first runs the same load
for --warmup seconds (60: every worker has then run each kind of call, opened its SSH connections and grown its
threads), stops it and lets every task end, waits --quiet seconds (35: more than the services' HTTP keep-alive,
30 s, and the gateway's, 10 s, so the load's idle connections are closed) and samples: the baseline is the site at
rest after the load. The end is sampled the same way after the soak's load stopped and settled, so the two differ by
what the soak's load left behind. What stays legitimately: each service worker keeps its SSH connections until its
user's next command finds them idle (common/ssh.py closes idle ones on the way, not on a timer), so the pools'
gauges are printed at both ends too.

Goals (issue 17): RSS growth at most 10% for each service, the gateway and the login node's sshd; no daemon holding
more descriptors or connections at the end than at the start; no error other than 429 (warm-up included); nothing
lost (MixedLoad.settle: every task ended, no job submitted twice, every transfer's bytes right). A daemon restarted
between the two samples (by someone else) fails the run too: its figures compare two processes. Exit status 1 when
a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import COMPOSE, ENV, site_label
from bench.mixed_load import MixedLoad, Outcome
from bench.site_resources import THREADS_GAUGE, Resources, daemons, sample, ssh_pools, thread_kinds
from bench.soak_report import (
    ROW_HEADER,
    Row,
    error_kind,
    per_minute,
    per_op,
    resource_table,
    restarts,
    total,
    verdicts,
)
from common.stack_env import stack_dir

SETTLE_S = 300  # MixedLoad.settle: how long the tasks the load started may take to end
SHOWN_ERRORS = 20  # kinds of error printed (operation, kind, answer), the most frequent first


def goal_daemons() -> set[str]:
    """The daemons of the RSS goal: the services (the names of their internal URLs), the gateway, the login node."""
    prefix, suffix = "FIRECREST_INTERNAL_", "_URL"
    services = {k[len(prefix):-len(suffix)].lower() for k in ENV if k.startswith(prefix) and k.endswith(suffix)}
    return services | {"haproxy", "sshd"}


def run_load(workdir: Path, seconds: float, progress: bool) -> tuple[MixedLoad, float, float, list[str]]:
    """The mixed load for `seconds`, stopped and settled: (the load, its start and stop times, settle's problems)."""
    load = MixedLoad(ENV, workdir)
    t0 = time.monotonic()
    load.start()
    try:
        minute = 0
        while (now := time.monotonic()) < t0 + seconds:
            time.sleep(max(0.0, min(t0 + seconds, t0 + 60 * (minute + 1)) - now))
            if time.monotonic() >= t0 + 60 * (minute + 1):
                if progress:
                    done = load.since(t0 + 60 * minute, t0 + 60 * (minute + 1))
                    print(f"soak: minute {minute + 1}: {len(done)} recorded, "
                          f"{sum(error_kind(o) is not None for o in done)} errors, "
                          f"{sum(o.status == 429 for o in done)} 429", file=sys.stderr, flush=True)
                minute += 1
    except BaseException:  # interrupted: nothing to report, but the users' directories go
        load.stop()
        load.cleanup()
        raise
    t1 = time.monotonic()
    load.stop()
    problems = load.settle(SETTLE_S)
    load.cleanup()
    for user in load.users:  # its keep-alive connections (Keycloak keeps them open) would count as the site's
        user.session.close()
    return load, t0, t1, problems


@dataclass
class Rest:
    """The site at rest: each daemon's resources and pid, the services' SSH pools and threads by kind."""

    resources: dict[str, Resources]
    pids: dict[str, int]
    pools: dict[str, dict[str, float]]
    threads: dict[str, dict[str, float]]


def at_rest(quiet: float, what: str) -> Rest:
    print(f"soak: {quiet:.0f} s quiet, then the {what} sample", file=sys.stderr, flush=True)
    time.sleep(quiet)
    return Rest(sample(stack_dir()), daemons(stack_dir()), ssh_pools(ENV), thread_kinds(ENV))


def wall(started: float) -> str:
    """A monotonic time as UTC wall-clock time, to match against the site's logs and the restarts of others."""
    return time.strftime("%H:%M:%S", time.gmtime(time.time() - (time.monotonic() - started)))


def show_errors(outcomes: list[Outcome]) -> None:
    """The errors grouped by operation, kind and answer, with their count and first and last time."""
    groups: dict[tuple[str, str, str], list[Outcome]] = {}
    for o in outcomes:
        kind = error_kind(o)
        if kind is not None:
            groups.setdefault((o.op, kind, (o.error or o.body)[:160].strip()), []).append(o)
    if not groups:
        return
    print(f"\n== errors: {sum(map(len, groups.values()))} in {len(groups)} kinds (UTC of first and last)")
    for (op, kind, text), found in sorted(groups.items(), key=lambda g: -len(g[1]))[:SHOWN_ERRORS]:
        first, last = min(o.started for o in found), max(o.started for o in found)
        print(f"  {len(found):5d}  {op} {kind}  {wall(first)}-{wall(last)}  {text!r}")


def show_gauges(title: str, start: dict[str, dict[str, float]], end: dict[str, dict[str, float]]) -> None:
    """One line per service: each label's value at the start and at the end."""
    print(f"\n== {title}, start / end")
    for service in sorted(start.keys() | end.keys()):
        labels = sorted(start.get(service, {}).keys() | end.get(service, {}).keys())
        cells = [f"{s} {start.get(service, {}).get(s, 0):.0f}/{end.get(service, {}).get(s, 0):.0f}" for s in labels]
        print(f"  {service:<14} {', '.join(cells)}")


def report(warm: list[Outcome], soak: list[Outcome], t0: float, t1: float, problems: list[str]) -> Row:
    minutes = per_minute(soak, t0, t1)
    warm_row = total(per_op(warm), "warm-up")
    whole = total([warm_row, *minutes])
    print("\n== requests per minute (latency of answered requests other than 429; errors by status or exception)")
    print("  " + ROW_HEADER)
    for row in [warm_row, *minutes, whole]:
        print("  " + row.line())
    print("\n== requests per operation (warm-up and soak)")
    print("  " + ROW_HEADER)
    for row in per_op(warm + soak):
        print("  " + row.line())
    show_errors(warm + soak)
    if problems:
        print(f"\n== settle: {len(problems)} problems")
        for line in problems[:50]:
            print(f"  {line}")
    return whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="the soak's length (default 30)")
    parser.add_argument("--warmup", type=float, default=60, help="seconds of load before the baseline (default 60)")
    parser.add_argument("--quiet", type=float, default=35, help="seconds at rest before each sample (default 35)")
    args = parser.parse_args()
    if COMPOSE or os.geteuid() != 0:
        raise SystemExit("the soak runs as root on the native site's host (the load and /proc need it)")
    print(f"soak: {site_label()}; {args.minutes:g} min after {args.warmup:g} s of warm-up", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        warm, _, _, problems = run_load(workdir, args.warmup, progress=False)
        start = at_rest(args.quiet, "start")
        load, t0, t1, more = run_load(workdir, args.minutes * 60, progress=True)
        end = at_rest(args.quiet, "end")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"soak: load from {wall(t0)} to {wall(t1)} UTC")
    whole = report(warm.outcomes, load.outcomes, t0, t1, problems + more)
    print("\n== each daemon at rest: start / end (RSS is the sum over its processes)")
    for line in resource_table(start.resources, end.resources):
        print("  " + line)
    show_gauges("SSH connections the services' pools hold (firecrest_ssh_pool_connections)", start.pools, end.pools)
    show_gauges(f"threads of the services' workers by kind ({THREADS_GAUGE})", start.threads, end.threads)
    results = [*verdicts(start.resources, end.resources, goal_daemons(), whole, problems + more),
               restarts(start.pids, end.pids)]
    print("\n== goals")
    for verdict in results:
        print("  " + verdict.line())
    print(json.dumps({"minutes": args.minutes, "requests": whole.requests, "throttled": whole.throttled,
                      "errors": dict(whole.errors), "start": {k: vars(v) for k, v in start.resources.items()},
                      "end": {k: vars(v) for k, v in end.resources.items()}, "goals": [vars(v) for v in results]}),
          file=sys.stderr)
    sys.exit(0 if all(v.ok for v in results) else 1)

if __name__ == "__main__":
    main()
