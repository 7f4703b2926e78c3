"""Routes of the utilities service (public prefix /utilities): parse, call, shape.

Success codes and bodies follow the FirecREST v1 contract (201 for what creates, 204 for rm).
"""

from __future__ import annotations

import contextlib
import io
import posixpath
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from common import files, params, values
from common.app import machine, request_id, run, site
from common.commands import Groups, Whoami
from common.errors import BadRequest, FirecrestError, NotFound, NotText

from . import commands as c

LISTING_CAP = 64 * 1024 * 1024  # an ls of a huge tree stops here instead of filling the service's memory
routes = Blueprint("utilities", __name__)


def reply(output: Any, description: str, status: int = 200) -> tuple[Response, int]:
    return jsonify({"description": description, "output": output}), status


def max_file_size() -> int:
    return site().limits.max_file_size_mb * 1024 * 1024


def page(items: list, size: int | None, number: int | None) -> list:
    """1-based pages; out-of-range or missing paging gives the whole list (as the contract has it)."""
    if not size or not number:
        return items
    chunk = items[(number - 1) * size : number * size]
    return chunk or items


def grep(text: str, pattern: str, operation: str) -> str:
    """Lines containing `pattern` literally (done here: the login node runs no pipes)."""
    lines = [line for line in text.splitlines(keepends=True) if pattern in line]
    if not lines:
        raise NotFoundPattern().with_description(f"Error on {operation} operation with grep")
    return "".join(lines)


class NotFoundPattern(NotFound):
    status = 404

    def __init__(self) -> None:
        super().__init__("pattern not found")


def read_file(operation: str, parameter: str) -> bytes:
    """A whole file up to the size limit (view, download); a larger one is an error, never a partial result."""
    system = machine(operation)
    limit = max_file_size()
    failure = {"view": "Failed to view file content", "download": "Failed to download file"}[operation]
    command = c.ReadFile(operation, params.text(parameter, operation), limit, failure)
    return run(system, command, max_output=limit + 1)


def slice_file(tool: str) -> tuple[Response, int]:
    system = machine(tool)
    path = params.text("targetPath", tool)
    size, lines = params.count("bytes", tool), params.count("lines", tool)
    if size is not None and lines is not None:
        raise BadRequest("'bytes' and 'lines' cannot be given together", f"Error on {tool} operation")
    skip = params.flag("skip_ending" if tool == "head" else "skip_beginning")
    unit, number = ("bytes", size) if size is not None else ("lines", lines)
    text = run(system, c.Slice(tool, path, unit, number, skip), max_output=max_file_size())
    pattern = params.text("grep", tool, required=False)
    if pattern:
        text = grep(text, pattern, tool)
    return reply(text, f"Success to {tool} file.")


@routes.get("/ls")
@routes.get("/<system_name>/ls")  # the seed's name
def ls(system_name: str | None = None) -> tuple[Response, int]:
    system = machine("ls", system_name)
    command = c.Ls(params.text("targetPath", "ls"), hidden=params.flag("showhidden"),
                   recursive=params.flag("recursive"), numeric=params.flag("numericUid"),
                   follow=params.flag("followLinks"), unsorted=params.flag("unsorted"),
                   names_only=params.flag("notListing"))
    entries = run(system, command, max_output=LISTING_CAP)
    return reply(page(entries, params.number("pageSize"), params.number("pageNumber")), "List of contents")


@routes.post("/mkdir")
def mkdir() -> tuple[Response, int]:
    system = machine("mkdir")
    return reply(run(system, files.Mkdir(params.text("targetPath", "mkdir"), params.present("p"))),
                 "Success to mkdir file.", 201)


@routes.put("/rename")
def rename() -> tuple[Response, int]:
    system = machine("rename")
    command = files.Rename(params.text("sourcePath", "rename"), params.text("targetPath", "rename"))
    return reply(run(system, command), "Success to rename file.")


@routes.put("/chmod")
def chmod() -> tuple[Response, int]:
    system = machine("chmod")
    command = c.Chmod(params.text("targetPath", "chmod"), params.text("mode", "chmod"))
    return reply(run(system, command), "Success to chmod file or directory.")


@routes.put("/chown")
def chown() -> tuple[Response, int]:
    system = machine("chown")
    path = params.text("targetPath", "chown")
    owner = params.text("owner", "chown", required=False)
    group = params.text("group", "chown", required=False)
    if not owner and not group:
        raise BadRequest("group or owner must be set", "Error on chown operation")
    return reply(run(system, c.Chown(path, owner, group)), "Success to chown file or directory.")


