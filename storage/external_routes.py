"""Routes of external transfers (public prefix /storage/xfer-external): parse and check, start a task, reply 201.

The transfers go through Swift temp URLs (external.py and its two directions, swift.py); internal ones are batch
jobs on the system's xfer partition (internal_routes.py, internal_jobs.py).
"""

from __future__ import annotations

import posixpath
import re

from flask import Blueprint, Response, current_app, jsonify, request

from common import params
from common.app import envelope, identity, machine, request_id, run
from common.commands import FileKind
from common.errors import (
    ADirectory,
    BadRequest,
    FirecrestError,
    InvalidPath,
    NotADirectory,
    NotFound,
    PermissionDenied,
    UnknownMachineCompute,
)
from common.idempotency import idempotent
from common.task_status import Status
from common.tasks_client import TasksClient

from . import external_jobs
from .external import ExternalTransfers

TASK_ID = re.compile(r"[A-Za-z0-9]{1,64}")
INVALIDATE_FAILED = "Failed to invalidate URL"


TRANSFERS = "storage.transfers"
routes = Blueprint("storage", __name__)


def transfers() -> ExternalTransfers:
    return current_app.extensions[TRANSFERS]


def tasks() -> TasksClient:
    return transfers().engine.tasks


def system(operation: str) -> str:
    return machine(operation, unknown=UnknownMachineCompute)


def upload_target(target_system: str, target: str, name: str) -> str:
    """The file the upload will write: `targetPath/<name>` for a directory, else `targetPath` itself; its
    directory must exist and be writable by the caller (checked now, so the mistake is the caller's at once)."""
    try:
        kind = run(target_system, FileKind(target))
    except (InvalidPath, NotFound):
        kind = None
    except FirecrestError as e:
        raise _not_allowed(e) from None
    if kind == "directory":
        directory, final = target, posixpath.join(target, name)
    else:
        directory, final = posixpath.dirname(target) or ".", target
        try:
            parent = run(target_system, FileKind(directory))
        except FirecrestError as e:
            raise _not_allowed(e) from None
        if parent != "directory":
            raise _not_allowed(NotADirectory(f"{directory} is not a directory"))
    if not run(target_system, external_jobs.Access(directory, "-w")):
        raise _not_allowed(PermissionDenied(f"{directory}: Permission denied"))
    return final


def download_size(source_system: str, source: str) -> int:
    """The size of the file to download; it must be a regular file the caller can read (checked now)."""
    try:
        size = run(source_system, external_jobs.FileSize(source))
        if not run(source_system, external_jobs.Access(source, "-r")):
            raise PermissionDenied(f"{source}: Permission denied")
    except FirecrestError as e:
        err = _path_error(e)
        err.description = "sourcePath error"
        raise err from None
    return size


PATH_ERRORS = (InvalidPath, PermissionDenied, NotADirectory, ADirectory)


def _not_allowed(cause: FirecrestError) -> FirecrestError:
    """The contract's answer to a target that cannot be written, with the header of the actual cause
    (X-Invalid-Path, X-Permission-Denied, ...); any other failure (the cluster unreachable, a timeout) as it is."""
    cause = _path_error(cause)
    if not isinstance(cause, PATH_ERRORS):
        return cause
    err = type(cause)("'targetPath' directory not allowed", "Failed to upload file")
    err.header_value = cause.error
    return err


def _path_error(err: FirecrestError) -> FirecrestError:
    """Storage's path checks say `X-Invalid-Path` for a missing path (FirecREST v1 §3.6, is_valid_file/dir)."""
    if isinstance(err, NotFound):
        return InvalidPath(err.error, err.description)
    return err


@routes.post("/xfer-external/upload")
@idempotent
def external_upload() -> tuple[Response, int]:
    target_system = system("upload")
    source = params.text("sourcePath", "upload")
    target = params.text("targetPath", "upload")
    name = posixpath.basename(source)
    if name in ("", ".", ".."):
        raise BadRequest("'sourcePath' must name a file", "Failed to upload file")
    with transfers().admission.admit(identity()):
        final = upload_target(target_system, target, name)
        args = {"source": source, "name": name, "target": final}
        return envelope(transfers().engine.start(identity(), target_system, "upload", args, request_id()))


@routes.post("/xfer-external/download")
@idempotent
def external_download() -> tuple[Response, int]:
    source_system = system("download")
    source = params.text("sourcePath", "download")
    with transfers().admission.admit(identity()):
        args = {"source": source, "size": download_size(source_system, source)}
        return envelope(transfers().engine.start(identity(), source_system, "download", args, request_id()))


@routes.post("/xfer-external/invalidate")
def invalidate() -> tuple[Response, int]:
    task_id = request.headers.get("X-Task-Id")
    if task_id is None:
        raise BadRequest("Header X-Task-Id missing", INVALIDATE_FAILED)
    if not TASK_ID.fullmatch(task_id):
        raise BadRequest("Invalid X-Task-Id", INVALIDATE_FAILED)
    caller = identity()
    task = tasks().get(caller.token, task_id)
    if task is None or task.get("service") != "storage":
        raise BadRequest("Invalid X-Task-Id", INVALIDATE_FAILED)
    try:
        # Its URLs end first, nothing more can arrive; a staged download's GET URL then answers 404.
        transfers().staging.retire(task_id, keep_get_url=task.get("status") == Status.DOWNLOAD_READY)
    except FirecrestError:
        raise BadRequest("Could not invalidate URL", INVALIDATE_FAILED) from None
    tasks().delete(caller.token, task_id)
    return jsonify({"success": "URL invalidated successfully"}), 201


@routes.get("/status")
def status() -> Response:
    return jsonify({"success": "ack"})

