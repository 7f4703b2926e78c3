"""A job's script and output files (`scontrol -o show job`), and the end of its output (`tail`).

The contract's job entries carry the script, stdout and stderr paths and an excerpt of each output. scontrol's
one-line form escapes nothing, so the paths are found from the line's fixed ends (see job_files).
"""

from __future__ import annotations

import re

from common.commands import Command, Output

from .fields import job_ids

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


def _command(line: str, limit: int) -> str | None:
    """The Command= value: the nearest one left of `limit` that is followed by its WorkDir."""
    at = line.rfind(" Command=", 0, limit)
    while at >= 0:
        workdir = line.find(" WorkDir=", at + 1, limit)
        if workdir >= 0:
            return line[at + len(" Command="):workdir]
        at = line.rfind(" Command=", 0, at)
    return None


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
    command = _command(line, err_at if err_at >= 0 else len(line))
    if command is not None:
        files["job_file"] = command
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
        self.jobid = job_ids([jobid])[0]

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
    """The last `count` bytes of a job's output file, as text (undecodable bytes replaced)."""

    name = "tail"

    def __init__(self, path: str, count: int) -> None:
        self.path, self.count = path, int(count)

    def argv(self) -> list[str]:
        return ["tail", "-c", str(self.count), "--", self.path]

    def parse(self, result: Output) -> str:
        return result.stdout.decode(errors="replace")