@routes.post("/copy")
def copy() -> tuple[Response, int]:
    system = machine("copy")
    command = files.Copy(params.text("sourcePath", "copy"), params.text("targetPath", "copy"))
    return reply(run(system, command), "Success to copy file.", 201)


@routes.post("/compress")
def compress() -> tuple[Response, int]:
    system = machine("compress")
    source, target = params.text("sourcePath", "compress"), params.text("targetPath", "compress")
    # tar leaves a truncated archive behind when it fails: write aside, then move into place.
    plan = files.compress_plan(source, target, params.flag("dereference"), request_id())
    tar, rename_into_place = plan.steps
    try:
        run(system, tar)
    except FirecrestError:
        with contextlib.suppress(FirecrestError):
            run(system, plan.cleanup)
        raise
    run(system, rename_into_place)
    return reply("", "Success to compress file.", 201)


@routes.post("/extract")
def extract() -> tuple[Response, int]:
    system = machine("extract")
    source = params.text("sourcePath", "extract")
    requested = params.text("type", "extract", required=False) or params.text("extension", "extract",
                                                                               required=False)
    command = files.Extract(source, params.text("targetPath", "extract"), files.extractor(source, requested))
    return reply(run(system, command), "Success to extract file.", 201)


@routes.get("/file")
def file_type() -> tuple[Response, int]:
    system = machine("file")
    return reply(run(system, c.FileType(params.text("targetPath", "file"))), "Success to file file.")


@routes.get("/stat")
def stat() -> tuple[Response, int]:
    system = machine("stat")
    path = params.text("sourcePath" if params.present("sourcePath") and not params.present("targetPath")
                       else "targetPath", "stat")
    return reply(run(system, c.Stat(path, params.flag("dereference"))), "Success to stat file.")


@routes.post("/symlink")
def symlink() -> tuple[Response, int]:
    system = machine("symlink")
    command = c.Symlink(params.text("targetPath", "symlink"), params.text("linkPath", "symlink"))
    return reply(run(system, command), "Success to symlink file.", 201)


@routes.get("/head")
def head() -> tuple[Response, int]:
    return slice_file("head")


@routes.get("/tail")
def tail() -> tuple[Response, int]:
    return slice_file("tail")


@routes.get("/view")
def view() -> tuple[Response, int]:
    data = read_file("view", "targetPath")
    try:
        return reply(data.decode(), "Success to view file.")
    except UnicodeDecodeError as e:
        raise NotText(f"File is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                      "/utilities/download returns its bytes", "Failed to view file content",
                      header_value="File is not UTF-8 text") from None


@routes.get("/checksum")
def checksum() -> tuple[Response, int]:
    system = machine("checksum")
    return reply(run(system, c.Checksum(params.text("targetPath", "checksum"))), "Success to checksum file.")


@routes.get("/download")
def download() -> Response:
    data = read_file("download", "sourcePath")
    name = posixpath.basename(params.text("sourcePath", "download").rstrip("/")) or "download"
    # send_file quotes the name safely (and adds filename*= for names that are not ASCII).
    return send_file(io.BytesIO(data), mimetype="application/octet-stream", as_attachment=True,
                     download_name=name)


@routes.post("/upload")
@routes.post("/<system_name>/upload")  # the seed's name
def upload(system_name: str | None = None) -> tuple[Response, int]:
    system = machine("upload", system_name)
    directory = params.text("targetPath", "upload")
    sent = request.files.get("file")
    if sent is None:
        raise BadRequest("'file' not specified", "Error on upload operation")
    name = sent.filename or ""
    if name in ("", ".", "..") or "/" in name or values.CONTROL.search(name) or len(name) > 255:
        raise BadRequest("'file' has an invalid file name", "Error on upload operation")
    data, command = sent.read(), files.Upload(directory, name)
    if len(data) > files.PROBE_ABOVE:  # a bad target is the same 400 as for a small file, found before sending
        run(system, files.Writable(command.path))
    run(system, command, stdin=data)
    return reply("", "File upload successful", 201)


@routes.delete("/rm")
def rm() -> Response:
    system = machine("rm")
    run(system, files.Remove(params.text("targetPath", "rm")))
    return Response(status=204)


@routes.get("/whoami")
def whoami() -> tuple[Response, int]:
    system = machine("whoami")
    if params.flag("groups"):
        return reply(run(system, Groups()), "User information")
    return reply(run(system, Whoami()), "User information")


@routes.get("/status")
def status() -> Response:
    return jsonify({"success": "ack"})
