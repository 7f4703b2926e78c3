"""What following a job's output runs on the login node: the job as scontrol shows it (state, owner, files), the
size of an output file (stat) and a ranged read of it (dd). Each is one allow-listed program, no shell.

The job's id is checked (fields.job_ids) and its files come from Slurm, never from the client; the reads run as
the caller, so the filesystem's permissions apply as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.commands import Command, Output, StatProbe

from .fields import FINISHED, PENDING, job_ids
from .jobfiles import job_files, queue_id

# The fixed run of fields right after the free-text JobName (22.05's order). The name (first) and the comment
# (after WorkDir) are free text and may hold a fake run: the job's own is the last one before its Command. Only a
# job's owner writes them, and the reads run as the caller whatever they say.
HEAD = re.compile(r" UserId=(?P<user>[^\s(]+)\(\d+\) GroupId=\S+ MCS_label=\S* Priority=\d+ Nice=-?\d+ "
                  r"Account=\S* QOS=\S* JobState=(?P<state>[A-Z_]+) Reason=")
EXIT = re.compile(r" BatchFlag=\d+ Reboot=\d+ ExitCode=(?P<code>\d+:\d+) ")
UNKNOWN_JOB = "Invalid job id specified"


@dataclass(frozen=True)
class JobView:
    """One job as scontrol shows it to its owner."""

    jobid: str
    user: str
    state: str
    exit_code: str
    stdout: str  # a path, or jobfiles' "...-not-found" when Slurm has none
    stderr: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def pending(self) -> bool:
        return self.state in PENDING


def _fixed_end(line: str) -> int:
    """Where the fixed fields end: at the job's Command (the nearest one left of StdErr followed by its WorkDir)."""
    err_at = line.rfind(" StdErr=")
    limit = err_at if err_at >= 0 else len(line)
    at = line.rfind(" Command=", 0, limit)
    while at >= 0:
        if line.find(" WorkDir=", at + 1, limit) >= 0:
            return at
        at = line.rfind(" Command=", 0, at)
    return limit


def job_view(line: str) -> JobView | None:
    """A `scontrol -o show job` line, or None when its fixed fields are not where 22.05 puts them."""
    jobid, heads = queue_id(line), list(HEAD.finditer(line, 0, _fixed_end(line)))
    if jobid is None or not heads:
        return None
    head = heads[-1]
    code = EXIT.search(line, head.end())
    files = job_files(line)
    return JobView(jobid, head["user"], head["state"], code["code"] if code else "", files["job_file_out"],
                   files["job_file_err"])


class ShowJob(Command["JobView | None"]):
    """One job by its squeue-style id; None when Slurm does not show it to the caller (unknown, forgotten after
    MinJobAge, or another user's job: PrivateData=jobs makes the three alike), or the id names several jobs."""

    name = "scontrol"

    def __init__(self, jobid: str) -> None:
        self.jobid = job_ids([jobid])[0]

    def argv(self) -> list[str]:
        return ["scontrol", "-o", "show", "job", self.jobid]

    def result(self, output: Output) -> JobView | None:
        if output.status != 0 and UNKNOWN_JOB in (output.err or output.out):
            return None
        return super().result(output)

    def parse(self, result: Output) -> JobView | None:
        found = [(line, view) for line in result.out.splitlines() if (view := job_view(line)) is not None]
        for _, view in found:
            if view.jobid == self.jobid:
                return view
        # `12` of an array is every task (no one file is meant); an array task's own id (SLURM_JOB_ID) is that task.
        if len(found) == 1 and found[0][0].startswith(f"JobId={self.jobid} "):
            return found[0][1]
        return None


class FileSize(StatProbe["int | None"]):
    """The size of a (job output) file, links followed; None while it does not exist."""

    format = "%s"

    def result(self, output: Output) -> int | None:
        if output.status != 0 and "No such file or directory" in output.err:
            return None
        return super().result(output)

    def parse(self, result: Output) -> int | None:
        text = result.out.strip()
        return int(text) if text.isascii() and text.isdigit() else None


class ReadRange(Command["bytes | None"]):
    """At most `count` bytes of `path` from byte `offset` (fewer at the end of the file; none past it); None while
    the file does not exist. dd seeks to the offset, so a read costs the same anywhere in the file."""

    name = "dd"

    def __init__(self, path: str, offset: int, count: int) -> None:
        self.path, self.offset, self.count = path, int(offset), int(count)
        if self.offset < 0 or self.count <= 0:
            raise ValueError("a range needs a non-negative offset and a positive count")

    def argv(self) -> list[str]:
        # dd has no `--`: `if=` takes the rest of its word literally (a path with `=` or spaces included).
        return ["dd", f"if={self.path}", "iflag=skip_bytes,count_bytes", f"skip={self.offset}",
                f"count={self.count}", f"bs={min(self.count, 1 << 16)}", "status=none"]

    def result(self, output: Output) -> bytes | None:
        if output.status != 0 and "No such file or directory" in output.err:
            return None
        return super().result(output)

    def parse(self, result: Output) -> bytes | None:
        return result.stdout[: self.count]
