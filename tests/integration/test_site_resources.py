"""bench/site_resources.py against the live native site: every daemon `deploy/local/status` lists is sampled, with
figures that can be true of a running daemon, and an SSH session shows in the login node's sshd."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from bench.site_resources import sample, ssh_pools
from common.stack_env import REPO

SERVICES = ("certificator", "status", "utilities", "tasks", "compute", "storage")  # gunicorn: a master, its workers


@pytest.fixture(autouse=True)
def native(site) -> None:
    if site.compose:
        pytest.skip("the pid files and /proc are the native site's")


def listed(site) -> set[str]:
    out = subprocess.run([str(REPO / "deploy/local/status")], capture_output=True, text=True, check=True,
                         env={"FIRECREST_STACK_DIR": str(site.dir), "PATH": "/usr/bin:/bin"}).stdout
    return {line.split()[1] for line in out.splitlines()}


def test_every_daemon_is_sampled_with_positive_figures(site, alice: paramiko.SSHClient) -> None:
    found = sample(site.dir)
    assert set(found) == listed(site)
    for name, res in found.items():
        assert res.processes >= 1, name
        assert res.rss_kib > 0 and res.fds > 0 and res.threads > 0, (name, res)
        assert res.connections >= 0, (name, res)
    for name in SERVICES:
        assert found[name].processes >= 2, (name, found[name])  # the master and at least one worker
    # alice's session (the fixture's connection, held open): its sshd processes and its TCP connection count
    assert found["sshd"].processes >= 2 and found["sshd"].connections >= 1, found["sshd"]


def test_pools_of_the_services_that_reach_the_cluster(site) -> None:
    pools = ssh_pools(site.env)
    for service in ("status", "utilities", "compute", "storage"):
        assert set(pools[service]) >= set(site.systems), (service, pools)
        assert all(count >= 0 for count in pools[service].values()), (service, pools)
