"""The portal's own pages: systems and their health, the file browser, the user's tasks (routes parse, call the
API, shape the page; an API error is shown on the page it happened on)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, send_file, url_for

from . import paths
from .api import ApiError, api
from .auth import login_required

routes = Blueprint("pages", __name__)


def _out(path: str, **kwargs: Any) -> tuple[Any, ApiError | None]:
    """The `out` (or `output`) of a GET, or the error the API answered with."""
    try:
        body = api().get(path, **kwargs).json()
    except ApiError as e:
        return None, e
    return body.get("out", body.get("output")), None


def _systems() -> tuple[list[dict[str, Any]], ApiError | None]:
    systems, error = _out("/status/systems")
    return (systems if isinstance(systems, list) else []), error


@routes.get("/systems")
@login_required
def systems() -> Any:
    systems, error = _systems()
    services, services_error = _out("/status/services")
    filesystems, fs_error = _out("/status/filesystems")
    return render_template("systems.html", systems=systems, services=services or [],
                           filesystems=filesystems or {}, error=error or services_error or fs_error)


def _where() -> tuple[str, str]:
    """(system, directory) of a file-browser request: query or form fields; '' is the home."""
    values = request.form if request.method == "POST" else request.args
    return values.get("system", ""), values.get("dir", values.get("path", ""))


def _listing(system: str, directory: str, error: ApiError | None = None) -> Any:
    systems, systems_error = _systems()
    names = [str(s.get("system")) for s in systems]
    system = system or (names[0] if names else "")
    entries: list[dict[str, Any]] = []
    listing_error = None
    if system:
        try:
            out = api().get("/utilities/ls", params={"targetPath": paths.api_path(directory)}, machine=system)
            entries = sorted(out.json().get("output") or [], key=lambda e: (e.get("type") != "d", e.get("name")))
        except ApiError as e:
            listing_error = e
    shown = error or listing_error or systems_error
    page = render_template("files.html", system=system, systems=names, dir=directory, entries=entries,
                           crumbs=paths.crumbs(directory), parent=paths.parent(directory), join=paths.join,
                           error=shown)
    return page, (shown.status if shown else 200)


@routes.get("/files")
@login_required
def files() -> Any:
    return _listing(*_where())


def _back(system: str, directory: str) -> Response:
    return redirect(url_for("pages.files", system=system, path=directory))  # type: ignore[return-value]


def _change(system: str, directory: str, done: str, call: Callable[[], object]) -> Any:
    """A change of the file browser: back to the listing with `done` said, or the listing with the API's refusal."""
    try:
        call()
    except ApiError as e:
        return _listing(system, directory, e)
    flash(done, "ok")
    return _back(system, directory)


@routes.post("/files/mkdir")
@login_required
def mkdir() -> Any:
    system, directory = _where()
    name = request.form.get("name", "")
    return _change(system, directory, f"Made the directory {name}",
                   lambda: api().post("/utilities/mkdir", data={"targetPath": paths.join(directory, name)},
                                      machine=system))


@routes.post("/files/upload")
@login_required
def upload() -> Any:
    system, directory = _where()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a file to upload first", "error")
        return _back(system, directory)
    return _change(system, directory, f"Uploaded {upload.filename}",
                   lambda: api().post("/utilities/upload", data={"targetPath": paths.api_path(directory)},
                                      files={"file": (upload.filename, upload.stream, upload.mimetype)},
                                      machine=system))


@routes.post("/files/rename")
@login_required
def rename() -> Any:
    system, directory = _where()
    source, new_name = request.form.get("path", ""), request.form.get("name", "")
    return _change(system, directory, f"Renamed {paths.name_of(source)} to {new_name}",
                   lambda: api().put("/utilities/rename", machine=system,
                                     data={"sourcePath": source, "targetPath": paths.join(directory, new_name)}))


@routes.post("/files/delete")
@login_required
def delete() -> Any:
    system, directory = _where()
    target = request.form.get("path", "")
    return _change(system, directory, f"Deleted {paths.name_of(target)}",
                   lambda: api().delete("/utilities/rm", data={"targetPath": target}, machine=system))


@routes.get("/files/download")
@login_required
def download() -> Any:
    system, path = request.args.get("system", ""), request.args.get("path", "")
    try:
        r = api().get("/utilities/download", params={"sourcePath": path}, machine=system)
    except ApiError as e:
        return _listing(system, paths.parent(path) or "", e)
    return send_file(io.BytesIO(r.content), as_attachment=True, download_name=paths.name_of(path),
                     mimetype="application/octet-stream")


@routes.get("/files/view")
@login_required
def view() -> Any:
    system, path = request.args.get("system", ""), request.args.get("path", "")
    text, error = _out("/utilities/view", params={"targetPath": path}, machine=system)
    page = render_template("view.html", system=system, path=path, text=text, error=error,
                           parent=paths.parent(path) or "", name=paths.name_of(path))
    return page, (error.status if error else 200)


TASK_DONE = frozenset({"200", "114", "117"})  # success, final (upload to and download from the object store)
TASK_FAILED = frozenset({"400", "115", "118"})


def task_state(code: str) -> str:
    """ok, bad or wait: how a task's status code is coloured."""
    return "ok" if code in TASK_DONE else "bad" if code in TASK_FAILED else "wait"


def _sorted_tasks(tasks: Any) -> list[dict[str, Any]]:
    items = list(tasks.values()) if isinstance(tasks, dict) else list(tasks or [])
    return sorted(items, key=lambda t: str(t.get("updated_at") or t.get("last_modify") or ""), reverse=True)


TASKS_PER_PAGE = 100  # a user of long standing has thousands


@routes.get("/tasks")
@login_required
def tasks() -> Any:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    try:
        body = api().get("/tasks/").json()
    except ApiError as e:
        return render_template("tasks.html", tasks=[], total=0, page=1, pages=1, first=0, error=e,
                               task_state=task_state), e.status
    every = _sorted_tasks(body.get("tasks"))
    pages = max((len(every) + TASKS_PER_PAGE - 1) // TASKS_PER_PAGE, 1)
    page = min(page, pages)
    first = (page - 1) * TASKS_PER_PAGE
    return render_template("tasks.html", tasks=every[first:first + TASKS_PER_PAGE], total=len(every), page=page,
                           pages=pages, first=first, error=None, task_state=task_state)
