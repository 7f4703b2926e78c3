"""Internal routes of idempotency keys (never routed by the gateway; the services' credential and the user's token):

  POST   /idempotency/reservation  {key, fingerprint} -> {state: new, nonce} | {state: hit, reply} |
                                   {state: in_flight, retry_after} | {state: mismatch}
  PUT    /idempotency/reply        {key, nonce, reply} records the first reply (204; 409 when the reservation is lost)
  DELETE /idempotency/reservation  {key, nonce} gives the key up after a failed first request (204)

Keys are the caller's (the token's user): one user's key never reaches another's reply.
"""

from __future__ import annotations

import re
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, jsonify

from common.app import identity, require_service_credential
from common.errors import BadRequest

from .idempotency import IdempotencyStore
from .routes import body

KEY = re.compile(r"[\x21-\x7e]{1,255}")
HEX64 = re.compile(r"[0-9a-f]{64}")
NONCE = re.compile(r"[0-9a-f]{32}")
MAX_REPLY_BODY = 65536
MAX_REPLY_HEADERS = 16
IDEMPOTENCY = "tasks.idempotency"
idempotency = Blueprint("idempotency", __name__)


def register(app: Flask, client: redis.Redis) -> None:
    """The routes and their store (on the task store's Redis client) in the tasks app."""
    app.register_blueprint(idempotency)
    app.extensions[IDEMPOTENCY] = IdempotencyStore(client)


def store() -> IdempotencyStore:
    return current_app.extensions[IDEMPOTENCY]


def field(data: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"'{name}' is missing or malformed", "Invalid request")
    return value


def reply(data: dict[str, Any]) -> dict[str, Any]:
    """The reply to replay: {status, body, headers}, bounded (the store keeps it 24 h)."""
    value = data.get("reply")
    if not isinstance(value, dict):
        raise BadRequest("'reply' must be an object", "Invalid request")
    status, text, headers = value.get("status"), value.get("body"), value.get("headers", {})
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadRequest("'reply.status' must be an HTTP status", "Invalid request")
    if not isinstance(text, str) or len(text) > MAX_REPLY_BODY:
        raise BadRequest(f"'reply.body' must be text of at most {MAX_REPLY_BODY} characters", "Invalid request")
    if (not isinstance(headers, dict) or len(headers) > MAX_REPLY_HEADERS
            or not all(isinstance(k, str) and isinstance(v, str) and len(k) + len(v) < 1024
                       for k, v in headers.items())):
        raise BadRequest(f"'reply.headers' must map at most {MAX_REPLY_HEADERS} names to text", "Invalid request")
    return {"status": status, "body": text, "headers": headers}


@idempotency.before_request
def _internal() -> None:
    require_service_credential()  # also checked for every non-GET of the app (routes.py): never public


@idempotency.post("/idempotency/reservation")
def reserve() -> Response:
    data = body()
    found = store().reserve(identity().username, field(data, "key", KEY), field(data, "fingerprint", HEX64))
    return jsonify(found.as_json())


@idempotency.put("/idempotency/reply")
def complete() -> tuple[Response | str, int]:
    data = body()
    if not store().complete(identity().username, field(data, "key", KEY), field(data, "nonce", NONCE), reply(data)):
        return jsonify({"description": "The reservation is not held any more"}), 409
    return "", 204


@idempotency.delete("/idempotency/reservation")
def release() -> tuple[str, int]:
    data = body()
    store().release(identity().username, field(data, "key", KEY), field(data, "nonce", NONCE))
    return "", 204
