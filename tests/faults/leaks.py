"""The SSH connections each service holds towards the login nodes, from /proc (sockets to an sshd port); one no
pool knows of leaks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.site_resources import children, daemons, descendants, established, ssh_pools, thread_kinds
from common.stack_env import stack_dir

SERVICES = ("utilities", "compute", "storage", "tasks", "status")
# Kinds that live only while their work runs (a job script's copy, a status check's probes, and any thread the
# code did not name): at rest, none.
PASSING = ("copy", "status-check", "other")


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
    threads; `threads_left` checks them at rest.)"""
    deadline = time.monotonic() + timeout
    while True:
        now, pools = held(ports), ssh_pools(env)
        found = [f"{name}: {now[name]} SSH connections, {sum(pools.get(name, {}).values()):.0f} in its pools"
                 for name in SERVICES if now[name] > sum(pools.get(name, {}).values())]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def threads_left(env: dict[str, str], timeout: float = 60) -> list[str]:
    """At rest (no request, no task running): waits until no service has a thread its work no longer explains (a
    passing kind still alive, or an SSH connection's thread its pools do not hold); returns what remains after
    `timeout`. The workers count their threads every 2 s (common/metrics.py)."""
    deadline = time.monotonic() + timeout
    while True:
        threads, pools = thread_kinds(env), ssh_pools(env)
        found = [f"{name}: {threads[name][kind]:.0f} {kind} threads at rest"
                 for name in SERVICES for kind in PASSING if threads.get(name, {}).get(kind, 0) > 0]
        found += [f"{name}: {kinds.get('ssh', 0):.0f} SSH connection threads, "
                  f"{sum(pools.get(name, {}).values()):.0f} connections in its pools"
                  for name, kinds in threads.items() if kinds.get("ssh", 0) > sum(pools.get(name, {}).values())]
        missing = [name for name in SERVICES if name not in threads]
        if (not found and not missing) or time.monotonic() > deadline:
            return found + [f"{name}: no thread count (is it up?)" for name in missing]
        time.sleep(1)
