"""Routes of the compute service (public prefix /compute): parse and validate, start a task, reply.

Every operation returns the contract's task envelope at once (201 for submissions, 200 otherwise); the work runs
in the background (background.py, operations.py) and its outcome is the task's `data`. There is no probe before
each operation: an unreachable or refusing cluster shows in the task's outcome (at once for `/jobs/path`, which
reads the script).
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.utils import secure_filename

from common import params, values
from common.app import envelope, identity, machine, request_id, run, site
from common.engine import Engine, TaskRun
from common.errors import BadRequest, UnknownMachineCompute
from common.idempotency import idempotent
from common.slurm.accounting import check_time

from . import dependency, environment
from .names import account as valid_account
from .names import node_list
from .script import default_output

SUBMIT_FAILED = "Failed to submit job"
# A submission's POST waits this long for sbatch: its client usually finds the job id at its first poll. Longer
# (a busy slurmctld), the answer is the task as before and the client polls.
SUBMIT_WAIT_S = 3.0
ENGINE, WORKDIRS = "compute.engine", "compute.workdirs"
routes = Blueprint("compute", __name__)


def engine() -> Engine[TaskRun]:
    return current_app.extensions[ENGINE]


def system(operation: str, name: str | None = None) -> str:
    return machine(operation, name, unknown=UnknownMachineCompute)


def start(op: str, target: str, args: dict[str, Any], status: int = 200, wait_s: float = 0.0,
          task_id: str | None = None) -> tuple[Response, int]:
    return envelope(engine().start(identity(), target, op, args, request_id(), wait_s=wait_s, task_id=task_id),
                    status)


def ids(name: str, operation: str) -> list[str] | None:
    """A comma-separated list of job ids (None when absent)."""
    description = f"Error on {operation} operation"
    raw = params.text(name, operation, required=False)
    if not raw:
        return None
    given = raw.split(",")
    if any(not v.strip() for v in given):
        raise BadRequest("Jobs list wrong format", description)
    for value in given:
        if not values.valid_job_id(value.strip()):
            raise BadRequest(f"{value.strip()[:64]} is not a valid job ID", description)
    return [v.strip() for v in given]


def names(name: str, operation: str) -> list[str] | None:
    raw = params.text(name, operation, required=False)
    return [v.strip() for v in raw.split(",") if v.strip()] or None if raw else None


def paging(operation: str) -> dict[str, Any]:
    size, number = params.count("pageSize", operation), params.count("pageNumber", operation)
    if size == 0:
        raise BadRequest("'pageSize' must be a positive integer", f"Error on {operation} operation")
    return {"page_size": size, "page_number": number}


def submission(target: str, script: bytes) -> dict[str, Any]:
    """account, env and the script's dependency, as sbatch will get them."""
    account = request.form.get("account")
    if account is not None:
        account = params.text("account", "submit") if account else None
        if account is None:
            raise BadRequest("'account' is empty", "Invalid account")
        account = valid_account(account)
    raw_env = request.form.get("env")
    env = environment.parse_env(raw_env) if raw_env else None
    spec = dependency.requested(script)
    spec = dependency.allowed(lambda command: run(target, command), identity().username, spec) if spec else ""
    return {"account": account, "env": env, "dependency": spec, "default_output": default_output(script)}


def upload(target: str) -> tuple[Response, int]:
    if "file" not in request.files:
        raise BadRequest("No batch file part", SUBMIT_FAILED)
    file = request.files["file"]
    if not file.filename:
        raise BadRequest("No batch file selected", SUBMIT_FAILED)
    script = file.read()
    if not script:
        raise BadRequest("Batch file is empty", SUBMIT_FAILED)
    args = submission(target, script)
    made = current_app.extensions[WORKDIRS].take(target, identity().username)  # a directory made ahead, if any
    args.update(script=base64.b64encode(script).decode(), filename=secure_filename(file.filename) or "script.sh",
                made_ahead=made is not None)
    return start("submit", target, args, 201, SUBMIT_WAIT_S, made)


def by_path(target: str) -> tuple[Response, int]:
    path = params.text("targetPath", "submit")
    # Read as the caller: a missing, unreadable or directory script is the caller's mistake, said at once.
    head = run(target, dependency.ScriptHead(path))
    return start("submit", target, {**submission(target, head), "path": path}, 201, SUBMIT_WAIT_S)


@routes.post("/jobs/upload")
@idempotent
def submit_upload() -> tuple[Response, int]:
    return upload(system("submit"))


@routes.post("/jobs/path")
@idempotent
def submit_path() -> tuple[Response, int]:
    return by_path(system("submit"))


@routes.post("/jobs/<name>")
@idempotent
def submit_seed(name: str) -> tuple[Response, int]:
    """The early `/jobs/{machine}`: a multipart script, or a targetPath already on the system."""
    target = system("submit", name)
    return upload(target) if "file" in request.files else by_path(target)


@routes.get("/jobs")
def list_jobs() -> tuple[Response, int]:
    return queue(system("list jobs"))


def queue(target: str) -> tuple[Response, int]:
    args = {"jobs": ids("jobs", "list jobs"), "user_jobs": params.flag("userJobs", default=True),
            **paging("list jobs")}
    return start("jobs", target, args)


@routes.get("/jobs/<jobid>")
def get_job(jobid: str) -> tuple[Response, int]:
    if jobid in site().systems:  # the early `/jobs/{machine}` listing
        return queue(system("list jobs", jobid))
    target = system("list job")
    if not values.valid_job_id(jobid):
        raise BadRequest(f"{jobid[:64]} is not a valid job ID", "Failed to retrieve job information")
    return start("job", target, {"jobid": jobid})


@routes.delete("/jobs/<jobid>")
def cancel_job(jobid: str) -> tuple[Response, int]:
    target = system("delete job")
    if not values.valid_job_id(jobid):
        raise BadRequest(f"{jobid[:64]} is not a valid job ID", "Failed to delete job")
    return start("cancel", target, {"jobid": jobid})


@routes.get("/acct")
def accounting() -> tuple[Response, int]:
    target = system("acct")
    times = {}
    for name in ("starttime", "endtime"):
        value = params.text(name, "acct", required=False)
        if value:
            times[name] = check_time(value)
    return start("acct", target, {"jobs": ids("jobs", "acct"), **times, **paging("acct")})


@routes.get("/nodes")
def list_nodes() -> tuple[Response, int]:
    target = system("nodes")
    return start("nodes", target, {"nodes": node_list(params.text("nodes", "nodes", required=False))})


@routes.get("/nodes/<name>")
def get_node(name: str) -> tuple[Response, int]:
    target = system("nodes")
    return start("nodes", target, {"nodes": node_list(values.check(name, "nodes", "nodes"))})


@routes.get("/partitions")
def list_partitions() -> tuple[Response, int]:
    target = system("partitions")
    wanted = names("partitions", "partitions")
    return start("partitions", target, {"partitions": wanted})


@routes.get("/reservations")
def list_reservations() -> tuple[Response, int]:
    target = system("reservations")
    wanted = names("reservations", "reservations")
    return start("reservations", target, {"reservations": wanted})


@routes.get("/status")
def status() -> Response:
    return {"success": "ack"}  # type: ignore[return-value]

