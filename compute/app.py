"""The compute service: its routes (routes.py) and its engine (background.py) for a site.

gunicorn runs `compute.app:create()` in each worker; the engine's loops (recovery of tasks left behind by a
process that stopped) start when the worker serves (common/serving.py)."""

from __future__ import annotations

from flask import Flask

from common.app import REMOTE, create_app, on_serve
from common.auth import TokenValidator
from common.config import Site, load
from common.tasks_client import TasksClient

from .background import compute_engine
from .job_events import JobPoller
from .operations import operations
from .output_routes import output_routes
from .routes import ENGINE, WORKDIRS, routes
from .workdirs import Workdirs


def create(site: Site | None = None) -> Flask:
    site = site or load()
    app = create_app("compute", [routes, output_routes], site)
    workdirs = app.extensions[WORKDIRS] = Workdirs()
    engine = compute_engine(TasksClient.of(site), app.extensions[REMOTE], operations(workdirs))
    app.extensions[ENGINE] = engine
    on_serve(app, engine.serve)
    # Polls Slurm for users with a job event stream open (served by the tasks service).
    on_serve(app, JobPoller(TasksClient.of(site), app.extensions[REMOTE], TokenValidator(site.auth)).serve)
    return app
