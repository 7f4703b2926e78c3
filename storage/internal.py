"""Internal transfers (`POST /xfer-internal/{cp,mv,rsync,rm,compress,extract}`, FirecREST v1 §8.5).

Each request becomes a batch job on the system's xfer partition, submitted as the caller through the compute
service's `/jobs/upload` (so the job is an ordinary compute job: its task, its directory, its recovery). The
reply is compute's task, without `task_url` (contract quirk 15.9); the task reaching 200 means the job was
submitted, not that it finished.

The job runs the same argv as the synchronous utilities (common/files.py), every word `shlex.quote`d,
so a value is one literal word for the job's shell as it is for the login node's wrapper. Only the values that
go into `#SBATCH` lines (which sbatch parses itself, without shell quoting) are held to strict forms.
Differences from upstream, on purpose: the job fails when its command fails (upstream's last `echo` made it
COMPLETED), relative paths mean the same as in utilities (the caller's home, not the job's directory),
`compress` writes aside and moves into place, `extract` honours `type`/`extension`, and `rsync` reads a
`host:path`-looking name as the local file it is.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from flask import Blueprint, Response, jsonify, request

from common import files, params
from common.app import identity, machine, request_id, site
from common.errors import BadRequest, FirecrestError, Unavailable, UnknownMachineCompute

internal = Blueprint("internal", __name__)

OPERATIONS = ("cp", "mv", "rsync", "rm", "compress", "extract")
DEFAULT_TIME = "02:00:00"
# Slurm's time limits: MM, MM:SS, HH:MM:SS, DD-HH, DD-HH:MM, DD-HH:MM:SS (ASCII digits only).
TIME = re.compile(r"\d{1,8}(:\d{1,2}){0,2}|\d{1,8}-\d{1,2}(:\d{1,2}){0,2}", re.ASCII)
# The name goes into an `#SBATCH --job-name=` line that sbatch parses with its own rules: only plain words.
JOB_NAME = re.compile(r"[A-Za-z0-9._+][A-Za-z0-9._+-]{0,63}", re.ASCII)
# What any value of an `#SBATCH` line may hold (checked again by the builder, whatever the caller did).
DIRECTIVE_VALUE = re.compile(r"[A-Za-z0-9._+:\[\]-]+", re.ASCII)
COMPUTE_TIMEOUT_S = 30


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


class SbatchError(FirecrestError):
    """The nested submission to compute was refused: its description travels in `X-Sbatch-Error`."""

    header = "X-Sbatch-Error"


# ---------------------------------------------------------------------------------------------------------------
# The batch script (pure)


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


# ---------------------------------------------------------------------------------------------------------------
# Parameters


def failure(op: str) -> str:
    return f"Error on {op} operation"


def job_name(op: str) -> str:
    value = params.text("jobName", op, required=False) or f"{op}-job"
    if not JOB_NAME.fullmatch(value):
        raise BadRequest("'jobName' may hold only letters, digits and . _ + - (at most 64, not starting with -)",
                         failure(op))
    return value


def time_limit(op: str) -> str:
    value = params.text("time", op, required=False) or DEFAULT_TIME
    if not TIME.fullmatch(value):
        raise BadRequest("Not supported time format", failure(op))
    return value


def stage_out(op: str) -> str | None:
    value = params.text("stageOutJobId", op, required=False)
    if not value:
        return None
    if not params.valid_job_id(value):
        raise BadRequest(f"'stageOutJobId' {value[:64]} is not a valid job ID", failure(op))
    return value


def account(op: str) -> str | None:
    """Passed on as it is when given (compute judges it, an empty one too)."""
    value = request.form.get("account")
    return None if value is None else params.check(value, "account", op)


# ---------------------------------------------------------------------------------------------------------------
# Submission through compute


def submit(system: str, script: str, op: str, account_name: str | None) -> str:
    """POST the script to compute's `/jobs/upload` as the caller; compute's task id, or the contract's errors."""
    url = site().service_urls.get("compute")
    if not url:
        raise Unavailable("The compute service is not configured", failure(op))
    headers = {"Authorization": f"Bearer {identity().token}", "X-Machine-Name": system,
               "X-Request-ID": request_id()}
    form = {} if account_name is None else {"account": account_name}
    try:
        reply = requests.post(f"{url}/jobs/upload", headers=headers, data=form,
                              files={"file": (f"xfer-{op}.sh", script.encode())}, timeout=COMPUTE_TIMEOUT_S)
        body = reply.json()
    except (requests.RequestException, ValueError) as e:
        raise Unavailable(f"The compute service did not answer: {type(e).__name__}", failure(op)) from None
    if reply.status_code == 201 and isinstance(body, dict) and body.get("task_id"):
        return str(body["task_id"])
    if 400 <= reply.status_code < 500 and isinstance(body, dict):  # compute refused the submission
        description = str(body.get("description") or "Failed to submit job")
        raise SbatchError(str(body.get("error") or description), failure(op), header_value=description)
    # Compute (or its task store) is down or answered nonsense: nothing was submitted, the client may retry.
    raise Unavailable(f"The compute service answered {reply.status_code}", failure(op))


def transfer(op: str) -> tuple[Response, int]:
    system = machine(op, unknown=UnknownMachineCompute)
    target = params.text("targetPath", op)
    source = "" if op == "rm" else params.text("sourcePath", op)
    kind = "tar"
    if op == "extract":
        requested = params.text("type", op, required=False) or params.text("extension", op, required=False)
        kind = files.extractor(source, requested)
    steps = plan(op, source, target, dereference=params.flag("dereference"), kind=kind,
                 partial_tag=uuid.uuid4().hex[:16])
    script = batch_script(steps, job_name=job_name(op), time=time_limit(op),
                          partition=site().systems[system].xfer_partition, trace_id=request_id(),
                          dependency=stage_out(op))
    task_id = submit(system, script, op, account(op))
    return jsonify({"success": "Task created", "task_id": task_id}), 201  # no task_url: contract quirk 15.9


for _op in OPERATIONS:
    internal.add_url_rule(f"/xfer-internal/{_op}", f"xfer_internal_{_op}", lambda op=_op: transfer(op),
                          methods=["POST"])
