"""Routes of the status service (public prefix /status): parse, call, shape."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from common.app import create_app, identity, request_id
from common.config import API_VERSION, VERSION, site

from . import checks


def _refresh() -> bool:
    return "no-cache" in request.headers.get("Cache-Control", "")


def _system_or_404(name: str) -> Any:
    system = site().systems.get(name)
    if system is None:
        return None
    user = identity().username
    return checks.cache.get(user, f"system:{name}:full", lambda: checks.system(system, True), _refresh())


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


def create() -> Flask:
    app = create_app("status")

    @app.get("/services")
    def services():  # noqa: ANN202
        headers = {"Authorization": request.headers["Authorization"], "X-Request-ID": request_id()}
        out = checks.cache.get(identity().username, "services", lambda: checks.services(headers), _refresh())
        return jsonify({"description": "List of services with status and description.", "out": out})

    @app.get("/services/<name>")
    def service(name: str):  # noqa: ANN202
        url = site().service_urls.get(name)
        if url is None or name == "status":
            return jsonify({"description": "Service does not exist", "status_code": 404}), 404
        headers = {"Authorization": request.headers["Authorization"], "X-Request-ID": request_id()}
        return jsonify(checks.service(name, url, headers))

    @app.get("/systems")
    def systems():  # noqa: ANN202
        user = identity().username
        out = [checks.cache.get(user, f"system:{s.name}", lambda s=s: checks.system(s), _refresh())
               for s in site().systems.values()]
        return jsonify({"description": "List of systems with status and description.", "out": out})

    @app.get("/systems/<name>")
    @app.get("/system/<name>")  # the seed's name
    def system(name: str):  # noqa: ANN202
        out = _system_or_404(name)
        if out is None:
            return jsonify({"description": "System does not exist."}), 404
        return jsonify({"description": "System information", "out": out})

    @app.get("/filesystems")
    def filesystems():  # noqa: ANN202
        user = identity().username
        out = {s.name: checks.cache.get(user, f"fs:{s.name}", lambda s=s: checks.filesystems(s), _refresh())
               for s in site().systems.values()}
        return jsonify({"description": "Filesystem information", "out": out})

    @app.get("/filesystems/<name>")
    def filesystems_of(name: str):  # noqa: ANN202
        system = site().systems.get(name)
        if system is None:
            return jsonify({"description": "Filesystem information", "out": f"System '{name}' doesn't exist"}), 404
        out = checks.cache.get(identity().username, f"fs:{name}", lambda: checks.filesystems(system), _refresh())
        return jsonify({"description": f"Filesystem information for system {name}", "out": out})

    @app.get("/parameters")
    def params():  # noqa: ANN202
        return jsonify({"description": "Firecrest's parameters", "out": parameters()})

    return app


app = create()
