"""The soak's figures from what it recorded: requests, errors and latency per minute and per operation, each daemon's
resources at start and end, and a verdict per goal. Pure (no site): tests/unit/test_soak.py checks it.

Outcomes are `bench.mixed_load.Outcome`s; only their fields are read (op, started, elapsed, status, error), so
anything with those fields does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.site_resources import Resources
from bench.stats import percentile

THROTTLED = 429  # the one refusal the goals accept: a bound of the gateway or of a service, with Retry-After
# Outcomes that MixedLoad records about an answer it already recorded (a 2xx whose content was untrue) or about
# itself: a finding, counted as an error, not a request of its own.
FINDINGS = ("wrong answer", "load error")
RSS_GROWTH_LIMIT = 10.0  # percent, per daemon of the goal


class OutcomeLike(Protocol):
    op: str
    started: float
    elapsed: float
    status: int | None
    error: str | None


def is_finding(o: OutcomeLike) -> bool:
    return bool(o.error) and o.error.startswith(FINDINGS)  # type: ignore[union-attr]


def error_kind(o: OutcomeLike) -> str | None:
    """What went wrong, as the tables count it: the exception's name for no answer, the status for an error status,
    the finding's kind; None for a success or a 429."""
    if o.status is None:
        return (o.error or "no answer").split(":", 1)[0]
    if is_finding(o):
        return next(kind for kind in FINDINGS if o.error.startswith(kind))  # type: ignore[union-attr]
    if o.status == THROTTLED or o.status < 400:
        return None
    return str(o.status)


@dataclass
class Row:
    """One line of a table: the requests of a minute or of an operation."""

    label: str
    requests: int = 0
    throttled: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # answered requests other than 429

    def add(self, o: OutcomeLike) -> None:
        kind = error_kind(o)
        if kind:
            self.errors[kind] += 1
        if is_finding(o):
            return
        self.requests += 1
        self.throttled += o.status == THROTTLED
        if o.status is not None and o.status != THROTTLED:
            self.latencies_ms.append(o.elapsed * 1000)

    def q(self, quantile: float) -> float | None:
        return percentile(self.latencies_ms, quantile) if self.latencies_ms else None

    def line(self) -> str:
        def ms(value: float | None) -> str:
            return f"{value:8.1f}" if value is not None else f"{'-':>8}"

        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "-"
        top = max(self.latencies_ms) if self.latencies_ms else None
        return (f"{self.label:<16} {self.requests:6d} {self.throttled:5d}  {ms(self.q(0.5))} {ms(self.q(0.95))} "
                f"{ms(self.q(0.99))} {ms(top)}  {errors}")


ROW_HEADER = f"{'':<16} {'reqs':>6} {'429':>5}  {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors"


