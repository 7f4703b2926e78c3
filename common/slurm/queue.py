"""squeue: the queue as the contract shows it, and which jobs slurmctld still holds.

The listing reads `squeue --json` (names, comments and paths are free text and could shift a text format's
columns) and renders each job as squeue's own text output would (%i, %M, %L, %R), filtering as squeue would
(22.05 ignores --user/--jobs with --json). Finding our own jobs by their comment is in jobs.py.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, tzinfo
from typing import Any

from common import errors
from common.commands import Command, Output

from .fields import FINISHED, INFINITE, NO_VAL, PENDING, job_ids, number, state

REASON_STATES = PENDING | {"TIMEOUT", "OUT_OF_MEMORY", "DEADLINE", "FAILED"}  # %R shows "(reason)" for these


def squeue_json(text: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise errors.RemoteError(f"Unexpected squeue output: {text.strip()[:200]!r}") from None


# ---------------------------------------------------------------------------------------------------------------
# squeue --json, in squeue's text form


def squeue_secs(seconds: float) -> str:
    """squeue's %M/%L format: M:SS, H:MM:SS, D-HH:MM:SS (and INVALID outside 0..365 days, as squeue)."""
    seconds = int(seconds)
    if seconds < 0 or seconds > 365 * 24 * 3600:
        return "INVALID"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def time_used(job: dict[str, Any], now: float) -> int:
    """squeue's job_time_used(): 0 while pending, suspension time excluded."""
    current = state(job)
    start, end = number(job.get("start_time")) or 0, number(job.get("end_time")) or 0
    if start == 0 or current in PENDING:
        return 0
    if current == "SUSPENDED":
        return number(job.get("pre_sus_time")) or 0
    until = now if current in ("RUNNING", "CONFIGURING", "RESIZING") or end == 0 else end
    suspended = number(job.get("suspend_time")) or 0
    if suspended:
        return int(until - suspended) + (number(job.get("pre_sus_time")) or 0)
    return int(until - start)


def squeue_id(job: dict[str, Any]) -> str:
    """squeue's %i: 12, 12_3 (array task), 12_[4-9%2] (pending array tasks), 12+1 (heterogeneous component)."""
    array_id, task = number(job.get("array_job_id")), number(job.get("array_task_id"))
    if job.get("array_task_string"):
        return f"{array_id}_[{job['array_task_string']}]"
    if array_id and task is not None and task != NO_VAL:
        return f"{array_id}_{task}"
    if number(job.get("het_job_id")):
        return f"{number(job['het_job_id'])}+{number(job.get('het_job_offset')) or 0}"
    return str(number(job.get("job_id")))


def _time_left(job: dict[str, Any], used: int) -> str:
    limit = number(job.get("time_limit"))
    if limit is None or limit == INFINITE:
        return "UNLIMITED"
    if limit == NO_VAL:
        return "NOT_SET"
    return squeue_secs(limit * 60 - used)


def job_row(job: dict[str, Any], now: float, tz: tzinfo | None = None) -> dict[str, str]:
    """One squeue --json job as the contract's job (every value a string, as squeue's text output).

    Unlike upstream, start_time holds the start time (%S, the expected one for a pending job when Slurm has
    one) and time holds the time used (%M). Times are shown in `tz` (None: the local time zone).
    """
    current = state(job)
    start = number(job.get("start_time")) or 0
    used = time_used(job, now)
    if current in REASON_STATES:
        nodelist = f"({job.get('state_description') or job.get('state_reason') or 'None'})"
    else:
        nodelist = str(job.get("nodes") or "")
    return {
        "jobid": squeue_id(job),
        "partition": str(job.get("partition") or ""),
        "name": str(job.get("name") or ""),
        "user": str(job.get("user_name") or ""),
        "state": current,
        "start_time": datetime.fromtimestamp(start, tz).strftime("%Y-%m-%dT%H:%M:%S") if start else "N/A",
        "time": squeue_secs(used),
        "time_left": _time_left(job, used),
        "nodes": str(number(job.get("node_count")) or 0),
        "nodelist": nodelist,
    }


