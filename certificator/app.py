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
import os
import time
from pathlib import Path

from flask import Flask, jsonify, request

from common.app import create_app, identity, request_id, require_service_credential
from common.config import site
from common.errors import BadRequest, Unauthorized

from .principals import principals
from .signing import check_public_key, sign

log = logging.getLogger("firecrest.certificator")


def create() -> Flask:
    app = create_app("certificator", expired_ok=lambda method, path: path == "/certificates/resume")
    principals()  # a bad `certificates:` key stops the service at start, not at the first request
    ca_key = Path(os.environ.get("FIRECREST_CA_KEY", "/nonexistent"))

    # The user's token alone is not enough: only the gateway's services may ask for certificates.
    app.before_request(require_service_credential)

    @app.post("/certificates")
    @app.post("/certificates/resume")
    def certificate():  # noqa: ANN202
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
        cert = sign(ca_key, public_key, user, key_id, site().certificate_validity_minutes)
        log.info("certificate for %s on %s, key id %s", user, system, key_id)
        return jsonify({"certificate": cert})

    @app.get("/status")
    def status():  # noqa: ANN202
        return jsonify({"success": "ack"})

    return app


app = create()
