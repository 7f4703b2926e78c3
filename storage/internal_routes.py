"""Internal transfers' routes (`POST /xfer-internal/{cp,mv,rsync,rm,compress,extract}`, FirecREST v1 §8.5).

Each request becomes a batch job on the system's xfer partition (internal_jobs.py), submitted as the caller
through the compute service's `/jobs/upload` (so the job is an ordinary compute job: its task, its directory,
its recovery). The reply is compute's task, without `task_url` (contract quirk 15.9); the task reaching 200 means
the job was submitted, not that it finished.
"""

from __future__ import annotations

import re
import uuid

import requests
from flask import Blueprint, Response, jsonify, request

from common import files, params, values
from common.app import identity, machine, request_id, site
from common.errors import BadRequest, FirecrestError, Unavailable, UnknownMachineCompute
from common.idempotency import idempotent

from .internal_jobs import OPERATIONS, batch_script, plan

internal = Blueprint("internal", __name__)

DEFAULT_TIME = "02:00:00"
# Slurm's time limits: MM, MM:SS, HH:MM:SS, DD-HH, DD-HH:MM, DD-HH:MM:SS (ASCII digits only).
TIME = re.compile(r"\d{1,8}(:\d{1,2}){0,2}|\d{1,8}-\d{1,2}(:\d{1,2}){0,2}", re.ASCII)
# The name goes into an `#SBATCH --job-name=` line that sbatch parses with its own rules: only plain words.
JOB_NAME = re.compile(r"[A-Za-z0-9._+][A-Za-z0-9._+-]{0,63}", re.ASCII)
COMPUTE_TIMEOUT_S = 30


class SbatchError(FirecrestError):
    """The nested submission to compute was refused: its description travels in `X-Sbatch-Error`."""

    header = "X-Sbatch-Error"


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
    if not values.valid_job_id(value):
        raise BadRequest(f"'stageOutJobId' {value[:64]} is not a valid job ID", failure(op))
    return value


def account(op: str) -> str | None:
    """Passed on as it is when given (compute judges it, an empty one too)."""
    value = request.form.get("account")
    return None if value is None else values.check(value, "account", op)


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
    internal.add_url_rule(f"/xfer-internal/{_op}", f"xfer_internal_{_op}", idempotent(lambda op=_op: transfer(op)),
                          methods=["POST"])
