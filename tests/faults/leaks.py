"""The SSH connections each service holds towards the login nodes, from /proc (sockets to an sshd port); one no
pool knows of leaks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.site_resources import children, daemons, descendants, established, ssh_pools
from common.stack_env import stack_dir

SERVICES = ("utilities", "compute", "storage", "tasks", "status")


def ssh_sockets(ports: set[int]) -> set[int]:
    """Inodes of the ESTABLISHED sockets whose remote port is one of `ports`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].split(":")[1], 16) in ports:
            found.add(int(fields[9]))
    return found & established()


def held(ports: set[int]) -> dict[str, int]:
    """Service -> ESTABLISHED connections its processes hold to a login node's sshd."""
    pids, tree, ssh = daemons(stack_dir()), children(), ssh_sockets(ports)
    out = {}
    for name in SERVICES:
        sockets = 0
        for pid in descendants(pids[name], tree) if name in pids else []:
            try:
                fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:
                continue  # exited meanwhile
            sockets += sum(f.startswith("socket:[") and int(f[8:-1]) in ssh for f in fds)
        out[name] = sockets
    return out


def leaks(env: dict[str, str], ports: set[int], timeout: float = 60) -> list[str]:
    """Waits until no service holds an SSH connection its pools do not know of (one left behind by a connection
    that broke, or by an open that failed halfway); returns what still does after `timeout`. (Threads are not
    compared here: the services' thread pools grow to their bounds under a fault's backlog and keep their idle
    threads; the soak compares them at rest.)"""
    deadline = time.monotonic() + timeout
    while True:
        now, pools = held(ports), ssh_pools(env)
        found = [f"{name}: {now[name]} SSH connections, {sum(pools.get(name, {}).values()):.0f} in its pools"
                 for name in SERVICES if now[name] > sum(pools.get(name, {}).values())]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1)
