"""Our own jobs: tagged when they start, found again after a restart, stopped.

Every job a service starts carries its task id in its comment, behind a prefix of its own: compute's
submissions `firecrest-task=`, storage's transfer jobs `firecrest-transfer=` (not the same: a transfer that
starts over runs a second job, a submission never does). A task that runs again looks for the job an earlier
attempt left, with one squeue command (FindByComment) that each use sets up its way: a submission by any state
(a job that already ended was submitted all the same), a transfer only while the job still runs.

scancel comes in two forms whose argv and results differ, so they stay two commands: compute's Cancel is the
contract's `DELETE /compute/jobs/{id}` (one checked id, `-v` for the text the contract returns, another user's
job a 403); storage's CancelJobs stops the jobs a dead process left (ids squeue gave), `--full` so that the batch
shell and every step go too, and needs no answer.
"""

from __future__ import annotations

from typing import ClassVar

from common import errors
from common.commands import Command, Output, T

from .fields import job_ids, submitted_id

TASK_PREFIX = "firecrest-task="  # every job we submit carries its task id, to be found again after a crash
TRANSFER_PREFIX = "firecrest-transfer="  # every transfer job of storage/external_jobs.py carries its task id


class FindByComment(Command[T]):
    """The caller's jobs whose comment is exactly `prefix + tag`, by squeue id, in squeue's order.

    Each use has its prefix (TASK_PREFIX, TRANSFER_PREFIX) and says in `parse` what it makes of the matches
    (`self.matches`); `every_state` adds the jobs that already ended (squeue keeps them for MinJobAge).
    """

    name = "squeue"
    every_state: ClassVar[bool] = False

    def __init__(self, prefix: str, tag: str) -> None:
        self.prefix, self.tag = prefix, tag

    def argv(self) -> list[str]:
        # The id never contains "|", so splitting once at the first "|" leaves the comment whole.
        states = ["--states=all"] if self.every_state else []
        return ["squeue", "--me", *states, "--noheader", "--format=%i|%k"]

    def matches(self, result: Output) -> list[str]:
        wanted = f"{self.prefix}{self.tag}"
        return [jobid.strip() for jobid, sep, comment in (line.partition("|") for line in result.out.splitlines())
                if sep and comment == wanted]


class FindTagged(FindByComment[str | None]):
    """The job submitted for a task, if any (as sbatch printed its id): looked up after a restart, before
    submitting again.

    Every state: a job that already ended was submitted all the same. squeue knows finished jobs only for
    MinJobAge (300 s by default), so a job that ended longer ago is not found.
    """

    every_state = True

    def __init__(self, tag: str) -> None:
        super().__init__(TASK_PREFIX, tag)

    def parse(self, result: Output) -> str | None:
        found = self.matches(result)
        return submitted_id(found[0]) if found else None


class FindJob(FindByComment[list[str]]):
    """The jobs of a transfer task still queued or running (left running by a process that died), by squeue id;
    they are stopped with CancelJobs."""

    def __init__(self, task_id: str) -> None:
        super().__init__(TRANSFER_PREFIX, task_id)

    def parse(self, result: Output) -> list[str]:
        return self.matches(result)


class FindAnyJob(FindJob):
    """The jobs of a transfer task in any state (a finished one for MinJobAge): none at all while its srun runs
    means Slurm forgot it."""

    every_state = True


class Cancel(Command[str]):
    """scancel -v; returns its verbose text (stderr). Exit 0 also when the job is unknown or already finished."""

    name = "scancel"

    def __init__(self, jobid: str) -> None:
        self.jobid = job_ids([jobid])[0]

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


class CancelJobs(Command[str]):
    """scancel --full of several jobs (as squeue listed them); success has no output worth returning."""

    name = "scancel"

    def __init__(self, jobids: list[str]) -> None:
        self.jobids = jobids

    def argv(self) -> list[str]:
        return ["scancel", "--full", *self.jobids]

    def parse(self, result: Output) -> str:
        return ""
