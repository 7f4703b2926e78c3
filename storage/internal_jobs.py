"""Internal transfers' batch jobs (pure): the plan of an operation (the same argv as the synchronous utilities,
common/files.py) and the batch script that runs it on the system's xfer partition.

Every word of the plan is `shlex.quote`d, so a value is one literal word for the job's shell as it is for the
login node's wrapper. Only the values that go into `#SBATCH` lines (which sbatch parses itself, without shell
quoting) are held to strict forms (checked here again, whatever the caller did). The job fails when its command
fails; relative paths mean what they mean for utilities (the caller's home, not the job's directory).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from common import files

OPERATIONS = ("cp", "mv", "rsync", "rm", "compress", "extract")
# What any value of an `#SBATCH` line may hold.
DIRECTIVE_VALUE = re.compile(r"[A-Za-z0-9._+:\[\]-]+", re.ASCII)


class Rsync(files.Done):
    name = "rsync"

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source, target

    def argv(self) -> list[str]:
        return ["rsync", "-av", "--", local(self.source), local(self.target)]


def local(path: str) -> str:
    """rsync takes a colon before the first slash (`host:path`, `rsync://`) for a remote place: `./` keeps such a
    name the local file it is."""
    return f"./{path}" if ":" in path.split("/", 1)[0] else path


@dataclass(frozen=True)
class Plan:
    """What the job runs: steps (argv lists) in order, each only if the previous succeeded, and what to run if
    any failed (cleanup)."""

    steps: tuple[tuple[str, ...], ...]
    on_failure: tuple[str, ...] = ()


def quoted(words: Sequence[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def batch_script(plan: Plan, *, job_name: str, time: str, partition: str, trace_id: str,
                 dependency: str | None = None) -> str:
    """The job script: the contract's `#SBATCH` header, then the plan under `srun`; exits with the plan's status."""
    directives = {"job-name": job_name, "time": time, "error": "job-%j.err", "output": "job-%j.out",
                  "ntasks": "1", "partition": partition}
    if dependency:
        directives["dependency"] = f"afterok:{dependency}"
    for key, value in directives.items():
        if key not in ("error", "output") and not DIRECTIVE_VALUE.fullmatch(value):
            raise ValueError(f"unsafe #SBATCH --{key} value {value!r}")
    lines = ["#!/bin/bash -l", *(f"#SBATCH --{key}={value}" for key, value in directives.items()), ""]
    lines += [
        f"echo Trace ID: {shlex.quote(trace_id)}",
        'echo "$SLURM_JOB_NAME started on $(date)"',
        # Relative paths mean what they mean for utilities (the caller's home), not the job's own directory.
        'cd -- "$HOME" || exit 1',
        " && ".join(f"srun -n $SLURM_NTASKS {quoted(step)}" for step in plan.steps),
        "status=$?",
    ]
    if plan.on_failure:
        lines.append(f"[ $status -eq 0 ] || {quoted(plan.on_failure)}")
    lines += ['echo "$SLURM_JOB_NAME finished on $(date) with status $status"',
              "exit $status",  # a failed command makes a FAILED job (a final echo would hide it)
              ""]
    return "\n".join(lines)


def plan(op: str, source: str, target: str, *, dereference: bool = False, kind: str = "tar",
         partial_tag: str = "") -> Plan:
    """The operation's steps, with the utilities' argv (storage's own rsync)."""
    if op == "cp":
        return Plan((tuple(files.Copy(source, target).argv()),))
    if op == "mv":
        return Plan((tuple(files.Rename(source, target).argv()),))
    if op == "rsync":
        return Plan((tuple(Rsync(source, target).argv()),))
    if op == "rm":
        return Plan((tuple(files.Remove(target).argv()),))
    if op == "compress":  # written aside, moved into place, else removed (common/files.py compress_plan)
        aside = files.compress_plan(source, target, dereference, partial_tag)
        return Plan(tuple(tuple(step.argv()) for step in aside.steps), aside.job_cleanup)
    if op == "extract":
        return Plan((tuple(files.Extract(source, target, kind).argv()),))
    raise ValueError(f"unknown operation {op!r}")
