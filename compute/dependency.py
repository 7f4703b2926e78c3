"""Job dependencies of a submission, allowed on the caller's own jobs only.

Slurm takes `afterok:<id>` on any job id, another user's too, and ignores an id it does not know: so a dependency
tells whether someone else's job exists and how it ended (PrivateData hides exactly that). Every submission
therefore names its dependency on sbatch's command line (`--dependency=<checked>`, empty when none), which
overrides whatever the script's `#SBATCH`/`#PBS` lines say (sbatch applies the command line last), so nothing
unchecked reaches Slurm even if the script changes after it was read. The dependency a script asks for is read
from its directives and kept if every job it names is the caller's; one that is not, or does not exist, is the
same 400, so the answer tells nothing about other users' jobs.

The dependency syntax and the squeue/sacct lookups are Slurm's (common/slurm); the rule is compute's, here.
"""

from __future__ import annotations

from collections.abc import Callable

from common import errors
from common.commands import Command, Output, classify
from common.slurm.accounting import AccountedJobs
from common.slurm.queue import QueuedJobs
from common.slurm.submit import SUBMIT_FAILED
from common.slurm.submit import check_dependency as check

from .script import HEADER_BYTES, directives, words


def requested(script: bytes) -> str:
    """The dependency the script's batch directives ask for (the last one, as sbatch keeps), or ""."""
    found = ""
    for magic, rest in directives(script):
        if magic in ("#PBS", "#BSUB") and ("depend" in rest.lower() or "-w" in rest.split()):
            raise errors.BadRequest("Write job dependencies as '#SBATCH --dependency=...' (#PBS and #BSUB "
                                    "dependencies are not passed on)", SUBMIT_FAILED)
        if magic != "#SBATCH":
            continue
        given = words(rest)
        for i, word in enumerate(given):
            name, eq, value = word.partition("=")
            following = given[i + 1] if i + 1 < len(given) else ""
            if len(name) >= 5 and "--dependency".startswith(name):  # getopt takes any unambiguous prefix
                found = value if eq else following
            elif word.startswith("-d") and not word.startswith("--"):
                found = word[2:] or following
    return found


def allowed(run: Callable[[Command[set]], set], user: str, spec: str) -> str:
    """`spec` if every job it names is `user`'s, else the 400 (the same for another user's job and for none)."""
    ids = check(spec)
    if not ids:
        return spec
    mine = run(QueuedJobs(user, ids))
    missing = [i for i in ids if i not in mine]
    if missing:
        mine |= run(AccountedJobs(user, missing))
    others = [i for i in ids if i not in mine]
    if others:
        raise errors.BadRequest(f"Invalid dependency: job {others[0]} is not one of your jobs", SUBMIT_FAILED)
    return spec


class ScriptHead(Command[bytes]):
    """The start of a script on the cluster, read as the caller: a missing or unreadable script is refused at
    once (X-Invalid-Path, X-Permission-Denied), and its directives tell its dependency."""

    name = "submit"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["head", f"--bytes={HEADER_BYTES}", "--", self.path]

    def result(self, output: Output) -> bytes:
        if output.status != 0:
            raise classify(output).with_description(SUBMIT_FAILED)
        return output.stdout

    def parse(self, result: Output) -> bytes:
        return result.stdout
