"""Routes of the status service (public prefix /status): parse, call, shape."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from common.app import identity, remote, request_id, site
from common.config import API_VERSION, VERSION, System
from common.remote import UserOnSystem

from . import checks

CACHE, SERVICES = "status.cache", "status.services"
routes = Blueprint("status", __name__)


def cache() -> checks.UserCache:
    """This app's results, per user (checks.py)."""
    return current_app.extensions[CACHE]


def services_checks() -> checks.Services:
    return current_app.extensions[SERVICES]


def caller(system: System) -> UserOnSystem:
    """The request's caller on `system`: every check runs as them."""
    return remote().on(identity(), system.name, request_id())


def _refresh() -> bool:
    return "no-cache" in request.headers.get("Cache-Control", "")


def _system_or_404(name: str) -> Any:
    system = site().systems.get(name)
    if system is None:
        return None
    user = identity().username
    return cache().get(user, f"system:{name}:full", lambda: checks.system(system, caller(system), True), _refresh())


def parameters() -> dict[str, Any]:
    s = site()

    def entry(name: str, value: Any, unit: str, description: str) -> dict[str, Any]:
        return {"name": name, "value": value, "unit": unit, "description": description}

    return {
        "general": [
            entry("FIRECREST_VERSION", API_VERSION, "", "FirecREST API version this gateway implements"),
            entry("FIRECREST_BUILD", VERSION, "", "Version of this gateway"),
        ],
        "compute": [entry("WORKLOAD_MANAGER", "Slurm", "", "Type of resource and workload manager")],
        "utilities": [
            entry("UTILITIES_MAX_FILE_SIZE", str(s.limits.max_file_size_mb), "MB",
                  "Largest file for view, download and upload through utilities"),
            entry("UTILITIES_TIMEOUT", str(s.limits.command_timeout_s), "seconds",
                  "Time limit of a utilities command"),
        ],
        "storage": [
            entry("OBJECT_STORAGE", "swift", "", "Object storage used for staging transfers"),
            entry("FILESYSTEMS", [{"system": n, "mounted": [f.path for f in sys.filesystems]}
                                  for n, sys in s.systems.items()], "", "Filesystems of each system"),
        ],
    }


@routes.get("/services")
def services() -> Response:
    headers = {"Authorization": request.headers["Authorization"], "X-Request-ID": request_id()}
    out = cache().get(identity().username, "services", lambda: services_checks().all(headers), _refresh())
    return jsonify({"description": "List of services with status and description.", "out": out})


@routes.get("/services/<name>")
def service(name: str) -> Response | tuple[Response, int]:
    url = site().service_urls.get(name)
    if url is None or name == "status":
        return jsonify({"description": "Service does not exist", "status_code": 404}), 404
    headers = {"Authorization": request.headers["Authorization"], "X-Request-ID": request_id()}
    return jsonify(services_checks().one(name, url, headers))


@routes.get("/systems")
def systems() -> Response:
    user, refresh = identity().username, _refresh()
    out = checks.each([partial(cache().get, user, f"system:{s.name}", partial(checks.system, s, caller(s)), refresh)
                       for s in site().systems.values()])
    return jsonify({"description": "List of systems with status and description.", "out": out})


@routes.get("/systems/<name>")
@routes.get("/system/<name>")  # the seed's name
def system(name: str) -> Response | tuple[Response, int]:
    out = _system_or_404(name)
    if out is None:
        return jsonify({"description": "System does not exist."}), 404
    return jsonify({"description": "System information", "out": out})


@routes.get("/filesystems")
def filesystems() -> Response:
    user, refresh = identity().username, _refresh()
    names = list(site().systems)
    out = checks.each([partial(cache().get, user, f"fs:{s.name}", partial(checks.filesystems, s, caller(s)), refresh)
                       for s in site().systems.values()])
    return jsonify({"description": "Filesystem information", "out": dict(zip(names, out, strict=True))})


@routes.get("/filesystems/<name>")
def filesystems_of(name: str) -> Response | tuple[Response, int]:
    system = site().systems.get(name)
    if system is None:
        return jsonify({"description": "Filesystem information", "out": f"System '{name}' doesn't exist"}), 404
    out = cache().get(identity().username, f"fs:{name}", lambda: checks.filesystems(system, caller(system)),
                      _refresh())
    return jsonify({"description": f"Filesystem information for system {name}", "out": out})


@routes.get("/parameters")
def params() -> Response:
    return jsonify({"description": "Firecrest's parameters", "out": parameters()})
