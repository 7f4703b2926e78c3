"""common/metrics.py and the metrics hooks of common/serving.py, without a site: labels stay bounded, /metrics
needs no token (and nothing else opens), the multiprocess directory is private and emptied, workers' values merge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_openapi import SITE

from common import errors, metrics, serving
from common.auth import Identity
from common.commands import Output
from common.config import parse
from common.ssh import UserSlots
from status.app import create as create_status

REPO = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def client(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return create_status(site=parse(SITE, {})).test_client()


def test_metrics_need_no_token_and_count_routes_by_rule_never_by_path(client):
    before = client.get("/metrics").text
    for name in ("a", "b", "c%20d", "$(id)"):
        assert client.get(f"/systems/{name}").status_code == 401  # no token
    assert client.get("/nowhere/at/all").status_code == 401
    reply = client.get("/metrics")
    assert reply.status_code == 200 and reply.content_type.startswith("text/plain")
    text = reply.text
    rule = "/systems/<name>"
    assert value(text, "firecrest_http_requests_total", route=rule, method="GET", status="401") - \
        value(before, "firecrest_http_requests_total", route=rule, method="GET", status="401") == 4
    assert value(text, "firecrest_http_requests_total", route="unmatched", method="GET", status="401") >= 1
    assert not any("$(id)" in str(labels) or "/nowhere" in str(labels) for _, labels in samples(text))
    assert value(text, "firecrest_http_request_duration_seconds_count", route=rule, method="GET") >= 4
    assert value(text, "firecrest_ssh_pool_connections", system="cluster") == 0  # shown from the start


def test_other_methods_and_paths_near_metrics_still_need_a_token(client):
    assert client.post("/metrics").status_code in (401, 405)
    assert client.get("/metrics/").status_code in (401, 404)
    assert client.get("//metrics").status_code in (308, 401, 404)
    assert client.get("/metricsx").status_code == 401


def test_an_unknown_method_is_one_label(client):
    client.open("/metrics", method="FROB")
    text = client.get("/metrics").text
    assert not any(("method", "FROB") in labels for _, labels in samples(text))


def test_refusals_of_the_wrapper_are_counted_and_other_failures_are_not(client):
    before = client.get("/metrics").text
    metrics.command_ended("cluster", "ls", Output(126, b"", b"firecrest-shell: refused: 'x' is not an allowed command"))
    metrics.command_ended("cluster", "ls", Output(2, b"", b"ls: cannot access"))
    metrics.command_ended("cluster", "ls", Output(126, b"", b"sh: permission denied"))
    text = client.get("/metrics").text
    assert value(text, "firecrest_commands_refused_total", system="cluster", command="ls") - \
        value(before, "firecrest_commands_refused_total", system="cluster", command="ls") == 1


def test_connections_opened_failed_and_held(client):
    before = client.get("/metrics").text
    with metrics.ssh_connecting("cluster"):
        pass
    with pytest.raises(OSError), metrics.ssh_connecting("cluster"):
        raise OSError("unreachable")
    text = client.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(before, name, **labels)

    assert moved("firecrest_ssh_connections_opened_total", system="cluster") == 1
    assert moved("firecrest_ssh_connections_failed_total", system="cluster", reason="OSError") == 1
    assert moved("firecrest_ssh_pool_connections", system="cluster") == 1
    metrics.ssh_closed("cluster")


def test_the_multiprocess_directory_is_private_emptied_and_owned(tmp_path):
    target = tmp_path / "m"
    target.mkdir(mode=0o755)
    (target / "counter_1.db").write_bytes(b"old")
    (target / "stale").mkdir()
    serving.prepare_metrics_dir(target)
    assert list(target.iterdir()) == [] and (target.stat().st_mode & 0o777) == 0o700
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SystemExit):
        serving.prepare_metrics_dir(link)


WORKER = """
import sys
from common import metrics
metrics.REQUESTS.labels("/x", "GET", "200").inc(int(sys.argv[1]))
metrics.SSH_POOL.labels("cluster").inc(int(sys.argv[1]))
"""


def test_workers_values_merge_and_a_dead_workers_connections_are_dropped(tmp_path, monkeypatch):
    directory = tmp_path / "metrics"
    serving.prepare_metrics_dir(directory)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPO)}
    pids = []
    for count in (2, 3):
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(count)], env=env, cwd=REPO)
        assert proc.wait(timeout=60) == 0
        pids.append(proc.pid)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    app = SimpleNamespace(extensions={metrics.COLLECTORS: []})
    text = metrics.exposition(app).get_data(as_text=True)  # type: ignore[arg-type]
    assert value(text, "firecrest_http_requests_total", route="/x", method="GET", status="200") == 5
    assert value(text, "firecrest_ssh_pool_connections", system="cluster") == 5
    serving.child_exit(None, SimpleNamespace(pid=pids[0]))
    text = metrics.exposition(app).get_data(as_text=True)  # type: ignore[arg-type]
    assert value(text, "firecrest_ssh_pool_connections", system="cluster") == 3
    assert value(text, "firecrest_http_requests_total", route="/x", method="GET", status="200") == 5


def test_a_backlog_that_cannot_be_read_is_left_out():
    def broken() -> dict[str, float]:
        raise ConnectionError("redis down")

    assert list(metrics.task_backlog(broken).collect()) == []
    family, = metrics.task_backlog(lambda: {"compute": 2.0}).collect()
    assert [(s.labels, s.value) for s in family.samples] == [({"service": "compute"}, 2.0)]


def test_a_user_at_the_command_bound_is_counted_as_throttled(client):
    slots = UserSlots(limit=1)
    alice = Identity("alice", "token", {})
    before = client.get("/metrics").text
    with slots.hold(alice, "cluster"), pytest.raises(errors.TooManyRequests), slots.hold(alice, "cluster"):
        pass
    with slots.hold(Identity("bob", "token", {}), "cluster"):  # another user is not bounded by alice's commands
        pass
    text = client.get("/metrics").text
    assert value(text, "firecrest_throttled_total", reason="user_commands") - \
        value(before, "firecrest_throttled_total", reason="user_commands") == 1
    assert "alice" not in text


def test_threads_are_counted_by_kind_and_a_kind_that_ends_drops_to_zero(client):
    """firecrest_threads: a pool's threads under its name, a task's under its kind, unnamed ones as `other`; a
    kind whose threads ended is shown at 0, not at its last count."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    release = threading.Event()
    pool = ThreadPoolExecutor(2, thread_name_prefix="storage-transfer")
    for _ in range(2):
        pool.submit(release.wait)
    copy = threading.Thread(target=release.wait, name=f"copy-{'a' * 32}")
    stray = threading.Thread(target=release.wait)
    copy.start()
    stray.start()
    seen: set[str] = set()
    try:
        metrics.count_threads(seen)
        text = client.get("/metrics").text
        assert value(text, "firecrest_threads", kind="storage-transfer") == 2
        assert value(text, "firecrest_threads", kind="copy") == 1
        assert value(text, "firecrest_threads", kind="other") >= 1
        assert value(text, "firecrest_threads", kind="main") == 1
    finally:
        release.set()
        pool.shutdown()
        copy.join()
        stray.join()
    metrics.count_threads(seen)
    text = client.get("/metrics").text
    assert value(text, "firecrest_threads", kind="storage-transfer") == 0
    assert value(text, "firecrest_threads", kind="copy") == 0
