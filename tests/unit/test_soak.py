"""The soak's report (bench/soak_report.py): errors by kind, percentiles, per-minute rows and the verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from bench.site_resources import Resources
from bench.soak_report import (
    Row,
    error_kind,
    growth,
    leak_verdict,
    new_threads,
    per_minute,
    per_op,
    resource_table,
    restarts,
    slack,
    total,
    verdicts,
)
from bench.stats import percentile


@dataclass
class Out:
    op: str = "ls"
    started: float = 0.0
    elapsed: float = 0.010
    status: int | None = 200
    error: str | None = None


def test_percentile_is_nearest_rank_from_above() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51
    assert percentile(values, 0.99) == 100
    assert percentile([7.0], 0.95) == 7


def test_error_kinds() -> None:
    assert error_kind(Out(status=200)) is None
    assert error_kind(Out(status=429)) is None
    assert error_kind(Out(status=503)) == "503"
    assert error_kind(Out(status=404)) == "404"
    assert error_kind(Out(status=None, error="ReadTimeout: read timed out")) == "ReadTimeout"
    assert error_kind(Out(status=200, error="wrong answer: x missing from the listing")) == "wrong answer"


def test_row_counts_429_apart_and_keeps_their_latency_out() -> None:
    row = Row("r")
    for o in [Out(elapsed=0.1), Out(elapsed=0.3), Out(status=429, elapsed=0.001),
              Out(status=None, error="ConnectionError: refused", elapsed=2.0)]:
        row.add(o)
    assert (row.requests, row.throttled, dict(row.errors)) == (4, 1, {"ConnectionError": 1})
    assert row.latencies_ms == [100.0, 300.0]
    assert row.q(0.5) == 300.0
    assert "ConnectionError: 1" in row.line()


def test_a_finding_is_an_error_but_not_a_request() -> None:
    row = Row("r")
    row.add(Out())
    row.add(Out(status=200, elapsed=0.0, error="wrong answer: the bytes differ"))
    assert (row.requests, dict(row.errors), row.latencies_ms) == (1, {"wrong answer": 1}, [10.0])


def test_an_empty_row_prints_dashes() -> None:
    assert Row("minute 3").q(0.99) is None
    assert Row("minute 3").line().split()[2:8] == ["0", "0", "-", "-", "-", "-"]


def test_per_minute_buckets_by_start_and_keeps_empty_minutes() -> None:
    t0 = 1000.0
    outs = [Out(started=t0 + 1), Out(started=t0 + 59.9), Out(started=t0 + 60), Out(started=t0 + 185, status=503),
            Out(started=t0 + 240.3, op="tasks")]  # after the stop: settle's poll
    rows = per_minute(outs, t0, t0 + 240.2)  # a 4-minute run whose sleep overran by 0.2 s
    assert [r.label for r in rows] == ["minute 1", "minute 2", "minute 3", "minute 4", "settle"]
    assert [r.requests for r in rows] == [2, 1, 0, 1, 1]
    assert dict(rows[3].errors) == {"503": 1}


def test_per_minute_partial_last_minute() -> None:
    rows = per_minute([Out(started=95.0)], 0.0, 90.0)
    assert [r.label for r in rows] == ["minute 1", "minute 2", "settle"]
    assert rows[2].requests == 1


def test_per_op_and_total() -> None:
    outs = [Out(op="ls"), Out(op="submit", status=201), Out(op="ls", status=429)]
    rows = per_op(outs)
    assert [(r.label, r.requests, r.throttled) for r in rows] == [("ls", 2, 1), ("submit", 1, 0)]
    whole = total(rows)
    assert (whole.requests, whole.throttled, len(whole.latencies_ms)) == (3, 1, 2)


def test_growth() -> None:
    assert growth(100, 110) == 10.0
    assert growth(0, 0) == 0.0
    assert growth(0, 1) == float("inf")


def res(rss: int = 1000, fds: int = 10, connections: int = 2) -> Resources:
    return Resources(rss_kib=rss, fds=fds, threads=3, connections=connections, processes=1)


def good_row() -> Row:
    row = Row("all")
    row.add(Out())
    row.add(Out(status=429))
    return row


def test_verdicts_all_pass() -> None:
    start = {"compute": res(), "sshd": res(), "redis-server": res()}
    end = {"compute": res(rss=1100), "sshd": res(fds=9, connections=1), "redis-server": res(rss=5000)}
    results = verdicts(start, end, {"compute", "sshd"}, good_row(), [])
    assert [v.ok for v in results] == [True] * 5, [v.line() for v in results]
    assert "1 429 of 2 requests" in results[3].detail


def test_verdicts_name_what_missed_its_goal() -> None:
    start = {"compute": res(), "sshd": res(), "tasks": res()}
    end = {"compute": res(rss=1101), "sshd": res(fds=13, connections=5)}
    row = good_row()
    row.add(Out(status=502))
    results = {v.goal: v for v in verdicts(start, end, {"compute", "sshd", "tasks"}, row, ["task 1 never ended"])}
    rss = results["RSS growth <= 10% per service"]
    assert not rss.ok and "compute +10.1%" in rss.detail and "tasks not sampled" in rss.detail
    assert "sshd 10->13" in results["descriptors back to baseline"].detail
    assert "sshd 2->5" in results["connections back to baseline"].detail
    assert "tasks running at one end only" in results["connections back to baseline"].detail
    assert not results["0 errors other than 429"].ok and "502: 1" in results["0 errors other than 429"].detail
    assert not results["nothing lost (settle)"].ok
    assert all(v.line().startswith("FAIL") for v in results.values())


def test_descriptors_and_connections_within_the_slack_pass_and_are_named() -> None:
    assert [slack(n) for n in (0, 10, 49, 50, 256)] == [2, 2, 2, 3, 7]
    start = {"keycloak": res(fds=256, connections=4), "compute": res(fds=73, connections=20)}
    end = {"keycloak": res(fds=263, connections=6), "compute": res(fds=76, connections=23)}
    fds, conns = (leak_verdict(goal, start, end, what) for goal, what in [("fds", "fds"), ("c", "connections")])
    assert fds.ok and "within the slack: compute 73->76, keycloak 256->263" in fds.detail
    assert not conns.ok and conns.detail.startswith("compute 20->23; within the slack: keycloak 4->6")


def test_resource_table_rows() -> None:
    lines = resource_table({"sshd": res(rss=2048), "gone": res()}, {"sshd": res(rss=4096)})
    assert lines[1].startswith("gone") and "only at start" in lines[1]
    assert lines[2].split()[:5] == ["sshd", "1/1", "2.0", "4.0", "+100.0%"]


def test_a_daemon_restarted_between_the_samples_fails_the_run() -> None:
    assert restarts({"tasks": 10, "sshd": 11}, {"tasks": 10, "sshd": 11}).ok
    verdict = restarts({"tasks": 10, "sshd": 11, "redis-server": 12}, {"tasks": 20, "sshd": 11})
    assert not verdict.ok
    assert verdict.detail.startswith("redis-server pid 12->-; tasks pid 10->20")


def test_connections_of_new_threads_are_explained_and_no_more() -> None:
    """storage's pool grew 3 threads, each with its own connection to Swift: its 3 more connections, and the
    proxy's, pass; a fourth beyond the slack does not."""
    def at(threads: int, connections: int) -> Resources:
        return Resources(rss_kib=1000, fds=80, threads=threads, connections=connections, processes=3)

    start = {"storage": at(31, 18), "swift-proxy": at(3, 16), "tasks": at(11, 11)}
    end = {"storage": at(34, 23), "swift-proxy": at(3, 21), "tasks": at(9, 11)}
    explained = new_threads(start, end, {"storage", "tasks"})
    assert explained == {"storage": 3, "swift-proxy": 3, "tasks": 0}
    assert leak_verdict("c", start, end, "connections", explained).ok
    end["storage"] = at(34, 24)
    end["swift-proxy"] = at(3, 22)
    verdict = leak_verdict("c", start, end, "connections", explained)
    assert not verdict.ok and verdict.detail.startswith("storage 18->24; swift-proxy 16->22")
