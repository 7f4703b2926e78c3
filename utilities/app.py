"""The utilities service (synchronous filesystem operations, small uploads and downloads) for a site.

gunicorn runs `utilities.app:create()` in each worker; the service has no background work."""

from __future__ import annotations

from flask import Flask

from common.app import create_app
from common.config import Site

from .routes import routes


def create(site: Site | None = None) -> Flask:
    return create_app("utilities", [routes], site)
