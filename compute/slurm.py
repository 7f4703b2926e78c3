"""The compute service's Slurm commands: each builds its argv and parses the output (FirecREST v1 §7.3).

Checked against a real Slurm 22.05. Quoting and the error mapping live in common/commands.py; what this module
adds is what Slurm itself does with a value once it has the word (sbatch's `--export` list, sacct's times) and
parsers that user-controlled text (job names, comments, paths) cannot shift.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, tzinfo
from typing import Any

from common import errors
from common.commands import Command, Output, classify
from common.params import valid_job_id

from .dependency import check as check_dependency
from .environment import check_env
from .names import node_list

COMMENT_PREFIX = "firecrest-task="  # every job we submit carries its task id, to be found again after a crash


def _job_ids(jobs: list[str] | None) -> list[str]:
    # The ids become option values: a checked id can never read as an option or carry a second list item.
    for jobid in jobs or []:
        if not valid_job_id(jobid):
            raise errors.BadRequest(f"{jobid[:64]} is not a valid job ID")
    return list(jobs or [])


# ---------------------------------------------------------------------------------------------------------------
# Submission


class Submit(Command[str]):
    """sbatch; returns the job id (a string, as the contract has it)."""

    name = "sbatch"

    def __init__(self, script: str, workdir: str, tag: str, account: str | None = None,
                 env: dict[str, str] | None = None, dependency: str = "") -> None:
        self.script, self.workdir, self.tag, self.account = script, workdir, tag, account
        self.env = check_env(env) if env else {}  # again here: the argv must never depend on the caller's care
        check_dependency(dependency)  # its syntax, again here (the jobs' owner was checked by the request)
        self.dependency = dependency

    def argv(self) -> list[str]:
        # --dependency always: the command line overrides the script's directives (see dependency.py).
        words = ["sbatch", "--parsable", f"--chdir={self.workdir}", f"--comment={COMMENT_PREFIX}{self.tag}",
                 f"--dependency={self.dependency}"]
        if self.account:
            words.append(f"--account={self.account}")
        if self.env:
            words.append("--export=" + ",".join(["ALL", *(f"{k}={v}" for k, v in self.env.items())]))
        return [*words, "--", self.script]

    def parse(self, result: Output) -> str:
        # --parsable prints "id" or "id;cluster"; warnings go to stderr.
        lines = result.out.strip().splitlines()
        jobid = lines[-1].split(";")[0].strip() if lines else ""
        if not jobid.isdigit():
            raise errors.RemoteError(f"Unexpected sbatch output: {result.out.strip()[:200]!r}")
        return jobid


def _submitted_id(jobid: str) -> str:
    """What sbatch printed for a queue id: `12_[1-3]`, `12_1` and `12+0` were all submitted as `12`."""
    return re.split(r"[_+]", jobid, maxsplit=1)[0]


class FindTagged(Command[str | None]):
    """The job submitted for a task, if any: looked up after a restart, before submitting again.

    squeue knows finished jobs only for MinJobAge (300 s by default), so a job that ended longer ago is not found.
    """

    name = "squeue"

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def argv(self) -> list[str]:
        # The id never contains "|", so splitting once at the first "|" leaves the comment whole.
        return ["squeue", "--me", "--states=all", "--noheader", "--format=%i|%k"]

    def parse(self, result: Output) -> str | None:
        wanted = f"{COMMENT_PREFIX}{self.tag}"
        for line in result.out.splitlines():
            jobid, sep, comment = line.partition("|")
            if sep and comment == wanted:
                return _submitted_id(jobid.strip())
        return None


class JobDir(Command[str]):
    name = "mkdir"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["mkdir", "-p", "--", self.path]

    def parse(self, result: Output) -> str:
        return ""


class WriteScript(Command[str]):
    """Writes stdin (the caller passes the script) to `path`; dd, because the login node runs no shell."""

    name = "upload"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["dd", f"of={self.path}", "bs=1M", "status=none"]

    def parse(self, result: Output) -> str:
        return ""


# ---------------------------------------------------------------------------------------------------------------
# scontrol -o show job: the script and output paths


NOT_FOUND = {"job_file": "command-not-found", "job_file_out": "stdout-file-not-found",
             "job_file_err": "stderr-file-not-found"}
NEXT_KEY = re.compile(r"\s+[A-Za-z][\w/:]*=|\s*$")
JOB_HEAD = re.compile(r"JobId=(\d+)((?: (?:ArrayJobId|ArrayTaskId|ArrayTaskThrottle|HetJobId|HetJobOffset)=\S*)*)"
                      r" JobName=")


def _value(line: str, start: int, end: int | None = None) -> str:
    """The value that begins at `start`: up to `end`, or else up to the next ` Key=` (paths may hold spaces)."""
    if end is not None:
        return line[start:end]
    found = NEXT_KEY.search(line, start)
    return line[start:found.start()] if found else line[start:]


def job_files(line: str) -> dict[str, str]:
    """Command, StdOut and StdErr of one `scontrol -o show job` line.

    Slurm escapes nothing: the job name (first) and the comment (just before StdErr) are free text and may hold
    " StdOut=/x". The file keys are the last ones, so they are found from the right end of the line:
    StdOut, then StdIn and StdErr before it; then Command, the nearest one left of StdErr that is followed by
    its WorkDir (a Command= inside the comment has none after it).
    """
    line = line.rstrip("\n")
    files = dict(NOT_FOUND)
    out_at = line.rfind(" StdOut=")
    in_at = line.rfind(" StdIn=", 0, out_at if out_at >= 0 else len(line))
    err_at = line.rfind(" StdErr=", 0, in_at if in_at >= 0 else len(line))
    if out_at >= 0:
        files["job_file_out"] = _value(line, out_at + len(" StdOut="))
    if err_at >= 0:
        files["job_file_err"] = _value(line, err_at + len(" StdErr="), in_at if in_at >= 0 else None)
    limit = err_at if err_at >= 0 else len(line)
    at = line.rfind(" Command=", 0, limit)
    while at >= 0:
        workdir = line.find(" WorkDir=", at + 1, limit)
        if workdir >= 0:
            files["job_file"] = line[at + len(" Command="):workdir]
            break
        at = line.rfind(" Command=", 0, at)
    for key, missing in NOT_FOUND.items():
        if files[key] in ("", "(null)"):  # --wrap jobs have Command=(null)
            files[key] = missing
    return files


def queue_id(line: str) -> str | None:
    """The squeue-style id of a `scontrol -o show job` line (12, 12_3, 12_[4-9], 12+1), from its fixed head."""
    head = JOB_HEAD.match(line)
    if not head:
        return None
    extra = dict(token.split("=", 1) for token in head.group(2).split())
    if "ArrayTaskId" in extra:
        task = extra["ArrayTaskId"]
        return f"{extra.get('ArrayJobId', head.group(1))}_{task if task.isdigit() else f'[{task}]'}"
    if "HetJobId" in extra:
        return f"{extra['HetJobId']}+{extra.get('HetJobOffset', '0')}"
    return head.group(1)


class JobFiles(Command[dict]):
    name = "scontrol"

    def __init__(self, jobid: str) -> None:
        self.jobid = _job_ids([jobid])[0]

    def argv(self) -> list[str]:
        return ["scontrol", "-o", "show", "job", self.jobid]

    def parse(self, result: Output) -> dict[str, str]:
        for line in result.out.splitlines():
            if line.startswith("JobId="):
                return job_files(line)
        return dict(NOT_FOUND)


class AllJobFiles(Command[dict]):
    """The caller's jobs' files in one call, by squeue-style id (the listing needs them for every job)."""

    name = "scontrol"

    def argv(self) -> list[str]:
        return ["scontrol", "-o", "show", "job"]

    def parse(self, result: Output) -> dict[str, dict[str, str]]:
        found = {}
        for line in result.out.splitlines():  # "No jobs in the system" has no id and is skipped
            jobid = queue_id(line)
            if jobid:
                found[jobid] = job_files(line)
        return found


class Tail(Command[str]):
    name = "tail"

    def __init__(self, path: str, count: int) -> None:
        self.path, self.count = path, int(count)

    def argv(self) -> list[str]:
        return ["tail", "-c", str(self.count), "--", self.path]

    def parse(self, result: Output) -> str:
        return result.stdout.decode(errors="replace")


# ---------------------------------------------------------------------------------------------------------------
# squeue --json: the queue, in squeue's own text form


INFINITE, NO_VAL = 0xFFFFFFFF, 0xFFFFFFFE
# squeue without --states lists pending, running, suspended and completing jobs; --json (22.05) lists every job
# slurmctld still holds, so the finished ones are left out here.
FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
            "OUT_OF_MEMORY", "REVOKED", "STAGE_OUT"}
PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SPECIAL_EXIT", "RESV_DEL_HOLD"}
REASON_STATES = PENDING | {"TIMEOUT", "OUT_OF_MEMORY", "DEADLINE", "FAILED"}  # %R shows "(reason)" for these


def _number(value: Any) -> int | None:
    """An integer field of the JSON; None when unset (newer Slurm wraps them as {set, infinite, number})."""
    if isinstance(value, dict):
        if value.get("infinite"):
            return INFINITE
        return int(value.get("number", 0)) if value.get("set", True) else None
    return None if value is None else int(value)


def _state(job: dict[str, Any]) -> str:
    state = job.get("job_state", "")
    return str(state[0] if isinstance(state, list) and state else state or "")


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
    state = _state(job)
    start, end = _number(job.get("start_time")) or 0, _number(job.get("end_time")) or 0
    if start == 0 or state in PENDING:
        return 0
    if state == "SUSPENDED":
        return _number(job.get("pre_sus_time")) or 0
    until = now if state in ("RUNNING", "CONFIGURING", "RESIZING") or end == 0 else end
    suspended = _number(job.get("suspend_time")) or 0
    if suspended:
        return int(until - suspended) + (_number(job.get("pre_sus_time")) or 0)
    return int(until - start)


def squeue_id(job: dict[str, Any]) -> str:
    """squeue's %i: 12, 12_3 (array task), 12_[4-9%2] (pending array tasks), 12+1 (heterogeneous component)."""
    array_id, task = _number(job.get("array_job_id")), _number(job.get("array_task_id"))
    if job.get("array_task_string"):
        return f"{array_id}_[{job['array_task_string']}]"
    if array_id and task is not None and task != NO_VAL:
        return f"{array_id}_{task}"
    if _number(job.get("het_job_id")):
        return f"{_number(job['het_job_id'])}+{_number(job.get('het_job_offset')) or 0}"
    return str(_number(job.get("job_id")))


