"""A FirecREST v1 client for the tests: one user, one service prefix, one system (sent as X-Machine-Name), and
task polling as pyfirecrest does it."""

from __future__ import annotations

import time
import uuid

import requests

MACHINE = "cluster"  # the site's first system; tests/conftest.py `Site.systems` lists them all
OWN = "<the client's own system>"  # a request's default: the system the client was made for




class Api:
    def __init__(self, site, user: str, service: str, machine: str = MACHINE) -> None:
        self.site, self.user, self.service, self.machine = site, user, service, machine
        self.base = f"{site.env['FIRECREST_URL']}/{service}"
        self.calls: list[tuple[str, int]] = []

    def request(self, method: str, path: str, *, params: dict | None = None, data: dict | bytes | None = None,
                files: dict | None = None, machine: str | None = OWN, headers: dict | None = None,
                timeout: float = 30) -> requests.Response:
        """`machine`: the X-Machine-Name to send (None: none); by default the client's own system."""
        machine = self.machine if machine == OWN else machine
        rid = (headers or {}).get("X-Request-ID") or f"t-{uuid.uuid4().hex[:20]}"
        sent = {"Authorization": f"Bearer {self.site.token(self.user)}", "X-Request-ID": rid}
        if machine is not None:
            sent["X-Machine-Name"] = machine
        sent.update(headers or {})
        response = requests.request(method, self.base + path, params=params, data=data, files=files, headers=sent,
                                    timeout=timeout)
        self.calls.append((rid, response.status_code))  # for checks against the login node's audit log
        return response

    def get(self, path: str, machine: str | None = OWN, **params: object) -> requests.Response:
        return self.request("GET", path, params=params, machine=machine)

    def post(self, path: str, files: dict | None = None, machine: str | None = OWN,
             **form: object) -> requests.Response:
        return self.request("POST", path, data=form, files=files, machine=machine)

    def put(self, path: str, machine: str | None = OWN, **form: object) -> requests.Response:
        return self.request("PUT", path, data=form, machine=machine)

    def delete(self, path: str, machine: str | None = OWN, **form: object) -> requests.Response:
        return self.request("DELETE", path, data=form, machine=machine)

    def on(self, machine: str) -> Api:
        """The same user and service on another system."""
        return Api(self.site, self.user, self.service, machine)

    def task(self, task_id: str) -> dict:
        reply = requests.get(f"{self.site.env['FIRECREST_URL']}/tasks", params={"tasks": task_id}, timeout=30,
                             headers={"Authorization": f"Bearer {self.site.token(self.user)}"})
        assert reply.status_code == 200, reply.text
        return reply.json()["tasks"][task_id]

    def wait(self, task_id: str, timeout: float = 60, until: str = "200") -> dict:
        """Poll like pyfirecrest until the (string) status reaches `until` or beyond."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.task(task_id)
            if task["status"] >= until or time.monotonic() > deadline:
                return task
            time.sleep(0.05)

    def started(self, reply: requests.Response, status: int = 200) -> str:
        assert reply.status_code == status, reply.text
        body = reply.json()
        assert body["success"] == "Task created" and body["task_url"] == f"/tasks/{body['task_id']}"
        return body["task_id"]

    def outcome(self, reply: requests.Response, status: int = 200, timeout: float = 60) -> dict:
        """Start a task and wait for its end."""
        return self.wait(self.started(reply, status), timeout)
