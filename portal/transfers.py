"""Large transfers: upload from the browser straight to Swift (a temp URL, with a progress bar), download by a temp
URL link, invalidate a transfer. Routes only parse, call (portal/transfer_ops.py) and shape; the page's script is
static/transfers.js, which follows each transfer's task through the relayed GET /tasks/events."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request, session

from . import job_ops, relay, tasks_follow, transfer_ops
from .api import ApiError, api
from .auth import current_user, login_required
from .replies import answer, refusal

routes = Blueprint("transfers", __name__, url_prefix="/transfers")
KNOWN = "transfers"  # session key: the task ids of the transfers this session started


def _known() -> list[str]:
    value = session.get(KNOWN)
    return [str(t) for t in value] if isinstance(value, list) else []


def _started(result: dict[str, Any]) -> dict[str, Any]:
    session[KNOWN] = transfer_ops.remember(_known(), result["task_id"])
    return result


@routes.get("/")
@login_required
def index() -> str:
    error: ApiError | None = None
    systems: list[str] = []
    transfers: list[dict[str, Any]] = []
    try:
        client = api()
        systems = job_ops.systems(client)
        transfers = transfer_ops.recent(client, _known())
    except ApiError as e:
        error = e
    return render_template("transfers.html", systems=systems, transfers=transfers, error=error,
                           home=f"/home/{current_user()}")


@routes.post("/upload")
@login_required
def upload() -> tuple[Response, int]:
    form = request.form
    return answer(lambda: _started(transfer_ops.upload(
        api(), job_ops.system(form.get("system")), transfer_ops.path(form.get("targetPath"), "the target"),
        transfer_ops.file_name(form.get("sourcePath")))), 201)


@routes.post("/download")
@login_required
def download() -> tuple[Response, int]:
    form = request.form
    return answer(lambda: _started(transfer_ops.download(
        api(), job_ops.system(form.get("system")), transfer_ops.path(form.get("sourcePath"), "the file"))), 201)


@routes.get("/<tid>")
@login_required
def task(tid: str) -> tuple[Response, int]:
    return answer(lambda: transfer_ops.task(api(), tid))


@routes.post("/<tid>/invalidate")
@login_required
def invalidate(tid: str) -> tuple[Response, int]:
    return answer(lambda: transfer_ops.invalidate(api(), tid), 201)


@routes.get("/events")
@login_required
def events() -> Response | tuple[Response, int]:
    """The tasks of the transfers the page follows (GET /tasks/events?tasks=...), relayed: one stream per page."""
    try:
        ids = [tasks_follow.task_id(t.strip()) for t in request.args.get("tasks", "").split(",") if t.strip()]
        if not 1 <= len(ids) <= transfer_ops.LISTED:
            raise ApiError(400, f"follow 1 to {transfer_ops.LISTED} transfers")
    except ApiError as e:
        return refusal(e)
    params = {"tasks": ",".join(ids)}
    since = relay.last_event_id()
    if since:
        params["lastEventId"] = since
    return relay.relay(lambda: api().stream("/tasks/events", params=params))
