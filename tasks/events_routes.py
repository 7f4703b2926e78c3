"""Event-stream routes of the tasks service (text/event-stream, public prefix /tasks, GET through the gateway).

Public: GET /events (`?tasks=id1,id2`: the caller's tasks, all when absent) and GET /events/jobs (X-Machine-Name,
`?jobs=1,2`: the caller's jobs on that system). Both take `Last-Event-ID` and `?idle=` (seconds). Internal (the
services' credential; never routed by the gateway, which passes GET only): POST /events/jobs/claim hands due job
polls to a compute process, POST /events/jobs/publish (with the user's token) records what the poll saw.

Another user's task ids in `?tasks=` are never streamed (as GET /tasks leaves them out of its answer).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from common import metrics, sse
from common.app import identity, machine, site
from common.errors import BadRequest, FirecrestError, TooManyRequests, Unavailable, UnknownMachineCompute
from common.tasks_client import Sealer
from common.values import integer, valid_job_id

from .events import STREAM_ID, EventStore, TooManyStreams, job_stream, task_event, task_stream
from .events_stream import Stream
from .routes import body, holder, store, task_id

EVENTS, PROCESS_SLOTS = "tasks.events", "tasks.event_slots"
STREAMS_PER_USER = 8  # open streams of one user, across every process and replica
STREAMS_PER_PROCESS = 16  # of the process's 32 threads: the other 16 always serve ordinary requests
IDLE_S, MAX_IDLE_S = 300, 3600
MAX_IDS = 1000
MAX_JOBS_PUBLISHED = 5000
events_routes = Blueprint("events", __name__)


log = logging.getLogger("firecrest.tasks.events")


class PollLost(FirecrestError):
    status = 409


class ProcessBusy(Unavailable):
    """This process serves its most streams: another process (the gateway's next try) may not."""

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


def event_store() -> EventStore:
    return current_app.extensions[EVENTS]


def idle() -> int:
    raw = request.args.get("idle")
    if raw is None:
        return IDLE_S
    value = integer(raw.strip())
    if value is None or not 1 <= value <= MAX_IDLE_S:
        raise BadRequest(f"'idle' must be a number of seconds from 1 to {MAX_IDLE_S}", "Invalid event stream")
    return value


def last_id() -> str | None:
    value = sse.last_event_id()
    if value is not None and not STREAM_ID.fullmatch(value):
        raise BadRequest(f"Last-Event-ID {value[:40]!r} is not an event id of this stream (like 1796544417123-0)",
                         "Invalid Last-Event-ID")
    return value


def id_list(name: str, check: Any, what: str) -> list[str] | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    ids = [i.strip() for i in raw.split(",") if i.strip()]
    if not ids or len(ids) > MAX_IDS:
        raise BadRequest(f"'{name}' must list 1 to {MAX_IDS} {what}s, comma-separated", "Invalid event stream")
    return [check(i) for i in ids]


def job_id(value: str) -> str:
    if not valid_job_id(value):
        raise BadRequest(f"'{value[:64]}' is not a valid job id", "Invalid event stream")
    return value


def open_stream(make: Callable[[Callable[[], None]], Stream]) -> Response:
    """Take this process's and the user's stream slots (503/429 when none is free), then stream `make(beat)`;
    both slots are given back however the stream ends."""
    since = last_id()  # a bad id is a 400 before any slot is taken
    process: threading.BoundedSemaphore = current_app.extensions[PROCESS_SLOTS]
    if not process.acquire(blocking=False):
        raise ProcessBusy(f"This server process already serves {STREAMS_PER_PROCESS} event streams; try again",
                          "Too many event streams")
    user, events = identity().username, event_store()
    metrics.stream_opened("events")
    try:
        slot = events.take_slot(user, STREAMS_PER_USER)
    except TooManyStreams as e:
        process.release()
        metrics.stream_closed("events")
        raise TooManyRequests(f"{STREAMS_PER_USER} event streams of yours are open, the most allowed: close one "
                              "(a stream left without closing frees its place within a minute)",
                              "Too many event streams", e.retry_after_s) from None
    except BaseException:
        process.release()
        metrics.stream_closed("events")
        raise

    def close() -> None:
        process.release()
        metrics.stream_closed("events")
        try:
            events.free_slot(user, slot)
        except Exception:  # Redis gone: the slot's lease runs out by itself
            log.warning("event stream: slot of %s not freed", user)

    try:
        stream: Stream = make(lambda: events.renew_slot(user, slot))
    except BaseException:
        close()
        raise
    return sse.response(stream.pieces(since), on_close=close)


def token_end() -> float:
    return float(identity().claims.get("exp", time.time()))


@events_routes.get("/events")
def task_events() -> Response:
    ids, user, idle_s = id_list("tasks", task_id, "task id"), identity().username, idle()
    wanted = set(ids or [])

    def make(beat: Callable[[], None]) -> Stream:
        return Stream(event_store(), task_stream(user), "task",
                      (lambda task: task.get("task_id") in wanted) if ids is not None else (lambda task: True),
                      lambda: [task_event(t) for t in store().list(user, ids).values()],
                      idle_s, token_end(), beat)

    return open_stream(make)


@events_routes.get("/events/jobs")
def job_events() -> Response:
    system = machine("job events", unknown=UnknownMachineCompute)
    jobs, user, idle_s = id_list("jobs", job_id, "job id"), identity().username, idle()
    wanted = set(jobs or [])
    events, token, ends = event_store(), identity().token, token_end()
    sealed = Sealer(site().service_token).seal({"token": token})

    def watch(opening: bool = False) -> None:
        events.watch(system, user, sealed, int(ends - time.time()), opening)

    def selected(job: dict[str, Any]) -> bool:
        jobid = str(job.get("jobid", ""))
        return jobs is None or jobid in wanted or jobid.replace("+", "_").split("_")[0] in wanted

    def make(beat: Callable[[], None]) -> Stream:
        def renew() -> None:
            beat()
            watch()

        watch(opening=True)
        return Stream(events, job_stream(system, user), "job", selected,
                      lambda: [json.dumps(j, sort_keys=True) for j in events.snapshot(system, user) if selected(j)],
                      idle_s, ends, renew)

    return open_stream(make)


@events_routes.post("/events/jobs/claim")
def claim_polls() -> Response:
    data = body()
    lease = data.get("lease_s", 15)
    limit = data.get("limit", 8)
    if not isinstance(lease, int | float) or not 1 <= lease <= 300:
        raise BadRequest("'lease_s' must be 1 to 300 seconds", "Invalid request")
    if not isinstance(limit, int) or not 1 <= limit <= 100:
        raise BadRequest("'limit' must be an integer from 1 to 100", "Invalid request")
    who = holder(data)
    if not who:
        raise BadRequest("'holder' is required", "Invalid request")
    watches = event_store().claim(who, float(lease), limit)
    return jsonify({"polls": [{"system": w.system, "user": w.user, "token": w.sealed_token, "known": w.known}
                              for w in watches if w.system in site().systems]})


@events_routes.post("/events/jobs/publish")
def publish_jobs() -> Response:
    data = body()
    system, jobs, gone, who = data.get("system"), data.get("jobs"), data.get("gone", []), holder(data)
    if not isinstance(system, str) or system not in site().systems or not who:
        raise BadRequest("'system' (a system of the site) and 'holder' are required", "Invalid request")
    if (not isinstance(jobs, dict) or len(jobs) > MAX_JOBS_PUBLISHED
            or not all(isinstance(k, str) and isinstance(v, dict) for k, v in jobs.items())
            or not isinstance(gone, list) or not all(isinstance(g, str) for g in gone)):
        raise BadRequest("'jobs' must map job ids to states and 'gone' list job ids", "Invalid request")
    next_poll = data.get("next_poll_s", 2)
    if not isinstance(next_poll, int | float) or not 0.5 <= next_poll <= 60:
        raise BadRequest("'next_poll_s' must be 0.5 to 60 seconds", "Invalid request")
    user = identity().username  # the token's user: a poll publishes only into its own user's stream
    added = event_store().publish_jobs(system, user, who, jobs, gone, float(next_poll))
    if added < 0:
        raise PollLost("Another process polls these jobs now", "Poll held by another process")
    return jsonify({"published": added})

