"""The portal's own pages: systems and their health, the file browser, the user's tasks."""

from __future__ import annotations

from flask import Blueprint, render_template

from .auth import login_required

routes = Blueprint("pages", __name__)


@routes.get("/systems")
@login_required
def systems() -> str:
    return render_template("error.html", title="Systems", message="coming")


@routes.get("/files")
@login_required
def files() -> str:
    return render_template("error.html", title="Files", message="coming")


@routes.get("/tasks")
@login_required
def tasks() -> str:
    return render_template("error.html", title="Tasks", message="coming")
