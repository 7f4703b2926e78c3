"""The certificator (internal: a user's token and a fresh public key for a short-lived SSH user certificate) for a
site.

gunicorn runs `certificator.app:create()` in each worker, as the one account that can read the CA key
(`certificates.ca_key` in the site file); the service has no background work."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from common.app import create_app
from common.config import Site, load

from . import principals
from .routes import CA_KEY, PRINCIPALS, routes


def create(site: Site | None = None) -> Flask:
    site = site or load()
    # A bad `certificates:` key stops the service here, at start, not at the first request.
    policy = principals.parse(site.certificate_principals)
    app = create_app("certificator", [routes], site,
                     expired_ok=lambda method, path: path == "/certificates/resume")
    app.extensions[PRINCIPALS] = policy
    # Each system's certificates are signed by its own CA, which only its login node trusts.
    app.extensions[CA_KEY] = {name: Path(site.ca_key_of(name) or "/nonexistent") for name in site.systems}
    return app
