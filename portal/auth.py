"""Sign-in and sign-out routes, and the session's tokens (held server side; the browser has only a session id)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import jwt
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from . import oidc

routes = Blueprint("auth", __name__, url_prefix="/auth")
F = TypeVar("F", bound=Callable[..., Any])
PENDING_KEPT = 5  # sign-ins started and not yet back from Keycloak


def provider() -> oidc.Provider:
    return cast(oidc.Provider, current_app.extensions["portal.provider"])


def _jwks() -> jwt.PyJWKClient:
    return cast(jwt.PyJWKClient, current_app.extensions["portal.jwks"])


def base_url() -> str:
    """The portal's own address as the browser sees it: configured, so a forged Host header cannot move it."""
    return (os.environ.get("FIRECREST_PORTAL_URL") or request.host_url).rstrip("/")


def current_user() -> str:
    """The signed-in user's name ('' when nobody is signed in)."""
    return str(session.get("user", ""))


def access_token() -> str:
    """The session's access token, refreshed first when it is about to expire."""
    tokens = session.get("tokens")
    if not tokens:
        raise oidc.SignInRequired("not signed in")
    if oidc.needs_refresh(tokens):
        try:
            tokens = oidc.refresh(provider(), tokens, _jwks())
        except oidc.SignInRequired:
            session.clear()
            raise
        session["tokens"] = tokens
    return str(tokens["access_token"])


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("tokens"):
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _safe_next(value: str | None) -> str:
    """Only a path on this portal (no scheme, no host, no '//'): the sign-in is no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return url_for("pages.systems")
    parts = urlsplit(value)
    return url_for("pages.systems") if parts.scheme or parts.netloc else value


@routes.get("/login")
def login() -> Response:
    url, pending = oidc.start(provider(), base_url() + url_for("auth.callback"))
    # Keyed by state, a few at once: sign-ins started in two tabs both complete.
    started = dict(list((session.get("pending") or {}).items())[-(PENDING_KEPT - 1):])
    started[pending["state"]] = {**pending, "next": _safe_next(request.args.get("next"))}
    session["pending"] = started
    return redirect(url)


@routes.get("/callback")
def callback() -> Any:
    started = dict(session.get("pending") or {})
    pending = started.pop(request.args.get("state", ""), {})
    session["pending"] = started  # each state is used once
    if request.args.get("error"):
        error = request.args.get("error_description") or request.args["error"]
        return render_template("signin_failed.html", reason=f"Keycloak: {error}"), 400
    try:
        tokens, claims = oidc.exchange(provider(), pending, request.args.get("code", ""),
                                       request.args.get("state", ""), _jwks())
    except oidc.SignInFailed as e:
        return render_template("signin_failed.html", reason=str(e)), 400
    session.clear()
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]  # a new id after sign-in
    if started:
        session["pending"] = started  # another tab's sign-in may still come back
    session["tokens"] = tokens
    session["user"] = claims.get("preferred_username") or claims["sub"]
    return redirect(_safe_next(pending.get("next")))


@routes.post("/logout")
def logout() -> Response:
    id_token = (session.get("tokens") or {}).get("id_token", "")
    session.clear()
    return redirect(oidc.logout_url(provider(), id_token, base_url() + url_for("auth.signed_out")))


@routes.get("/signed-out")
def signed_out() -> str:
    return render_template("signed_out.html")