def _wanted(job: dict[str, Any], jobid: str, requested: str) -> bool:
    """squeue --jobs semantics: 12 selects job 12 and every task/component of array or het job 12."""
    if requested == jobid:
        return True
    head, _, rest = requested.partition("_")
    if not rest and "+" in head:
        het, offset = head.split("+")
        return number(job.get("het_job_id")) == int(het) and (number(job.get("het_job_offset")) or 0) == int(offset)
    if rest:
        return number(job.get("array_job_id")) == int(head) and str(number(job.get("array_task_id"))) == rest
    ids = (number(job.get("job_id")), number(job.get("array_job_id")), number(job.get("het_job_id")))
    return int(head) in ids


def _sort_key(jobid: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", jobid))


def queue_rows(data: dict[str, Any], user: str | None, jobs: list[str] | None, now: float,
               tz: tzinfo | None = None) -> list[dict[str, str]]:
    """Filters squeue --json as squeue would (22.05 ignores --user/--jobs with --json), sorted by job id."""
    rows = []
    for job in data.get("jobs", []):
        if state(job) in FINISHED or (user and job.get("user_name") != user):
            continue
        row = job_row(job, now, tz)
        if jobs and not any(_wanted(job, row["jobid"], wanted) for wanted in jobs):
            continue
        rows.append(row)
    return sorted(rows, key=lambda row: _sort_key(row["jobid"]))


# ---------------------------------------------------------------------------------------------------------------
# The commands


class Queue(Command[list[dict]]):
    name = "squeue"

    def __init__(self, user: str | None = None, jobs: list[str] | None = None) -> None:
        self.user, self.jobs = user, job_ids(jobs)

    def argv(self) -> list[str]:
        # 22.05 ignores the filters with --json (queue_rows applies them); later versions honour them.
        words = ["squeue", "--json"]
        if self.user:
            words.append(f"--user={self.user}")
        if self.jobs:
            words.append(f"--jobs={','.join(self.jobs)}")
        return words

    def result(self, output: Output) -> list[dict]:
        if output.status != 0 and "Invalid job id specified" in (output.err or output.out):
            return []  # an unknown id given with --jobs: not in the queue
        return super().result(output)

    def parse(self, result: Output) -> list[dict]:
        return queue_rows(squeue_json(result.out), self.user, self.jobs, time.time())


class RecentlyFinished(Command[set[str]]):
    """The user's jobs that slurmctld saw finish in the last `seconds`: slurmdbd (sacct) learns of them a moment
    later, and accounting waits for that so a job that just ended is never missing from it."""

    name = "squeue"

    def __init__(self, user: str, seconds: float) -> None:
        self.user, self.seconds = user, seconds

    def argv(self) -> list[str]:
        return ["squeue", "--json", f"--user={self.user}"]

    def parse(self, result: Output) -> set[str]:
        data = squeue_json(result.out)
        since = time.time() - self.seconds
        return {str(job.get("job_id")) for job in data.get("jobs", [])
                if job.get("user_name") == self.user and state(job) in FINISHED
                and (number(job.get("end_time")) or 0) >= since}


class QueuedJobs(Command[set]):
    """Which of `ids` slurmctld holds as the caller's jobs (squeue --json lists all jobs the caller may see)."""

    name = "squeue"

    def __init__(self, user: str, ids: list[str]) -> None:
        self.user, self.ids = user, ids

    def argv(self) -> list[str]:
        return ["squeue", "--json"]

    def parse(self, result: Output) -> set:
        try:
            jobs = json.loads(result.out).get("jobs", [])
        except (json.JSONDecodeError, AttributeError):
            raise errors.RemoteError("Unexpected squeue output") from None
        mine: set[str] = set()
        for job in jobs:
            if job.get("user_name") == self.user:
                mine.update(str(job.get(k)) for k in ("job_id", "array_job_id", "het_job_id") if job.get(k))
        return mine & set(self.ids)
