"""sacct: the caller's finished (and running) jobs from slurmdbd, and the time arguments sacct accepts.

Times are user text that becomes an option value, so only the forms the real sacct 22.05 accepts pass
(check_time); anything else is a 400 before a command is built. `--parsable2` with the job name last keeps a
`|` in a name from shifting a field.
"""

from __future__ import annotations

import re

from common import errors
from common.commands import Command, Output

from .fields import job_ids
from .queue import QueuedJobs

ACCT_FIELDS = ("jobid", "partition", "user", "state", "start", "cputime", "end", "nnodes", "nodelist", "exitcode",
               "elapsed", "jobname")  # jobname last: split with maxsplit, a "|" in a name cannot shift a field
# 1970-01-01 is time 0, which sacct takes as "not given" (midnight today); the next day is really the past.
EPOCH = "1970-01-02"

_HMS = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_MD = r"(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?:/\d\d)?"
SACCT_TIME = re.compile(
    rf"\d{{4}}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:T{_HMS})?"  # YYYY-MM-DD[THH:MM[:SS]]
    r"|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:\d\d)?"  # MMDD[YY]
    rf"|{_MD}(?:-{_HMS})?"  # MM/DD[/YY][-HH:MM[:SS]]
    rf"|{_HMS}"  # HH:MM[:SS]
    r"|now(?:[+-]\d+(?:seconds?|minutes?|hours?|days?|weeks?)?)?"
    r"|today|midnight|noon|tomorrow|fika|teatime",
    re.ASCII,
)


def check_time(value: str) -> str:
    """A sacct --starttime/--endtime value, or BadRequest. Only forms the real sacct 22.05 accepts pass."""
    value = value.strip()
    if not SACCT_TIME.fullmatch(value):
        raise errors.BadRequest(
            f"Invalid time {value[:64]!r}: use YYYY-MM-DD[THH:MM[:SS]], MMDD[YY], MM/DD[/YY], HH:MM[:SS], "
            "now[{+|-}count[seconds|minutes|hours|days|weeks]], today, midnight, noon or tomorrow",
            "Failed to retrieve account information")
    return value


def acct_row(line: str) -> dict[str, str] | None:
    values = line.split("|", len(ACCT_FIELDS) - 1)
    if len(values) != len(ACCT_FIELDS):
        return None
    f = dict(zip(ACCT_FIELDS, values, strict=True))
    return {
        "jobid": f["jobid"], "partition": f["partition"], "name": f["jobname"], "user": f["user"],
        "state": f["state"], "start_time": f["start"], "time": f["cputime"], "cpu_time": f["cputime"],
        "elapsed_time": f["elapsed"], "termination_time": f["end"],
        "time_left": f["end"],  # upstream's value, kept for compatibility
        "nodes": f["nnodes"], "nodelist": f["nodelist"], "exit_code": f["exitcode"],
    }


class Accounting(Command[list[dict]]):
    """sacct -X for the caller (sacct's default user), one dict per allocation."""

    name = "sacct"

    def __init__(self, jobs: list[str] | None = None, starttime: str | None = None,
                 endtime: str | None = None) -> None:
        self.jobs = job_ids(jobs)
        self.starttime = check_time(starttime) if starttime else None
        self.endtime = check_time(endtime) if endtime else None

    def argv(self) -> list[str]:
        words = ["sacct", "-X", "--noheader", "--parsable2", f"--format={','.join(ACCT_FIELDS)}"]
        # Without --starttime sacct looks from midnight only: a job asked for by id must be found whenever it ran.
        start = self.starttime or (EPOCH if self.jobs else None)
        if start:
            words.append(f"--starttime={start}")
        if self.endtime:
            words.append(f"--endtime={self.endtime}")
        if self.jobs:
            words.append(f"--jobs={','.join(self.jobs)}")
        return words

    def parse(self, result: Output) -> list[dict]:
        rows = (acct_row(line) for line in result.out.splitlines() if line.strip())
        return [row for row in rows if row]


class AccountedJobs(QueuedJobs):
    """Which of `ids` slurmdbd has as the caller's jobs (older ones): `--user` keeps another user's job out of the
    answer whatever PrivateData says."""

    name = "sacct"

    def argv(self) -> list[str]:
        return ["sacct", "-X", "--noheader", "--parsable2", "--format=jobid", f"--starttime={EPOCH}",
                f"--user={self.user}", f"--jobs={','.join(self.ids)}"]

    def parse(self, result: Output) -> set:
        return {re.split(r"[_+.]", line.strip())[0] for line in result.out.splitlines()} & set(self.ids)
