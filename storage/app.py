"""Routes of the storage service (public prefix /storage): parse and check, start a task, reply 201.

External transfers go through Swift temp URLs (transfers.py, swift.py); internal ones are batch jobs on the
system's xfer partition (internal.py). Differences from upstream, on purpose: the client uploads with a temp-URL
PUT (or the returned command, which also handles files over Swift's 5 GiB limit) instead of a FormPost; no
long-lived SSH certificate is stored in the task; the upload is noticed within a second, not at the next 60 s
poll; 115 is final (the staged object is removed; upload again).
"""

from __future__ import annotations

import functools
import posixpath
import re

from flask import Flask, Response, jsonify, request

from common import params
from common.app import create_app, identity, machine, request_id
from common.commands import FileKind
from common.config import site
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
from common.remote import run
from common.tasks import client, envelope

from . import xfer
from .internal import internal
from .swift import staging
from .transfers import Transfers

TASK_ID = re.compile(r"[A-Za-z0-9]{1,64}")
INVALIDATE_FAILED = "Failed to invalidate URL"


@functools.cache
def transfers() -> Transfers:
    return Transfers(client(), staging())


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
    if not run(target_system, xfer.Access(directory, "-w")):
        raise _not_allowed(PermissionDenied(f"{directory}: Permission denied"))
    return final


def download_size(source_system: str, source: str) -> int:
    """The size of the file to download; it must be a regular file the caller can read (checked now)."""
    try:
        size = run(source_system, xfer.FileSize(source))
        if not run(source_system, xfer.Access(source, "-r")):
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


def create() -> Flask:
    app = create_app("storage")
    app.register_blueprint(internal)
    if "tasks" in site().service_urls:
        transfers().ensure_watcher()  # tasks left behind by a previous run of this service resume now

    @app.post("/xfer-external/upload")
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
            return envelope(transfers().start(identity(), target_system, "upload", args, request_id()))

    @app.post("/xfer-external/download")
    def external_download() -> tuple[Response, int]:
        source_system = system("download")
        source = params.text("sourcePath", "download")
        with transfers().admission.admit(identity()):
            args = {"source": source, "size": download_size(source_system, source)}
            return envelope(transfers().start(identity(), source_system, "download", args, request_id()))

    @app.post("/xfer-external/invalidate")
    def invalidate() -> tuple[Response, int]:
        task_id = request.headers.get("X-Task-Id")
        if task_id is None:
            raise BadRequest("Header X-Task-Id missing", INVALIDATE_FAILED)
        if not TASK_ID.fullmatch(task_id):
            raise BadRequest("Invalid X-Task-Id", INVALIDATE_FAILED)
        caller = identity()
        task = client().get(caller.token, task_id)
        if task is None or task.get("service") != "storage":
            raise BadRequest("Invalid X-Task-Id", INVALIDATE_FAILED)
        try:
            # Its URLs end first, nothing more can arrive; a staged download's GET URL then answers 404.
            staging().retire(task_id, keep_get_url=task.get("status") == "117")
        except FirecrestError:
            raise BadRequest("Could not invalidate URL", INVALIDATE_FAILED) from None
        client().delete(caller.token, task_id)
        return jsonify({"success": "URL invalidated successfully"}), 201

    @app.get("/status")
    def status() -> Response:
        return jsonify({"success": "ack"})

    return app


app = create()
