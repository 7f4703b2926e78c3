"""Job dependencies of a submission, allowed on the caller's own jobs only.

Slurm takes `afterok:<id>` on any job id, another user's too, and ignores an id it does not know: so a dependency
tells whether someone else's job exists and how it ended (PrivateData hides exactly that). Every submission
therefore names its dependency on sbatch's command line (`--dependency=<checked>`, empty when none), which
overrides whatever the script's `#SBATCH`/`#PBS` lines say (sbatch applies the command line last), so nothing
unchecked reaches Slurm even if the script changes after it was read. The dependency a script asks for is read
from its directives and kept if every job it names is the caller's; one that is not, or does not exist, is the
same 400, so the answer tells nothing about other users' jobs.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable

from common import errors
from common.commands import Command, Output, classify

SUBMIT_FAILED = "Failed to submit job"
HEADER_BYTES = 64 * 1024  # directives sit at the top of a script; what lies beyond is overridden anyway
_ID = r"[0-9]{1,18}(?:_[0-9]{1,9})?"
SPEC = re.compile(rf"(?:(?:after|afterany|afterburstbuffer|aftercorr|afternotok|afterok):{_ID}(?:\+[0-9]{{1,9}})?"
                  rf"(?::{_ID}(?:\+[0-9]{{1,9}})?)*|singleton)", re.ASCII)
SEPARATORS = re.compile(r"[,?]")


def check(spec: str) -> list[str]:
    """The job ids (without array index) of a dependency expression (`afterok:1:2,afterany:3`, `?` for any-of),
    or a 400 when it is not one Slurm documents."""
    if not spec:
        return []
    if len(spec) > 1024 or ("," in spec and "?" in spec) or not all(SPEC.fullmatch(p) for p in SEPARATORS.split(spec)):
        raise errors.BadRequest(f"Invalid dependency {spec[:64]!r}: use type:jobid[:jobid...] with types after, "
                                "afterany, afterok, afternotok, aftercorr, afterburstbuffer, or singleton",
                                SUBMIT_FAILED)
    return sorted({re.split(r"[_+]", i)[0] for part in SEPARATORS.split(spec) for i in part.split(":")[1:]}, key=int)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unclosed quote: sbatch would refuse the line; look at it word by word
        return text.split()


def requested(script: bytes) -> str:
    """The dependency the script's batch directives ask for (the last one, as sbatch keeps), or ""."""
    found = ""
    for raw in script[:HEADER_BYTES].decode(errors="replace").splitlines()[1:]:
        line = raw.strip()
        if line and not line.startswith("#"):
            break  # sbatch stops reading directives at the first command
        # sbatch reads the options right after the magic word, whitespace or not.
        magic = next((m for m in ("#SBATCH", "#PBS", "#BSUB") if line.startswith(m)), "")
        rest = line[len(magic):]
        if magic in ("#PBS", "#BSUB") and ("depend" in rest.lower() or "-w" in rest.split()):
            raise errors.BadRequest("Write job dependencies as '#SBATCH --dependency=...' (#PBS and #BSUB "
                                    "dependencies are not passed on)", SUBMIT_FAILED)
        if magic != "#SBATCH":
            continue
        words = _words(rest)
        for i, word in enumerate(words):
            name, eq, value = word.partition("=")
            following = words[i + 1] if i + 1 < len(words) else ""
            if len(name) >= 5 and "--dependency".startswith(name):  # getopt takes any unambiguous prefix
                found = value if eq else following
            elif word.startswith("-d") and not word.startswith("--"):
                found = word[2:] or following
    return found


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
        mine = set()
        for job in jobs:
            if job.get("user_name") == self.user:
                mine.update(str(job.get(k)) for k in ("job_id", "array_job_id", "het_job_id") if job.get(k))
        return mine & set(self.ids)


class AccountedJobs(QueuedJobs):
    """Which of `ids` slurmdbd has as the caller's jobs (older ones): `--user` keeps another user's job out of the
    answer whatever PrivateData says."""

    name = "sacct"

    def argv(self) -> list[str]:
        return ["sacct", "-X", "--noheader", "--parsable2", "--format=jobid", "--starttime=1970-01-02",
                f"--user={self.user}", f"--jobs={','.join(self.ids)}"]

    def parse(self, result: Output) -> set:
        return {re.split(r"[_+.]", line.strip())[0] for line in result.out.splitlines()} & set(self.ids)


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
