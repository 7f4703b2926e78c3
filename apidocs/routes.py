"""Routes of the API documentation (public prefix /docs, stripped by the gateway): the page, its assets, the spec.
Every URL the page uses is relative, so the same files work at `/docs/` behind the gateway and at `/` directly."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, redirect, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

from .spec import Docs, SpecFile, asset

DOCS = "apidocs.docs"
routes = Blueprint("apidocs", __name__)


def docs() -> Docs:
    source: SpecFile = current_app.extensions[DOCS]
    return source.current()


@routes.get("/")
def index() -> Response:
    return _asset("index.html")


@routes.get("/docs")
def without_slash() -> BaseResponse:
    """The gateway passes `/docs` unstripped (kong.yml): the page's relative URLs need the trailing slash."""
    return redirect("docs/", 301)


@routes.get("/openapi.yaml")
def spec() -> Response:
    return Response(docs().spec_yaml, mimetype="application/yaml")


@routes.get("/<name>")
def static_file(name: str) -> Response:
    return _asset(name)


def _asset(name: str) -> Response:
    found = asset(name)
    if found is None:
        abort(404)
    directory, file = found
    return send_from_directory(directory, file, max_age=300)


@routes.after_app_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = docs().csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
