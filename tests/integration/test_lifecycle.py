"""`up` is idempotent, refuses a taken port without side effects, and `down` stops exactly what runs."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

PORTS = [3307, 6817, 6818, 6819, 2222, 6380, 11212, 6200, 6201, 6202, 8080, 8180, 9180,
         6827, 6828, 2223]  # the second system's slurmctld, slurmd and login node


def pids(site) -> dict[str, int]:
    found = {}
    for pidfile in [*site.dir.glob("run/*.pid"), *site.dir.glob("slurm/run/*.pid"),
                    *site.dir.glob("cluster2/run/*.pid"), site.dir / "munge/munged.pid"]:
        if pidfile.exists():
            found[str(pidfile.relative_to(site.dir))] = int(pidfile.read_text().split()[0])
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_second_up_starts_nothing(site):
    before = pids(site)
    result = site.control("up")
    assert "(0 daemons started" in result.stdout
    assert pids(site) == before
    assert site.control("status").returncode == 0


def test_taken_port_is_named_and_nothing_else_changes(site):
    redis_pid = pids(site)["run/redis.pid"]
    os.kill(redis_pid, signal.SIGTERM)
    while alive(redis_pid):
        time.sleep(0.05)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", 6380))
    squatter.listen()
    try:
        others = {k: v for k, v in pids(site).items() if k != "run/redis.pid"}
        result = site.control("up", check=False)
        assert result.returncode == 1
        assert "port 6380 needed by redis is already taken" in result.stderr
        assert {k: v for k, v in pids(site).items() if k != "run/redis.pid"} == others
        assert all(alive(pid) for pid in others.values())
    finally:
        squatter.close()
    assert "(1 daemons started" in site.control("up").stdout


@pytest.mark.slow
def test_down_stops_everything_and_up_brings_it_back(site):
    running = pids(site)
    site.control("down")
    assert not any(alive(pid) for pid in running.values())
    assert not [port for port in PORTS if listening(port)]
    assert site.control("status", check=False).returncode == 1
    site.control("up")
    assert site.control("status").returncode == 0
    assert all(listening(port) for port in PORTS)
