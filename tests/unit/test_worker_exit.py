"""A gunicorn worker leaves at once (common/serving.py worker_exit), even with background work still running."""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from common import serving


def _child(code: int) -> None:
    """What a worker does: its pool holds a thread that never ends, then it leaves as gunicorn's spawn does."""
    pool = ThreadPoolExecutor(1)
    pool.submit(threading.Event().wait)  # a transfer whose job runs on (Python's exit would join it)
    try:
        sys.exit(code)
    finally:
        serving.worker_exit(None, SimpleNamespace(pid=os.getpid()))


def _exit_status_of(code: int) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            _child(code)
        finally:
            os._exit(99)  # reached only if worker_exit did not end the process
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the worker did not exit: its pool thread held it")


def test_a_worker_exits_with_a_thread_still_running_and_keeps_its_status():
    assert _exit_status_of(0) == 0
    assert _exit_status_of(3) == 3  # gunicorn's WORKER_BOOT_ERROR: the master must still see it


def test_in_the_master_it_does_nothing():
    serving.worker_exit(None, SimpleNamespace(pid=os.getpid() + 1))  # returns: the master goes on