def job_row(job: dict[str, Any], now: float, tz: tzinfo | None = None) -> dict[str, str]:
    """One squeue --json job as the contract's job (every value a string, as squeue's text output).

    Unlike upstream, start_time holds the start time (%S, the expected one for a pending job when Slurm has
    one) and time holds the time used (%M). Times are shown in `tz` (None: the local time zone).
    """
    state = _state(job)
    start = _number(job.get("start_time")) or 0
    limit = _number(job.get("time_limit"))
    used = time_used(job, now)
    if limit is None or limit == INFINITE:
        left = "UNLIMITED"
    elif limit == NO_VAL:
        left = "NOT_SET"
    else:
        left = squeue_secs(limit * 60 - used)
    if state in REASON_STATES:
        nodelist = f"({job.get('state_description') or job.get('state_reason') or 'None'})"
    else:
        nodelist = str(job.get("nodes") or "")
    return {
        "jobid": squeue_id(job),
        "partition": str(job.get("partition") or ""),
        "name": str(job.get("name") or ""),
        "user": str(job.get("user_name") or ""),
        "state": state,
        "start_time": datetime.fromtimestamp(start, tz).strftime("%Y-%m-%dT%H:%M:%S") if start else "N/A",
        "time": squeue_secs(used),
        "time_left": left,
        "nodes": str(_number(job.get("node_count")) or 0),
        "nodelist": nodelist,
    }


