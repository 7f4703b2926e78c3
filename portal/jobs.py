"""Job pages: write or pick a batch script and submit it, the jobs' states live, a job's output live, cancel.

Routes only parse, call (portal/job_ops.py) and shape. The pages' scripts (static/jobs.js) call the JSON routes
with the session's CSRF token, and follow the streams the portal relays (portal/relay.py) with the session's token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from . import job_ops, relay
from .api import ApiError, api
from .auth import login_required
from .replies import answer, refusal

routes = Blueprint("jobs", __name__, url_prefix="/jobs")
STREAMS = ("out", "err")


def _systems() -> tuple[list[str], ApiError | None]:
    try:
        return job_ops.systems(api()), None
    except ApiError as e:
        return [], e


@routes.get("/")
@login_required
def index() -> str:
    names, error = _systems()
    chosen = request.args.get("system") or (names[0] if names else "")
    return render_template("jobs.html", systems=names, system=chosen, examples=job_ops.EXAMPLES, error=error)


@routes.get("/queue")
@login_required
def queue() -> tuple[Response, int]:
    return answer(lambda: {"jobs": job_ops.queue(api(), job_ops.system(request.args.get("system")))})


@routes.post("/submit")
@login_required
def submit() -> tuple[Response, int]:
    form = request.form
    return answer(lambda: job_ops.submit(api(), job_ops.system(form.get("system")), form.get("script", ""),
                                         job_ops.script_name(form.get("name"))), 201)


@routes.post("/<system>/<jobid>/cancel")
@login_required
def cancel(system: str, jobid: str) -> tuple[Response, int]:
    return answer(lambda: job_ops.cancel(api(), job_ops.system(system), job_ops.job_id(jobid)))


@routes.get("/events")
@login_required
def events() -> Response | tuple[Response, int]:
    """The user's jobs' states on a system (GET /tasks/events/jobs), relayed."""
    try:
        machine = job_ops.system(request.args.get("system"))
        params: dict[str, Any] = {}
        if request.args.get("jobs"):
            params["jobs"] = ",".join(job_ops.job_id(j.strip()) for j in request.args["jobs"].split(",") if j)
    except ApiError as e:
        return refusal(e)
    since = relay.last_event_id()
    if since:
        params["lastEventId"] = since
    return relay.relay(lambda: api().stream("/tasks/events/jobs", params=params, machine=machine))


@routes.get("/<system>/<jobid>")
@login_required
def job(system: str, jobid: str) -> tuple[str, int]:
    try:
        machine, jid = job_ops.system(system), job_ops.job_id(jobid)
    except ApiError as e:
        return render_template("job.html", error=e, system="", jobid=""), e.status
    return render_template("job.html", system=machine, jobid=jid, error=None), 200


@routes.get("/<system>/<jobid>/output")
@login_required
def output(system: str, jobid: str) -> Response | tuple[Response, int]:
    """A job's stdout or stderr as it grows (GET /compute/jobs/{jobid}/output), relayed from the byte offset the
    browser has (its Last-Event-ID), so a reconnect neither loses nor repeats output."""
    try:
        machine, jid = job_ops.system(system), job_ops.job_id(jobid)
        stream = request.args.get("stream", "out")
        if stream not in STREAMS:
            raise ApiError(400, "'stream' is out or err")
    except ApiError as e:
        return refusal(e)
    params = {"stream": stream}
    since = relay.last_event_id()
    if since:
        params["lastEventId"] = since
    return relay.relay(lambda: api().stream(f"/compute/jobs/{jid}/output", params=params, machine=machine))
