"""The embedded site's daemons as `deploy/local/stack` defines them, and how a test kills one: SIGKILL to the
process and every process under it (gunicorn's workers, Swift's, sshd's sessions), as when it crashes or its
host's OOM killer takes the group."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from common.stack_env import REPO, stack_dir

sys.path.insert(0, str(REPO / "deploy" / "local"))
from stack.components import all_components
from stack.core import Daemon, Stack, alive, read_pid


def daemons() -> dict[str, Daemon]:
    """Daemon name (as `deploy/local/status` shows it) -> its definition."""
    return {d.name: d for c in all_components(Stack(stack_dir().resolve())) for d in c.daemons()}


def pid_of(name: str) -> int:
    pid = read_pid(daemons()[name].pidfile)
    assert pid is not None and alive(pid), f"{name} is not running"
    return pid


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_of(pid: int) -> list[int]:
    tree, found, todo = children(), [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += tree.get(p, [])
    return found


def kill(name: str) -> list[int]:
    """SIGKILL the daemon and everything under it, and wait until they are gone; returns the pids killed."""
    pids = tree_of(pid_of(name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, f"{name}: processes {pids} outlived SIGKILL"
        time.sleep(0.02)
    return pids