def _wanted(job: dict[str, Any], jobid: str, requested: str) -> bool:
    """squeue --jobs semantics: 12 selects job 12 and every task/component of array or het job 12."""
    if requested == jobid:
        return True
    number, _, rest = requested.partition("_")
    if not rest and "+" in number:
        het, offset = number.split("+")
        return _number(job.get("het_job_id")) == int(het) and (_number(job.get("het_job_offset")) or 0) == int(offset)
    if rest:
        return _number(job.get("array_job_id")) == int(number) and str(_number(job.get("array_task_id"))) == rest
    ids = (_number(job.get("job_id")), _number(job.get("array_job_id")), _number(job.get("het_job_id")))
    return int(number) in ids


def _sort_key(jobid: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", jobid))


def queue_rows(data: dict[str, Any], user: str | None, jobs: list[str] | None, now: float,
               tz: tzinfo | None = None) -> list[dict[str, str]]:
    """Filters squeue --json as squeue would (22.05 ignores --user/--jobs with --json), sorted by job id."""
    rows = []
    for job in data.get("jobs", []):
        if _state(job) in FINISHED or (user and job.get("user_name") != user):
            continue
        row = job_row(job, now, tz)
        if jobs and not any(_wanted(job, row["jobid"], wanted) for wanted in jobs):
            continue
        rows.append(row)
    return sorted(rows, key=lambda row: _sort_key(row["jobid"]))


class Queue(Command[list[dict]]):
    name = "squeue"

    def __init__(self, user: str | None = None, jobs: list[str] | None = None) -> None:
        self.user, self.jobs = user, _job_ids(jobs)

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
        try:
            data = json.loads(result.out)
        except json.JSONDecodeError:
            raise errors.RemoteError(f"Unexpected squeue output: {result.out.strip()[:200]!r}") from None
        return queue_rows(data, self.user, self.jobs, time.time())


class RecentlyFinished(Command[set[str]]):
    """The user's jobs that slurmctld saw finish in the last `seconds`: slurmdbd (sacct) learns of them a moment
    later, and accounting waits for that so a job that just ended is never missing from it."""

    name = "squeue"

    def __init__(self, user: str, seconds: float) -> None:
        self.user, self.seconds = user, seconds

    def argv(self) -> list[str]:
        return ["squeue", "--json", f"--user={self.user}"]

    def parse(self, result: Output) -> set[str]:
        try:
            data = json.loads(result.out)
        except json.JSONDecodeError:
            raise errors.RemoteError(f"Unexpected squeue output: {result.out.strip()[:200]!r}") from None
        since = time.time() - self.seconds
        return {str(job.get("job_id")) for job in data.get("jobs", [])
                if job.get("user_name") == self.user and _state(job) in FINISHED
                and (_number(job.get("end_time")) or 0) >= since}


# ---------------------------------------------------------------------------------------------------------------
# sacct


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
        self.jobs = _job_ids(jobs)
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


# ---------------------------------------------------------------------------------------------------------------
# scancel


class Cancel(Command[str]):
    """scancel -v; returns its verbose text (stderr). Exit 0 also when the job is unknown or already finished."""

    name = "scancel"

    def __init__(self, jobid: str) -> None:
        self.jobid = _job_ids([jobid])[0]

    def argv(self) -> list[str]:
        return ["scancel", "-v", self.jobid]

    def result(self, output: Output) -> str:
        if output.status == 210:  # "Access/permission denied": another user's job
            raise errors.PermissionDenied("User does not have permission to cancel job").with_description(
                f"Error on {self.name} operation")
        return super().result(output)

    def parse(self, result: Output) -> str:
        return result.err


def cancel_error(text: str) -> str | None:
    """The failure in scancel's text (what follows `error: `, per line), or None when it has no error."""
    if "error" not in text:
        return None
    found = [line.split("error: ", 1)[1].strip() for line in text.splitlines() if "error: " in line]
    return "\n".join(found) if found else text.strip()


# ---------------------------------------------------------------------------------------------------------------
# scontrol -a show -o node|partition|reservation


TOKEN = re.compile(r"(?:^|\s)([A-Za-z][\w/:.]*)=(\S*)")


def scontrol_fields(line: str) -> dict[str, str]:
    """The first value of each `Key=value` token (OS= and Reason= values hold spaces; we need none of them)."""
    found: dict[str, str] = {}
    for key, value in TOKEN.findall(line):
        found.setdefault(key, value)
    return found


def _split(value: str, sep: str) -> list[str]:
    return [] if value in ("", "(null)") else value.split(sep)


def _records(text: str, first_key: str) -> list[dict[str, str]]:
    # "No nodes/partitions/reservations in the system" has no first key and gives no record.
    return [scontrol_fields(line) for line in text.splitlines() if line.startswith(f"{first_key}=")]


class Nodes(Command[list[dict]]):
    name = "scontrol"

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = node_list(names)  # checked hostlist syntax; repeats dropped (scontrol prints them twice)

    def argv(self) -> list[str]:
        # One comma-separated word ("too many arguments" otherwise), after `--`: getopt permutes, so a name
        # anywhere else could still be read as an option.
        return ["scontrol", "-a", "show", "-o", "node", *(["--", ",".join(self.names)] if self.names else [])]

    def result(self, output: Output) -> list[dict]:
        if output.status != 0 and not output.err:
            # "Node x not found" goes to stdout, after the nodes that were found.
            missing = [line for line in output.out.splitlines() if not line.startswith("NodeName=")]
            text = "\n".join(missing) or output.out
            error = classify(Output(output.status, b"", text.encode()))
            raise error.with_description(f"Error on {self.name} operation")
        return super().result(output)

    def parse(self, result: Output) -> list[dict]:
        return [{"NodeName": f.get("NodeName", ""), "ActiveFeatures": _split(f.get("ActiveFeatures", ""), ","),
                 "Partitions": _split(f.get("Partitions", ""), ","), "State": _split(f.get("State", ""), "+")}
                for f in _records(result.out, "NodeName")]


class Partitions(Command[list[dict]]):
    name = "scontrol"

    def argv(self) -> list[str]:
        return ["scontrol", "-a", "show", "-o", "partition"]

    def parse(self, result: Output) -> list[dict]:
        keys = ("PartitionName", "State", "TotalCPUs", "TotalNodes", "Default")
        return [{k: f.get(k, "") for k in keys} for f in _records(result.out, "PartitionName")]


class Reservations(Command[list[dict]]):
    name = "scontrol"

    def argv(self) -> list[str]:
        # -o prints ISO times already, as upstream's SLURM_TIME_FORMAT=standard (no env assignment is possible).
        return ["scontrol", "-a", "show", "-o", "reservation"]

    def parse(self, result: Output) -> list[dict]:
        keys = ("ReservationName", "State", "Nodes", "StartTime", "EndTime")
        return [{**{k: f.get(k, "") for k in keys}, "Features": _split(f.get("Features", ""), "&")}
                for f in _records(result.out, "ReservationName")]
