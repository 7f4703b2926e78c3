"""Routes of the certificator (internal: never routed by the gateway).

POST /certificates  form: system, public_key; headers: Authorization (the user's token) and
X-Firecrest-Service-Token (the services' credential). Reply: {"certificate": "<OpenSSH certificate line>"}.

Only users of the cluster get a certificate (`certificates:` in the site file, see principals.py); root, service
accounts and unknown names get 403, whatever the token says.

POST /certificates/resume  the same, for a task's background work: the token may have expired (an upload picked
up hours after the request), but by no more than `certificates.resume_window_s`; its signature, issuer and
audience still hold. The certificate itself is as short-lived as any other.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request

from common import metrics
from common.app import identity, request_id, require_service_credential, site
from common.errors import BadRequest, Unauthorized

from .principals import Principals
from .signing import check_public_key, sign

PRINCIPALS, CA_KEY = "certificator.principals", "certificator.ca_key"
log = logging.getLogger("firecrest.certificator")
routes = Blueprint("certificator", __name__)

# The user's token alone is not enough: only the gateway's services may ask for certificates (every request).
# `GET /metrics` is the exception: the site's monitoring holds no credential (README, Metrics).
routes.before_app_request(lambda: None if metrics.is_scrape() else require_service_credential())


def principals() -> Principals:
    """Who may get a certificate (the site's rule, parsed when the app was built)."""
    return current_app.extensions[PRINCIPALS]


def ca_key(system: str) -> Path:
    """The CA of `system`: a certificate it signs is refused by the login node of any other system."""
    return current_app.extensions[CA_KEY][system]


@routes.post("/certificates")
@routes.post("/certificates/resume")
def certificate() -> Response:
    caller = identity()
    if time.time() - caller.claims["exp"] > site().resume_window_s:
        raise Unauthorized("JWT token expired too long ago to resume the task's work")
    principals().check(caller.username)  # cluster users only: never root or a service account
    system = request.form.get("system", "")
    if system not in site().systems:
        raise BadRequest("unknown or missing system")
    public_key = check_public_key(request.form.get("public_key", ""))
    user = caller.username
    key_id = f"{user}@{request_id()}"
    cert = sign(ca_key(system), public_key, user, key_id, site().certificate_validity_minutes)
    log.info("certificate for %s on %s, key id %s", user, system, key_id)
    metrics.certificate_issued(system)
    return jsonify({"certificate": cert})


@routes.get("/status")
def status() -> Response:
    return jsonify({"success": "ack"})
