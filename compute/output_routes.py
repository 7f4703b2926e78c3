"""Route of live job output (public prefix /compute): parse the request, check the job, hand the stream over.

The domain (what is read, when, and the events sent) is compute/output.py; the commands are
common/slurm/output.py. Everything that can fail as a plain HTTP answer (bad values, another user's job, an offset
past the end, too many streams) does so before the stream begins.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from common import sse
from common.app import identity, machine, remote, request_id
from common.errors import UnknownMachineCompute

from . import output

SLOTS, BOUNDS = "compute.output.slots", "compute.output.bounds"
output_routes = Blueprint("compute_output", __name__)


@output_routes.record_once
def _setup(state: BlueprintSetupState) -> None:
    bounds = state.app.extensions.setdefault(BOUNDS, output.Bounds())
    state.app.extensions.setdefault(SLOTS, output.StreamSlots(bounds.streams_per_user, bounds.streams_per_process))


@output_routes.get("/jobs/<jobid>/output")
def job_output(jobid: str) -> Response:
    target = machine("job output", unknown=UnknownMachineCompute)
    bounds: output.Bounds = current_app.extensions[BOUNDS]
    want = output.wanted(jobid, request.args.get("stream"), request.args.get("offset"), sse.last_event_id(),
                         request.args.get("encoding"), bounds)
    caller = identity()
    release = current_app.extensions[SLOTS].take(caller.username)
    try:
        runner = remote().on(caller, target, request_id())
        start = output.prepare(runner, caller.username, want)
        ends_at, why = output.lifetime(bounds, caller.claims.get("exp"), time.time(), time.monotonic())
        gone = output.peer_gone(request.environ.get("gunicorn.socket"))
        response = sse.response(output.Follow(runner, start, bounds, ends_at, why, gone=gone).events())
    except BaseException:
        release()
        raise
    response.call_on_close(release)  # also when the client leaves mid-stream, or before the first event
    return response
