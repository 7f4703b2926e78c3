"""Routes of the certificator (internal: never routed by the gateway).

POST /certificates  form: system, public_key; headers: Authorization (the user's token) and
X-Firecrest-Service-Token (the services' credential). Reply: {"certificate": "<OpenSSH certificate line>"}.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask, jsonify, request

from common.app import create_app, identity, request_id, require_service_credential
from common.config import site
from common.errors import BadRequest

from .signing import check_public_key, sign

log = logging.getLogger("firecrest.certificator")


def create() -> Flask:
    app = create_app("certificator")
    ca_key = Path(os.environ.get("FIRECREST_CA_KEY", "/nonexistent"))

    # The user's token alone is not enough: only the gateway's services may ask for certificates.
    app.before_request(require_service_credential)

    @app.post("/certificates")
    def certificate():  # noqa: ANN202
        system = request.form.get("system", "")
        if system not in site().systems:
            raise BadRequest("unknown or missing system")
        public_key = check_public_key(request.form.get("public_key", ""))
        user = identity().username
        key_id = f"{user}@{request_id()}"
        cert = sign(ca_key, public_key, user, key_id, site().certificate_validity_minutes)
        log.info("certificate for %s on %s, key id %s", user, system, key_id)
        return jsonify({"certificate": cert})

    @app.get("/status")
    def status():  # noqa: ANN202
        return jsonify({"success": "ack"})

    return app


app = create()
