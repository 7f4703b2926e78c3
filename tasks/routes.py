"""Routes of the tasks service (public prefix /tasks, GET only through the gateway).

Public: GET / (`?tasks=id1,id2`) and GET /<id>, the caller's tasks only. Internal (never routed by the gateway;
the services' credential and the owner's token): POST / creates, PUT /<id> updates, DELETE /<id> retires;
POST /claim (credential only) hands unfinished tasks whose service process died to a live one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request

from common import metrics
from common.app import identity, require_service_credential
from common.errors import BadRequest, Forbidden, NotFoundRoute, Unavailable
from common.task_status import Status

from .store import TTL, InvalidStatus, LeaseLost, NotOwner, TaskStore, UnknownTask

TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_LEASE_S = 3600
STREAM_CHUNK = 64 * 1024
STORE = "tasks.store"
routes = Blueprint("tasks", __name__)
# Tasks in flight per service, read from Redis at each scrape of GET /metrics.
routes.record_once(lambda state: metrics.at_scrape(state.app, metrics.task_backlog(lambda: store().backlog())))


def store() -> TaskStore:
    return current_app.extensions[STORE]


def task_id(value: str) -> str:
    if not TASK_ID.match(value):
        raise BadRequest(f"'{value[:64]}' is not a valid task id", "Invalid task id")
    return value


def body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nesting deeper than the parser goes: a bad request, not a 500
        data = None
    if not isinstance(data, dict):
        raise BadRequest("a JSON object is required", "Invalid request")
    return data


def lease(data: dict[str, Any]) -> float | None:
    value = data.get("lease_s")
    if value is None:
        return None
    if not isinstance(value, int | float) or not 0 <= value <= MAX_LEASE_S:
        raise BadRequest(f"'lease_s' must be a number of seconds up to {MAX_LEASE_S}", "Invalid request")
    return float(value)


HOLDER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def holder(data: dict[str, Any]) -> str | None:
    value = data.get("holder")
    if value is not None and not (isinstance(value, str) and HOLDER.fullmatch(value)):
        raise BadRequest("'holder' must be 1 to 64 letters, digits, '_' or '-'", "Invalid request")
    return value


def private(data: dict[str, Any]) -> str | None:
    value = data.get("private")
    if value is not None and not isinstance(value, str):
        raise BadRequest("'private' must be a string", "Invalid request")
    return value


def owned(tid: str) -> dict[str, Any]:
    try:
        return store().owned(task_id(tid), identity().username)
    except UnknownTask:
        raise NotFoundRoute(f"Task {tid} does not exist", "Task not found") from None
    except NotOwner:
        raise Forbidden("Operation not permitted. Invalid task owner.") from None


@routes.before_app_request
def _internal() -> None:
    """Anything but a read needs the services' credential (any path of the app, as its own routes)."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        require_service_credential()


@routes.app_errorhandler(LeaseLost)
def _lease_lost(err: LeaseLost) -> tuple[Any, int]:
    return jsonify({"description": "Task held by another process",
                    "error": "The task's lease ran out and another process holds it now"}), 409


@routes.app_errorhandler(redis.RedisError)
def _store_down(err: redis.RedisError) -> tuple[Any, int]:
    current_app.logger.warning("task store: %r", err)
    error = Unavailable("The task store is not available; try again shortly", "Task store unavailable")
    return jsonify(error.body()), error.status


@routes.get("/")
@routes.get("/tasks")  # the early name (`/tasks/tasks`)
def list_tasks() -> Response:
    raw = request.args.get("tasks")
    if raw is None:
        return streamed("tasks", store().listing(identity().username))
    ids = [task_id(t.strip()) for t in raw.split(",") if t.strip()]
    return jsonify({"tasks": store().list(identity().username, ids)})


def streamed(key: str, items: Iterator[tuple[str, Any]]) -> Response:
    """`{"<key>": {id: task, ...}}` written as the tasks are read, in chunks of about STREAM_CHUNK bytes. The first
    task is read before the answer starts, so that a task store that is down is still a 503, not a cut answer."""
    first = next(items, None)

    def body() -> Iterator[str]:
        chunk, item, sep = "{" + json.dumps(key) + ":{", first, ""
        while item is not None:
            chunk += f"{sep}{json.dumps(item[0])}:{json.dumps(item[1], separators=(',', ':'))}"
            sep = ","
            if len(chunk) >= STREAM_CHUNK:
                yield chunk
                chunk = ""
            item = next(items, None)
        yield chunk + "}}\n"

    return Response(body(), mimetype="application/json")


@routes.get("/unfinished/<service>")
def unfinished_tasks(service: str) -> Response:
    """Internal: the caller's unfinished tasks of one service (a service's bound on them), without reading every
    task the user ever had."""
    require_service_credential()
    if service not in TTL:
        raise NotFoundRoute(f"Service {service} is unknown", "Service not found")
    return jsonify({"tasks": store().unfinished(identity().username, service)})


@routes.get("/<tid>")
@routes.get("/tasks/<tid>")
def get_task(tid: str) -> Response:
    return jsonify({"task": {**owned(tid), "task_url": f"/tasks/{tid}"}})


@routes.get("/status")
def status() -> Response:
    return jsonify({"success": "ack"})


@routes.post("/")
def create_task() -> tuple[Response, int]:
    data = body()
    service = data.get("service")
    if service not in TTL:
        raise Forbidden(f"Service {str(service)[:64]} is unknown")
    system, chosen = data.get("system"), data.get("task_id")
    if chosen is not None and not isinstance(chosen, str):
        raise BadRequest("'task_id' must be a string", "Invalid request")
    try:
        task = store().create(identity().username, service, system if isinstance(system, str) else None,
                              data.get("data", Status.QUEUED.description), private(data), lease(data), holder(data),
                              chosen)
    except InvalidStatus as e:
        raise BadRequest(str(e), "Invalid request") from None
    return jsonify({"hash_id": task["task_id"], "task_url": f"/tasks/{task['task_id']}"}), 201


@routes.put("/<tid>")
def update_task(tid: str) -> Response:
    data = body()
    owned(tid)
    if "status" not in data:  # only the lease: the work goes on
        try:
            store().renew(tid, identity().username, lease(data) or 0.0, holder(data))
        except (UnknownTask, NotOwner):
            raise NotFoundRoute(f"Task {tid} does not exist", "Task not found") from None
        return jsonify({"success": "lease renewed"})
    try:
        store().update(tid, identity().username, str(data.get("status")), data.get("data"), private(data),
                       lease(data), holder(data))
    except InvalidStatus:
        raise BadRequest(f"Status code error: {str(data.get('status'))[:16]}", "Status code error") from None
    except (UnknownTask, NotOwner):  # expired between the check and the write
        raise NotFoundRoute(f"Task {tid} does not exist", "Task not found") from None
    return jsonify({"success": "task updated"})


@routes.delete("/<tid>")
def delete_task(tid: str) -> tuple[str, int]:
    owned(tid)
    store().delete(tid, identity().username)
    return "", 204


@routes.post("/claim")
def claim() -> Response:
    data = body()
    service = data.get("service")
    if service not in TTL:
        raise Forbidden(f"Service {str(service)[:64]} is unknown")
    limit = data.get("limit", 20)
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise BadRequest("'limit' must be an integer from 1 to 1000", "Invalid request")
    claimed = store().claim(service, lease(data) or 30.0, limit, holder(data) or "")
    metrics.lease_claimed(service, len(claimed))
    return jsonify({"tasks": [{"task": c.task, "private": c.private} for c in claimed]})