def per_minute(outcomes: Iterable[OutcomeLike], t0: float, t1: float) -> list[Row]:
    """One row per minute from t0 (the load's start) to t1 (its stop), by when each request started, then one row
    for the requests started after t1 (MixedLoad.settle's polls); a minute without any request still has its row (a
    stall shows). The last minute may be partial; a second's overrun of the sleep makes no row of its own."""
    count = max(1, math.ceil((t1 - t0 - 1) / 60))
    rows = [Row(f"minute {i + 1}") for i in range(count)] + [Row("settle")]
    for o in outcomes:
        index = count if o.started >= t1 else min(count - 1, max(0, int((o.started - t0) // 60)))
        rows[index].add(o)
    return rows


def per_op(outcomes: Iterable[OutcomeLike]) -> list[Row]:
    rows: dict[str, Row] = {}
    for o in outcomes:
        rows.setdefault(o.op, Row(o.op)).add(o)
    return [rows[k] for k in sorted(rows)]


def total(rows: Sequence[Row], label: str = "all") -> Row:
    whole = Row(label)
    for row in rows:
        whole.requests += row.requests
        whole.throttled += row.throttled
        whole.errors.update(row.errors)
        whole.latencies_ms += row.latencies_ms
    return whole


def growth(before: float, after: float) -> float:
    """Percent change; from 0 anything more is infinite growth, nothing more none."""
    if before == 0:
        return 0.0 if after == 0 else float("inf")
    return (after - before) / before * 100


def resource_table(start: dict[str, Resources], end: dict[str, Resources]) -> list[str]:
    lines = [f"{'daemon':<26} {'procs':>9} {'RSS MiB start':>13} {'end':>8} {'growth':>8}  {'fds':>9}  "
             f"{'connections':>11}  {'threads':>9}"]
    for name in sorted(start.keys() | end.keys()):
        a, b = start.get(name), end.get(name)
        if a is None or b is None:
            lines.append(f"{name:<26} {'only at start' if b is None else 'only at end'}")
            continue
        rss = f"{a.rss_kib / 1024:13.1f} {b.rss_kib / 1024:8.1f} {growth(a.rss_kib, b.rss_kib):+7.1f}%"
        lines.append(f"{name:<26} {a.processes:>4}/{b.processes:<4} {rss}  {a.fds:>4}/{b.fds:<4}  "
                     f"{a.connections:>5}/{b.connections:<5}  {a.threads:>4}/{b.threads:<4}")
    return lines


@dataclass
class Verdict:
    goal: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.goal}: {self.detail}"


def slack(at_start: int) -> int:
    """How many more descriptors or connections than at the start a daemon may hold at rest at the end without it
    counting as a leak: 2 + 2%. At rest a daemon still holds what its pools kept, sized by the peak concurrency it
    saw (redis-py's connections, urllib3's sockets, their peers' keep-alive closed, in CLOSE_WAIT until next used);
    a leak grows with the requests: one per thousand requests is some 40 in a 30-minute soak."""
    return 2 + at_start // 50


def new_threads(start: dict[str, Resources], end: dict[str, Resources], owners: Iterable[str]) -> dict[str, int]:
    """{daemon: how many of its connections (and descriptors) new threads explain}. A thread keeps its own
    keep-alive connection where the client is not thread-safe (storage's threads each hold one to Swift: closed
    after each piece of work, swiftclient's sockets wait in reference cycles for a garbage collection instead);
    pools grow to the peak concurrency they saw, up to their size. For an owner (a service, sshd) its own new
    threads; for any other daemon (the far end: Swift's proxy, Redis) all the owners' new threads."""
    grown = {n: max(0, end[n].threads - start[n].threads) for n in owners if n in start and n in end}
    return {n: grown.get(n, sum(grown.values())) for n in start}


def leaks(start: dict[str, Resources], end: dict[str, Resources], what: str,
          explained: dict[str, int] | None = None) -> tuple[list[str], list[str]]:
    """(daemons grown past their slack and what their new threads explain, daemons grown within it) in `what`
    ("fds" or "connections")."""
    over: list[str] = []
    within: list[str] = []
    for name in sorted(set(start) & set(end)):
        a, b = getattr(start[name], what), getattr(end[name], what)
        allowed = slack(a) + (explained or {}).get(name, 0)
        if b > a:
            (over if b > a + allowed else within).append(f"{name} {a}->{b}")
    return over, within


def leak_verdict(goal: str, start: dict[str, Resources], end: dict[str, Resources], what: str,
                 explained: dict[str, int] | None = None) -> Verdict:
    over, within = leaks(start, end, what, explained)
    missing = [f"{n} running at one end only" for n in sorted(set(start) ^ set(end))]
    detail = "; ".join(over + missing) or "none more than at start (+2 and 2%, and one per new thread)"
    if within:
        detail += f"; within the slack: {', '.join(within)}"
    return Verdict(goal, not over and not missing, detail)


def restarts(pids_start: dict[str, int], pids_end: dict[str, int]) -> Verdict:
    """The same process of each daemon at both ends: one restarted (by someone else: the soak restarts nothing)
    compares a fresh process with an old one, and the run's errors are likely its downtime's."""
    changed = [f"{n} pid {pids_start.get(n, '-')}->{pids_end.get(n, '-')}"
               for n in sorted(pids_start.keys() | pids_end.keys()) if pids_start.get(n) != pids_end.get(n)]
    return Verdict("no daemon restarted during the soak", not changed,
                   "; ".join(changed) + " (the figures compare different processes)" if changed else "none")


def verdicts(start: dict[str, Resources], end: dict[str, Resources], goal_daemons: Iterable[str], whole: Row,
             problems: Sequence[str]) -> list[Verdict]:
    """The soak's goals: RSS growth <= 10% for each daemon of `goal_daemons` (the services, the gateway, sshd); for
    every daemon, descriptors and connections at the end (at rest) no more than at the start (at rest, after the
    same load) give or take `slack` and what new threads explain (`new_threads`); no error but 429; nothing lost
    (MixedLoad.settle's problems). (`restarts` says whether the run measured what it meant to.)"""
    grown = [f"{n} {growth(start[n].rss_kib, end[n].rss_kib):+.1f}%" for n in sorted(goal_daemons)
             if n in start and n in end and growth(start[n].rss_kib, end[n].rss_kib) > RSS_GROWTH_LIMIT]
    absent = [n for n in sorted(goal_daemons) if n not in start or n not in end]
    explained = new_threads(start, end, goal_daemons)
    errors = sum(whole.errors.values())
    requests = f"{whole.throttled} 429 of {whole.requests} requests"
    return [
        Verdict(f"RSS growth <= {RSS_GROWTH_LIMIT:.0f}% per service", not grown and not absent,
                "; ".join(grown + [f"{n} not sampled at both ends" for n in absent]) or "every one within"),
        leak_verdict("descriptors back to baseline", start, end, "fds", explained),
        leak_verdict("connections back to baseline", start, end, "connections", explained),
        Verdict("0 errors other than 429", errors == 0,
                f"{errors} ({', '.join(f'{k}: {v}' for k, v in sorted(whole.errors.items()))}); {requests}"
                if errors else f"none; {requests}"),
        Verdict("nothing lost (settle)", not problems, f"{len(problems)} problems" if problems else "none"),
    ]
