"""What each daemon of the native site holds right now: memory, descriptors, threads, processes, TCP connections;
and the services' own SSH pool gauges.

A daemon is the process its pid file names plus all its descendants: a gunicorn master and its workers, Swift's
servers and their workers, Keycloak's `kc.sh` and its JVM, the login node's sshd listener and every session process
under it. The daemons and their pids are the ones `deploy/local/status` lists (it knows every pid file, including
Slurm's and munge's own), so a daemon that is stopped is absent from a sample.

Read from /proc only (as root, which the site needs anyway): one pass over /proc/*/stat for the process tree, then
status and fd of the daemons' processes, and /proc/net/tcp{,6} for the ESTABLISHED sockets. A process that exits
while it is read is skipped, as if it had exited just before. No psutil: the few fields needed are one read each.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from common.stack_env import REPO

STATUS = REPO / "deploy" / "local" / "status"
ESTABLISHED = "01"  # the state column of /proc/net/tcp
POOL_GAUGE = "firecrest_ssh_pool_connections"
THREADS_GAUGE = "firecrest_threads"  # by kind: common/metrics.py thread_kind


@dataclass(frozen=True)
class Resources:
    rss_kib: int  # the sum of VmRSS of the daemon's processes (pages shared between them count in each)
    fds: int  # open file descriptors, summed over its processes
    threads: int
    connections: int  # distinct ESTABLISHED TCP sockets held by its processes (a socket shared by two counts once)
    processes: int


def daemons(stack_dir: Path) -> dict[str, int]:
    """{daemon name: pid} of the running daemons, as `deploy/local/status` lists them (it exits 1 when one is
    stopped: that one is simply not listed)."""
    done = subprocess.run([str(STATUS)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "FIRECREST_STACK_DIR": str(stack_dir)})
    if not done.stdout.strip():  # not root, no site: an empty sample would make any leak check pass
        raise RuntimeError(f"{STATUS} listed no daemon (exit status {done.returncode}): {done.stderr.strip()}")
    found: dict[str, int] = {}
    for line in done.stdout.splitlines():
        words = line.split()  # component, daemon, state, "pid", pid
        if len(words) == 5 and words[2] == "running" and words[4].isdigit():
            found[words[1]] = int(words[4])
    return found


def children() -> dict[int, list[int]]:
    """{pid: its children's pids} of every process now."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # after the command name, which may hold spaces
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    """`pid` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def established() -> set[int]:
    """The inodes of every ESTABLISHED TCP socket (IPv4 and IPv6) of this network namespace."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == ESTABLISHED:
                inodes.add(int(fields[9]))
    return inodes


@dataclass
class _Process:
    rss_kib: int
    threads: int
    fds: int
    sockets: set[int]


def _process(pid: int) -> _Process | None:
    """One process's figures, or None if it exited while being read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) if "VmRSS" in fields else 0  # a zombie has no memory left
    sockets = set()
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(int(target[8:-1]))
    return _Process(rss, int(fields.get("Threads", "0").split()[0] or 0), len(names), sockets)


def resources(pids: Iterable[int], open_tcp: set[int]) -> Resources:
    processes = [p for p in map(_process, pids) if p is not None]
    sockets = set().union(*(p.sockets for p in processes)) if processes else set()
    return Resources(rss_kib=sum(p.rss_kib for p in processes), fds=sum(p.fds for p in processes),
                     threads=sum(p.threads for p in processes), connections=len(sockets & open_tcp),
                     processes=len(processes))


def sample(stack_dir: Path) -> dict[str, Resources]:
    """{daemon name: what it and its descendants hold now} for every running daemon of the site in `stack_dir`."""
    pids = daemons(stack_dir)
    tree = children()
    open_tcp = established()
    return {name: resources(descendants(pid, tree), open_tcp) for name, pid in pids.items()}


def ssh_pools(env: dict[str, str]) -> dict[str, dict[str, float]]:
    """{service: {system: SSH connections its live workers hold}} from each service's /metrics (its internal port,
    which root reaches); a service without the gauge (the certificator, apidocs) or not answering is left out."""
    return service_gauges(env, POOL_GAUGE, "system")


def thread_kinds(env: dict[str, str]) -> dict[str, dict[str, float]]:
    """{service: {kind: threads of its live workers}} (firecrest_threads)."""
    return service_gauges(env, THREADS_GAUGE, "kind")


def service_gauges(env: dict[str, str], name: str, label: str) -> dict[str, dict[str, float]]:
    """{service: {value of `label`: the gauge `name`}} from each service's /metrics."""
    found: dict[str, dict[str, float]] = {}
    prefix, suffix = "FIRECREST_INTERNAL_", "_URL"
    for key, url in sorted(env.items()):
        if not (key.startswith(prefix) and key.endswith(suffix)):
            continue
        try:
            reply = requests.get(f"{url}/metrics", timeout=5)
        except requests.RequestException:
            continue
        if reply.status_code != 200:
            continue
        gauges = {s.labels.get(label, ""): s.value
                  for family in text_string_to_metric_families(reply.text)
                  for s in family.samples if s.name == name}
        if gauges:
            found[key[len(prefix):-len(suffix)].lower()] = gauges
    return found
