"""The portal's Flask app: server-side sessions, CSRF checks, error pages, and the pages' blueprints."""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cachelib.file import FileSystemCache
from flask import Flask, redirect, render_template, request, session, url_for
from flask_session import Session  # type: ignore[import-untyped]  # no py.typed
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import auth, oidc
from .api import ApiError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_UPLOAD = 64 * 1024 * 1024  # bytes: small files go through the portal; large ones go to Swift directly
# Scripts only from the portal's own files (no inline script); XHR may reach the object store's temp URLs.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' http: https:;"
       " object-src 'none'; base-uri 'self'; frame-ancestors 'none'")


def csrf_token() -> str:
    """The session's anti-forgery token, sent back with every state-changing request."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def _check_csrf() -> Response | tuple[str, int] | None:
    if request.method not in UNSAFE_METHODS:
        return None
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        return render_template("error.html", title="Request refused",
                               message="The form was stale or did not come from this portal: reload the page "
                                       "and try again."), 400
    return None


def _state_dir() -> Path:
    """Where the sessions live (the stack sets it; a bare `create()` uses a private folder of the temp dir)."""
    default = Path(tempfile.gettempdir()) / f"firecrest-portal-{os.getuid()}"
    return Path(os.environ.get("FIRECREST_PORTAL_STATE_DIR") or default)


def _configure(app: Flask) -> None:
    sessions = _state_dir() / "sessions"
    sessions.mkdir(mode=0o700, parents=True, exist_ok=True)
    app.config.update(
        # The stack passes a secret; a bare `create()` (tests, a developer's shell) gets a fresh one per process.
        SECRET_KEY=os.environ.get("FIRECREST_PORTAL_SECRET_KEY") or secrets.token_hex(32),
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(str(sessions), threshold=2000, mode=0o600),
        SESSION_PERMANENT=False,  # the cookie ends with the browser; the stored session after the lifetime
        PERMANENT_SESSION_LIFETIME=timedelta(hours=10),  # Keycloak's SSO session's longest life
        SESSION_KEY_PREFIX="portal:",
        SESSION_COOKIE_NAME="firecrest_portal",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("FIRECREST_PORTAL_URL", "").startswith("https:"),
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
    )
    Session(app)
    provider = oidc.Provider.from_env()
    app.extensions["portal.provider"] = provider
    app.extensions["portal.jwks"] = jwt.PyJWKClient(provider.endpoint("certs"), cache_keys=True, lifespan=300)


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(e: ApiError) -> tuple[str, int]:
        return render_template("error.html", title="The API refused", error=e), e.status

    @app.errorhandler(oidc.SignInRequired)
    def sign_in_required(_: oidc.SignInRequired) -> Any:
        if request.method == "GET" and not request.accept_mimetypes.accept_json:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return {"description": "sign in again"}, 401

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> tuple[str, int]:
        return render_template("error.html", title=f"{e.code} {e.name}", message=e.description), e.code or 500

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> tuple[str, int]:
        app.logger.exception("unexpected error")
        return render_template("error.html", title="Something went wrong",
                               message="The portal hit an unexpected error; it is logged. Try again."), 500


def create() -> Flask:
    from . import jobs, pages, transfers

    app = Flask(__name__)
    _configure(app)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = auth.current_user
    app.before_request(_check_csrf)

    @app.after_request
    def security_headers(r: Response) -> Response:
        r.headers.setdefault("Content-Security-Policy", CSP)
        r.headers.setdefault("X-Content-Type-Options", "nosniff")
        r.headers.setdefault("Referrer-Policy", "same-origin")
        r.headers.setdefault("Cache-Control", "no-store")
        return r

    _error_handlers(app)
    for module in (auth, pages, jobs, transfers):
        app.register_blueprint(module.routes)
    app.add_url_rule("/", "index", lambda: redirect(url_for("pages.systems")))
    return app
