"""What each compute task does on the cluster, as the caller; the returned value is the task's `data` on 200.

Every operation may run again after a restart (see background.py): reads are simply repeated, and a submission
first looks for a job tagged with its task id before it calls sbatch.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from common.engine import TaskRun
from common.errors import BadRequest, FirecrestError
from common.slurm.accounting import Accounting
from common.slurm.jobfiles import AllJobFiles, Tail
from common.slurm.jobs import Cancel, cancel_error
from common.slurm.queue import Queue, RecentlyFinished
from common.slurm.resources import Nodes, Partitions, Reservations

from .background import Operation
from .submission import INFO_RETURNED, Submission
from .workdirs import Workdirs

TAIL_BYTES = 1000
DBD_CATCH_UP_S = 8.0  # slurmdbd lags slurmctld by about 0.1 s; by seconds on a fresh site or for a final row
DEFAULT_PAGE_SIZE = 25


def page(items: list, size: int | None, number: int | None) -> list:
    """The contract's paging: 0-based page numbers, 25 per page when either parameter is given."""
    if size is None and number is None:
        return items
    size, number = size or DEFAULT_PAGE_SIZE, number or 0
    pages = max(1, math.ceil(len(items) / size))
    if number >= pages and items:
        raise BadRequest(f"pageNumber ({number}) is greater than total pages ({pages - 1})")
    return items[number * size : (number + 1) * size]


def _with_files(task: TaskRun, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contract's extra fields of the caller's jobs: script and output paths, and the end of the output."""
    if not jobs:
        return jobs
    files = task.run(AllJobFiles())
    for entry in jobs:
        entry.update(files.get(entry["jobid"], {"job_file": "command-not-found",
                                                "job_file_out": "stdout-file-not-found",
                                                "job_file_err": "stderr-file-not-found"}))
        for field, path_field in (("job_data_out", "job_file_out"), ("job_data_err", "job_file_err")):
            entry[field] = ""
            if entry["state"] not in ("PENDING", "CONFIGURING") and entry[path_field].startswith("/"):
                with contextlib.suppress(FirecrestError):  # gone or unreadable: no excerpt, as upstream
                    entry[field] = task.run(Tail(entry[path_field], TAIL_BYTES))
        entry["job_info_extra"] = INFO_RETURNED
    return jobs


def jobs(task: TaskRun, args: dict[str, Any]) -> dict[str, Any]:
    user_jobs = args.get("user_jobs", True)
    found = task.run(Queue(task.user.username if user_jobs else None, args.get("jobs")))
    found = page(found, args.get("page_size"), args.get("page_number"))
    if user_jobs:
        found = _with_files(task, found)
    else:
        for entry in found:
            entry.update(job_file="", job_file_out="", job_file_err="", job_data_out="", job_data_err="",
                         job_info_extra="")
    return {str(i): entry for i, entry in enumerate(found)}


def one_job(task: TaskRun, args: dict[str, Any]) -> dict[str, Any]:
    found = task.run(Queue(task.user.username, [args["jobid"]]))
    if not found:
        raise BadRequest(f"Job {args['jobid']} is not in the queue (finished jobs are listed by /compute/acct)")
    return {str(i): entry for i, entry in enumerate(_with_files(task, found))}


def cancel(task: TaskRun, args: dict[str, Any]) -> str:
    text = task.run(Cancel(args["jobid"]))
    error = cancel_error(text)
    if error is not None:
        raise BadRequest(error)
    return text


def _includes_now(endtime: str | None) -> bool:
    return not endtime or endtime.startswith("now") or endtime == "tomorrow"


def acct(task: TaskRun, args: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = set(args.get("jobs") or [])
    deadline = time.monotonic() + DBD_CATCH_UP_S
    while True:
        found = task.run(Accounting(args.get("jobs"), args.get("starttime"), args.get("endtime")))
        if not _includes_now(args.get("endtime")) or time.monotonic() > deadline:
            break
        # A job that just finished is known to slurmctld a moment before slurmdbd: wait until sacct has it too.
        recent = task.run(RecentlyFinished(task.user.username, 3 * DBD_CATCH_UP_S))
        # Right after a job ends, slurmdbd may hold a provisional row (no partition yet, named "allocation").
        settled = {row["jobid"] for row in found if row["state"] not in ("PENDING", "RUNNING") and row["partition"]}
        if not ((recent & wanted if wanted else recent) - settled):
            break
        time.sleep(0.1)
    return page(found, args.get("page_size"), args.get("page_number"))


def nodes(task: TaskRun, args: dict[str, Any]) -> list[dict[str, Any]]:
    return task.run(Nodes(args.get("nodes")))


def partitions(task: TaskRun, args: dict[str, Any]) -> list[dict[str, Any]]:
    found = task.run(Partitions())
    wanted = args.get("partitions")
    return [p for p in found if p["PartitionName"] in wanted] if wanted else found


def reservations(task: TaskRun, args: dict[str, Any]) -> list[dict[str, Any]]:
    found = task.run(Reservations())
    wanted = args.get("reservations")
    return [r for r in found if r["ReservationName"] in wanted] if wanted else found


def operations(workdirs: Workdirs) -> dict[str, Operation]:
    """Every compute task's operation, by name."""
    return {"submit": Submission(workdirs), **OPERATIONS}


OPERATIONS: dict[str, Operation] = {
    "jobs": jobs, "job": one_job, "cancel": cancel, "acct": acct, "nodes": nodes,
    "partitions": partitions, "reservations": reservations,
}
