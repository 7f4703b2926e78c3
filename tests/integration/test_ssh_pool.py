"""The SSH pool behind the services: connections are reused, never cross users, and fail clearly."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from common import errors
from common.auth import Identity
from common.commands import Command, Output
from common.config import System
from common.ssh import CertificatorClient, SSHPool

UTILITIES_WORKERS = 2  # deploy/local/stack/components/services.py: each worker process has its own pool


def whoami(site, token: str, request_id: str, timeout: float = 30) -> requests.Response:
    """As a client would: a 429 (the per-user bound on commands at once) is retried after its Retry-After."""
    while True:
        response = requests.get(f"{site.service_url('utilities')}/whoami", timeout=timeout,
                                headers={"Authorization": f"Bearer {token}", "X-Machine-Name": "cluster",
                                         "X-Request-ID": request_id})
        if response.status_code != 429:
            return response
        time.sleep(int(response.headers["Retry-After"]))


def key_ids(site, prefix: str) -> dict[str, set[str]]:
    by_user: dict[str, set[str]] = {}
    for line in site.audit_lines():
        if prefix in line:
            import json

            record = json.loads(line)
            if record["request_id"].startswith(prefix):
                by_user.setdefault(record["user"], set()).add(record["key_id"])
    return by_user


def test_a_burst_opens_one_connection_per_worker_and_users_never_share(site):
    site.control("restart", "services")  # empty pools
    prefix = f"burst-{uuid.uuid4().hex[:6]}"
    tokens = {"alice": site.token("alice"), "bob": site.token("bob")}
    jobs = [(user, f"{prefix}-{user}-{i}") for i in range(24) for user in tokens]
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda job: whoami(site, tokens[job[0]], job[1]), jobs))
    assert [r.json()["output"] for r in responses] == [user for user, _ in jobs]
    seen = key_ids(site, prefix)
    assert set(seen) == {"alice", "bob"}
    for user, ids in seen.items():
        # One certificate (so one connection) per worker process, however many requests came at once.
        assert 1 <= len(ids) <= UTILITIES_WORKERS
        assert all(kid.startswith(f"{user}@") for kid in ids)
    assert not seen["alice"] & seen["bob"]


def test_connections_are_reused_across_requests(site):
    token = site.token("alice")
    prefix = f"reuse-{uuid.uuid4().hex[:6]}"
    for i in range(20):
        assert whoami(site, token, f"{prefix}-{i}").status_code == 200
    assert len(key_ids(site, prefix)["alice"]) <= UTILITIES_WORKERS


def _sshd_tree(site) -> list[int]:
    """The login node's sshd and every process under it (its sessions)."""
    root = int((site.dir / "run" / "sshd.pid").read_text())
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def test_dead_login_node_gives_a_clear_503_and_recovers(site):
    token = site.token("alice")
    assert whoami(site, token, "before-kill").status_code == 200
    for pid in _sshd_tree(site):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        start = time.monotonic()
        response = whoami(site, token, "while-dead", timeout=60)
        assert time.monotonic() - start < 15  # fails fast, no hang
        assert response.status_code == 503
        assert "X-Machine-Not-Available" in response.headers
        assert response.json()["description"].startswith("Machine is not available")
    finally:
        site.control("restart", "login")
    assert whoami(site, token, "after-restart").json()["output"] == "alice"


def _running(pattern: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if pattern.encode() in cmdline.read_bytes():
                return True
    return False


def test_a_command_whose_connection_dies_gets_a_503_not_a_timeout(site, home_dir):
    """The login node's sessions die while a command runs (sshd's master lives on): the caller learns that the
    machine was lost (503, X-Machine-Not-Available), not that its command timed out (400, X-Timeout: a user's
    mistake), and the next call works on a new connection."""
    fifo = home_dir / "blocks"
    os.mkfifo(fifo)
    os.chown(fifo, home_dir.stat().st_uid, home_dir.stat().st_gid)
    token = site.token("alice")
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(requests.get, f"{site.service_url('utilities')}/checksum", timeout=60,
                              params={"targetPath": str(fifo)},
                              headers={"Authorization": f"Bearer {token}", "X-Machine-Name": "cluster"})
        deadline = time.monotonic() + 30
        while not _running(str(fifo)):  # the checksum reads the fifo, which nobody writes: it waits
            assert time.monotonic() < deadline, "the checksum never started"
            time.sleep(0.05)
        master = int((site.dir / "run" / "sshd.pid").read_text())
        for pid in _sshd_tree(site):
            if pid != master:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        response = pending.result()
    assert response.status_code == 503, response.text
    assert response.headers["X-Machine-Not-Available"] == "Machine is not available"
    assert response.json()["description"] == "Error on checksum operation"
    assert whoami(site, token, "after-sessions-died").json()["output"] == "alice"


class _Line(Command[Output]):
    """A fixed command line, its output as it is (the login node's wrapper allows `sleep` and `cat`)."""

    timeout = False

    def __init__(self, *words: str) -> None:
        self.words = list(words)

    def argv(self) -> list[str]:
        return self.words

    def parse(self, result: Output) -> Output:
        return result


@pytest.fixture
def alices_pool(site) -> Iterator[tuple[SSHPool, System, Identity]]:
    """A pool of the test's own (as a service keeps one), to the site's first system, as alice."""
    pool = SSHPool(site.config, CertificatorClient(site.service_url("certificator"), site.secret("service-token")))
    try:
        yield pool, site.config.systems["cluster"], Identity("alice", site.token("alice"), {})
    finally:
        pool.close()


def test_a_connection_given_up_by_one_command_finishes_the_others_on_it(alices_pool):
    """A fed command abandoned while it runs (its transfer gave up) gives up its connection (its input may have
    gone to a closed channel), but the user's other commands running on that connection end normally; only then is
    it closed. Found by the schema fuzz in CI: a push job cut a sourcePath check on the same connection (503
    "connection lost")."""
    pool, system, identity = alices_pool
    with ThreadPoolExecutor(max_workers=1) as threads:
        slow = threads.submit(pool.run, system, identity, _Line("sleep", "2"))
        deadline = time.monotonic() + 20
        while not any(c.channels for conns in pool._pools.values() for c in conns):
            assert time.monotonic() < deadline, "the first command never started"
            time.sleep(0.01)
        with pytest.raises(RuntimeError), pool.feed(system, identity, _Line("cat")) as job:
            job.send(b"some input")
            raise RuntimeError("the transfer gave up")
        assert slow.result(timeout=30).status == 0
    assert not any(pool._pools.values())  # the given-up connection was closed after its last command
    assert pool.run(system, identity, _Line("true")).status == 0  # on a new one
    assert pool.opened == 2


def test_a_fed_command_that_fails_gives_its_own_error_and_keeps_the_connection(alices_pool):
    """A fed command that ended with an error (a transfer's job that cannot read its file, or whose URLs were
    invalidated), even with input sent after it ended, is not a lost machine: the caller gets the command's own
    error and the user's connection lives on. Until 2026-12-07 every failed transfer job closed it."""
    pool, system, identity = alices_pool
    unreadable = _Line("cat", "--", "/nonexistent/input")
    with pytest.raises(errors.InvalidPath), pool.feed(system, identity, unreadable) as job:
        deadline = time.monotonic() + 20
        while job.chan.exit_status == -1 or not job.chan.closed:
            assert time.monotonic() < deadline, "cat never ended"
            time.sleep(0.01)
        job.send(b"x" * 65536)
        job.finish(timeout_s=20)
    assert pool.run(system, identity, _Line("true")).status == 0
    assert pool.opened == 1
