"""The storage service: external transfers (external_routes.py, on the engine of external.py) and internal ones
(internal_routes.py), for a site.

gunicorn runs `storage.app:create()` in each worker; the engine's loops (lease renewal, recovery, watching for
uploads, the sweep of old objects) start when the worker serves (common/serving.py)."""

from __future__ import annotations

from flask import Flask

from common.app import REMOTE, create_app, on_serve
from common.config import Site, load
from common.tasks_client import TasksClient

from .external import storage_engine
from .external_routes import TRANSFERS, routes
from .internal_routes import internal
from .swift import Staging


def create(site: Site | None = None) -> Flask:
    site = site or load()
    app = create_app("storage", [routes, internal], site)
    engine, transfers = storage_engine(TasksClient.of(site), app.extensions[REMOTE], Staging(site.storage), site)
    app.extensions[TRANSFERS] = transfers
    on_serve(app, engine.serve)
    return app
