"""gunicorn's configuration hooks for every service (`--config python:common.serving`).

A service's app is built by its factory in each worker (`compute.app:create()`); its background work (task
recovery, lease renewal, transfer watching) starts here, once the worker has the app, and never at import."""

from __future__ import annotations

from typing import Any

from common.app import start_background


def post_worker_init(worker: Any) -> None:
    start_background(worker.wsgi)
