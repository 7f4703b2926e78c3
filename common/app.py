"""The Flask side of every service: the app factory (JSON errors, token check, request id, structured access log)
and what routes use to reach the request's caller, the site and the cluster.

Only routes import this module: below them, code gets the site, the cluster (`Remote`) and the caller as
arguments. Building an app starts nothing: background work is registered with `on_serve` and started by the
process that serves (gunicorn's `post_worker_init`, see common/serving.py)."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import metrics
from .auth import Identity, TokenValidator, bearer
from .commands import Command, T
from .config import Site, load
from .errors import FirecrestError, Forbidden, MissingMachine, UnknownMachine, to_response
from .remote import Remote
from .scopes import check_scope

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SITE, REMOTE, ON_SERVE = "firecrest.site", "firecrest.remote", "firecrest.on_serve"
log = logging.getLogger("firecrest.access")

Rule = Callable[[str, str], bool]  # (method, path) -> bool


def request_id() -> str:
    return g.get("request_id", "-")


def identity() -> Identity:
    """The caller, validated by `before_request` for every route that is not public."""
    return g.identity


def site() -> Site:
    """The site of the app serving this request."""
    return current_app.extensions[SITE]


def run(system: str, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T:
    """Run `command` on `system` as the request's caller."""
    remote: Remote = current_app.extensions[REMOTE]
    return remote.run(identity(), system, command, request_id(), stdin=stdin, max_output=max_output)


def remote() -> Remote:
    return current_app.extensions[REMOTE]


def machine(operation: str, name: str | None = None, unknown: type[UnknownMachine] = UnknownMachine) -> str:
    """The system named by the `X-Machine-Name` header (or `name`, from an early path-style route); unknown
    names get the contract's header."""
    name = name or request.headers.get("X-Machine-Name")
    if not name:
        raise MissingMachine()
    if name not in site().systems:
        raise unknown(name).with_description(f"Error on {operation} operation")
    return name


def require_service_credential() -> None:
    """Internal routes: the caller must also hold the services' credential (a user's token alone is not enough)."""
    given = request.headers.get("X-Firecrest-Service-Token", "")
    expected = site().service_token
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("A service credential is required")


def envelope(task_id: str, status: int = 201, with_url: bool = True) -> tuple[Response, int]:
    """The contract's answer to a request that started a task."""
    body = {"success": "Task created", "task_id": task_id}
    if with_url:
        body["task_url"] = f"/tasks/{task_id}"
    return jsonify(body), status


def on_serve(app: Flask, start: Callable[[], None]) -> None:
    """Register background work, started once the process serves (`start_background`)."""
    app.extensions[ON_SERVE].append(start)


def start_background(app: Flask) -> None:
    for start in app.extensions[ON_SERVE]:
        start()


def create_app(service: str, blueprints: Iterable[Blueprint], site: Site | None = None, *,
               public: Rule = lambda method, path: False, expired_ok: Rule = lambda method, path: False) -> Flask:
    """A service app with `blueprints`, for `site` (default: the site file of the environment). Every route needs
    a valid token of a registered application, with the scope the site names for the service and the request's kind
    (common/scopes.py), unless `public(method, path)` says otherwise; `expired_ok(method, path)` accepts an expired (but
    otherwise valid) token, for internal routes that finish work the user asked for earlier."""
    site = site or load()
    app = Flask(service)
    app.config["MAX_CONTENT_LENGTH"] = site.limits.max_file_size_mb * 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions.update({SITE: site, REMOTE: Remote(site), ON_SERVE: []})
    validator = TokenValidator(site.auth)
    metrics.instrument(app, site)  # GET /metrics, and every request counted and timed
    on_serve(app, metrics.watch_threads)

    @app.before_request
    def _begin() -> None:
        g.start = time.perf_counter()
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if REQUEST_ID.match(rid) else uuid.uuid4().hex
        if not public(request.method, request.path) and not metrics.is_scrape():
            token = bearer(request.headers.get("Authorization"))
            g.identity = validator.validate(token, allow_expired=expired_ok(request.method, request.path))
            check_scope(site.auth, service, request.method, g.identity.claims)

    app.after_request(_access_log(service))
    _error_handlers(app)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


def _access_log(service: str) -> Callable[[Response], Response]:
    def _end(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id()
        ident = g.get("identity")
        log.info(json.dumps({
            "service": service,
            "request_id": request_id(),
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": round((time.perf_counter() - g.get("start", time.perf_counter())) * 1000, 2),
            "user": ident.username if ident else None,
        }))
        return response

    return _end


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(FirecrestError)
    def _firecrest_error(err: FirecrestError) -> tuple[Any, int, dict[str, str]]:
        body, status, headers = to_response(err)
        return jsonify(body), status, headers

    @app.errorhandler(413)
    def _too_large(err: HTTPException) -> tuple[Any, int]:
        limit = app.config["MAX_CONTENT_LENGTH"]
        # Read (a bounded part of) what the client is still sending: closing on an unread body can reset the
        # connection before the client (or the gateway) sees this answer.
        stream, left = request.environ.get("wsgi.input"), 4 * limit
        while stream is not None and left > 0 and (chunk := stream.read(min(65536, left))):
            left -= len(chunk)
        return jsonify({"description": f"Failed to upload file. The file is over {limit} bytes"}), 413

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Any, int]:
        return jsonify({"description": err.description or err.name}), err.code or 500

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> tuple[Any, int]:
        # Never a stack trace to the client; the log has it, with the request id to find it.
        app.logger.exception("request %s failed", request_id())
        return jsonify({"description": "Internal error", "request_id": request_id()}), 500

