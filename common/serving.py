"""gunicorn's configuration hooks for every service (`--config python:common.serving`).

A service's app is built by its factory in each worker (`compute.app:create()`); its background work (task
recovery, lease renewal, transfer watching) starts here, once the worker has the app, and never at import."""

from __future__ import annotations

import logging
import sys
from typing import Any

from common.app import start_background

# One header may be as large as the gateway lets through (HAProxy's 16 KiB buffer), so that the service, not
# gunicorn's HTML 431, answers an oversized value (an Idempotency-Key of 10 kB gets the JSON 400).
limit_request_field_size = 16384


def post_worker_init(worker: Any) -> None:
    configure_logging()
    start_background(worker.wsgi)


def configure_logging() -> None:
    """The access log and every service's own logger, one JSON or text line each, to gunicorn's stderr."""
    root = logging.getLogger("firecrest")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
