"""How a fault test kills one of the site's daemons: SIGKILL to the process its pid file names and every process
under it (gunicorn's workers, Swift's, sshd's sessions), as when it crashes or its host's OOM killer takes the
group."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from bench.site_resources import children, daemons, descendants
from common.stack_env import stack_dir


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead


def kill(name: str) -> list[int]:
    """SIGKILL the daemon and everything under it, and wait until they are gone; returns the pids killed.

    The tree is frozen first (SIGSTOP, again until a look finds no process it has not stopped): a process forked
    between the look and the kill (a worker a master replaces) would otherwise live on, orphaned."""
    running = daemons(stack_dir())
    assert name in running, f"{name} is not running"
    pids: list[int] = []
    while new := [p for p in descendants(running[name], children()) if p not in pids]:
        for pid in new:
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signal.SIGSTOP)
        pids += new
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, f"{name}: processes {pids} outlived SIGKILL"
        time.sleep(0.02)
    return pids
