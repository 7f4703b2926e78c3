"""Routes of the utilities service (public prefix /utilities): parse, call, shape."""

from __future__ import annotations

from flask import Flask, jsonify, request

from common.app import create_app, machine
from common.commands import Groups, Whoami
from common.remote import run

TRUE = ("true", "1", "yes", "on")


def create() -> Flask:
    app = create_app("utilities")

    @app.get("/whoami")
    def whoami():  # noqa: ANN202
        system = machine("whoami")
        command = Groups() if request.args.get("groups", "false").lower() in TRUE else Whoami()
        output = run(system, command)
        return jsonify({"description": "User information", "output": output})

    @app.get("/status")
    def status():  # noqa: ANN202
        return jsonify({"success": "ack"})

    return app


app = create()
