"""The tasks service (the task store in Redis and its public read API) for a site.

gunicorn runs `tasks.app:create()` in each worker; the store's Redis is the site's `tasks.redis_url` (connections
open on first use). The service has no background work: tasks whose process died are claimed by the services
that run them (POST /claim)."""

from __future__ import annotations

import threading

from flask import Flask

from common.app import create_app
from common.config import Site, load

from .events import EventStore
from .events_routes import EVENTS, PROCESS_SLOTS, STREAMS_PER_PROCESS, events_routes
from .events_stream import HEARTBEAT_S
from .idempotency_routes import register as register_idempotency
from .routes import STORE, routes
from .store import TaskStore


def create(site: Site | None = None) -> Flask:
    site = site or load()
    app = create_app(
        "tasks", [routes, events_routes], site,
        public=lambda method, path: method == "POST" and path in ("/claim", "/events/jobs/claim"),
        # Outcomes of work started under a token that has since expired are still recorded (credential required).
        expired_ok=lambda method, path: method in ("PUT", "DELETE"),
    )
    app.extensions[STORE] = TaskStore.at(site.redis_url)
    app.extensions[EVENTS] = EventStore.beside(app.extensions[STORE].r, HEARTBEAT_S)
    app.extensions[PROCESS_SLOTS] = threading.BoundedSemaphore(STREAMS_PER_PROCESS)
    register_idempotency(app, app.extensions[STORE].r)
    return app
