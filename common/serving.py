"""gunicorn's configuration hooks for every service (`--config python:common.serving`).

A service's app is built by its factory in each worker (`compute.app:create()`); its background work (task
recovery, lease renewal, transfer watching) starts here, once the worker has the app, and never at import.

Metrics (common/metrics.py): with `PROMETHEUS_MULTIPROC_DIR` set, the workers write their values to files in that
directory. The master empties it once it holds the port, before the first worker starts (values of an earlier run
would be added to this one's) and keeps it private to the service's account; a worker that exits has its live
gauges dropped."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess

from common.app import start_background

# One header may be as large as the gateway lets through (HAProxy's 16 KiB buffer), so that the service, not
# gunicorn's HTML 431, answers an oversized value (an Idempotency-Key of 10 kB gets the JSON 400).
limit_request_field_size = 16384


def when_ready(server: Any) -> None:
    """The master holds the port now, before any worker starts: a second instance that cannot bind it never
    gets here, so it cannot wipe the values of the one that serves."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prepare_metrics_dir(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))


def post_worker_init(worker: Any) -> None:
    configure_logging()
    start_background(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker that leaves (gunicorn calls this in the master too, for a worker found gone): exit now that
    its requests are done. Python's own exit would wait for every pool thread, and a transfer's holds its thread
    as long as its job runs, while the engine's daemon threads went on renewing its leases: a worker orphaned by
    a master that died lived on, and its tasks were never resumed elsewhere. Leases held now simply run out and
    another process resumes the work, as after a crash. A worker's own exit status (boot failure) is kept."""
    if os.getpid() != worker.pid:
        return
    leaving = sys.exc_info()[1]
    code = leaving.code if isinstance(leaving, SystemExit) and isinstance(leaving.code, int) else 0
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code & 0xFF)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def prepare_metrics_dir(path: Path) -> None:
    """An empty directory, owned by this process's account with mode 0700 (the values are the service's own); one
    owned by another account, or a link, is refused rather than used."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise SystemExit(f"PROMETHEUS_MULTIPROC_DIR {path}: not a directory of this account")
    path.chmod(0o700)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def configure_logging() -> None:
    """The access log and every service's own logger, one JSON or text line each, to gunicorn's stderr."""
    root = logging.getLogger("firecrest")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
