"""The status service (health of services, systems and filesystems; public parameters) for a site.

gunicorn runs `status.app:create()` in each worker; the service has no background work. Its results are cached
briefly per user, in the app (checks.py)."""

from __future__ import annotations

from flask import Flask

from common.app import create_app
from common.config import Site, load

from .checks import CACHE_SECONDS, Services, UserCache
from .routes import CACHE, SERVICES, routes


def create(site: Site | None = None) -> Flask:
    site = site or load()
    app = create_app("status", [routes], site)
    app.extensions[CACHE] = UserCache(CACHE_SECONDS)
    app.extensions[SERVICES] = Services(site.service_urls, site.service_token)
    return app
