"""The API documentation service: Swagger UI on docs/openapi.yaml, public (no token), published by the gateway at
`/docs/`. gunicorn runs `apidocs.app:create()`; it has no background work and holds no secret of the site.

`FIRECREST_URL` is the gateway's URL as browsers reach it: the served spec's `servers`, so "Try it out" calls the
gateway; without it, the spec's server is `/` (the gateway that served the page)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from common.app import create_app
from common.config import Site, load

from .routes import DOCS, routes
from .spec import SPEC, SpecFile


def create(site: Site | None = None, public_url: str | None = None, spec: Path = SPEC) -> Flask:
    site = site or load()
    app = create_app("apidocs", [routes], site, public=lambda method, path: True)
    app.extensions[DOCS] = SpecFile(spec, os.environ.get("FIRECREST_URL", "") if public_url is None else public_url)
    return app
