"""The services' client of the tasks service (they never touch Redis themselves).

What a service needs to resume a task after a restart travels in the task's private part, sealed with a key
derived from the services' credential: the task store (and its disk files) never holds a user's token in clear.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from typing import Any

import requests
from cryptography.fernet import Fernet, InvalidToken

from .auth import Identity
from .config import Site
from .errors import FirecrestError, Unavailable

RETRY_STATUSES = (502, 503, 504)


class TaskGone(Exception):
    """The task no longer exists (expired, or deleted by its owner): its outcome has nowhere to go."""


class LeaseLost(TaskGone):
    """The lease ran out and another process holds the task now: leave it (and what it staged) to that one."""


class OutcomeTooLarge(FirecrestError):
    """The task store refused an outcome for its size: the task should end saying so, not be retried."""


class Sealer:
    """Seals a task's private part with a key derived from the services' credential."""

    def __init__(self, service_token: str) -> None:
        digest = hashlib.sha256(b"firecrest task private part\0" + service_token.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def unseal(self, value: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._fernet.decrypt(value.encode()))
        except (InvalidToken, ValueError):
            return None


class TasksClient:
    def __init__(self, url: str, service_token: str) -> None:
        self.url = url.rstrip("/")
        self.service_token = service_token
        self.sealer = Sealer(service_token)
        self._local = threading.local()

    @classmethod
    def of(cls, site: Site) -> TasksClient:
        return cls(site.service_urls.get("tasks", ""), site.service_token)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def release(self) -> None:
        """Close this thread's connection (a pool thread about to idle: see engine.Pool)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            self._local.session = None
            session.close()

    def _call(self, method: str, path: str, token: str | None, payload: dict[str, Any],
              patience_s: float = 0) -> requests.Response:
        """One internal call; with `patience_s`, retried while the tasks service or its Redis is down."""
        headers = {"X-Firecrest-Service-Token": self.service_token}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        deadline, pause = time.monotonic() + patience_s, 0.05
        while True:
            try:
                reply = self._session().request(method, self.url + path, json=payload, headers=headers, timeout=10)
                if reply.status_code not in RETRY_STATUSES:
                    return reply
                problem = f"tasks service answered {reply.status_code}"
            except requests.RequestException as e:
                problem = f"tasks service unreachable: {e.__class__.__name__}"
            if time.monotonic() + pause > deadline:
                raise Unavailable(problem, "Task store unavailable")
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def create(self, user: Identity, service: str, system: str | None, private: dict[str, Any] | None = None,
               lease_s: float | None = None, data: Any = "Queued", holder: str | None = None,
               task_id: str | None = None) -> str:
        payload = {"service": service, "system": system, "data": data, "lease_s": lease_s, "holder": holder,
                   "private": self.sealer.seal(private) if private is not None else None}
        if task_id:
            payload["task_id"] = task_id
        reply = self._call("POST", "/", user.token, payload, patience_s=2)
        if reply.status_code != 201:
            raise FirecrestError(_error(reply), "Error creating task")
        return reply.json()["hash_id"]

    def update(self, token: str, task_id: str, status: str, data: Any = None, lease_s: float | None = None,
               patience_s: float = 120, holder: str | None = None) -> None:
        """Record progress or an outcome; waits out a restart of the tasks service or Redis."""
        reply = self._call("PUT", f"/{task_id}", token,
                           {"status": status, "data": data, "lease_s": lease_s, "holder": holder}, patience_s)
        if reply.status_code == 409:
            raise LeaseLost(f"task {task_id}: held by another process now")
        if reply.status_code in (403, 404):
            raise TaskGone(f"task {task_id}: {_error(reply)}")
        if reply.status_code == 413:
            raise OutcomeTooLarge(f"The result is too large to keep in a task ({len(json.dumps(data))} bytes)")
        if reply.status_code != 200:
            raise FirecrestError(_error(reply), "Error updating task")

    def renew(self, token: str, task_id: str, lease_s: float, holder: str | None = None) -> None:
        """Keep the lease of a task whose work goes on (raises TaskGone when it was deleted or finished, LeaseLost
        when another process holds it now)."""
        reply = self._call("PUT", f"/{task_id}", token, {"lease_s": lease_s, "holder": holder}, patience_s=5)
        if reply.status_code == 409:
            raise LeaseLost(f"task {task_id}: held by another process now")
        if reply.status_code in (403, 404):
            raise TaskGone(f"task {task_id}: {_error(reply)}")
        if reply.status_code != 200:
            raise FirecrestError(_error(reply), "Error updating task")

    def create_held(self, user: Identity, service: str, system: str, private: dict[str, Any],
                    lease_s: float, task_id: str | None = None) -> tuple[str, str]:
        """A task whose work is `private`, leased to this process under a fresh holder name: (task id, holder)."""
        holder = secrets.token_hex(8)
        return self.create(user, service, system, private=private, lease_s=lease_s, holder=holder,
                           task_id=task_id), holder

    def get(self, token: str, task_id: str) -> dict[str, Any] | None:
        """The task as its owner sees it; None when it does not exist or is another user's."""
        reply = self._call("GET", f"/{task_id}", token, {}, patience_s=2)
        if reply.status_code in (400, 403, 404):
            return None
        if reply.status_code != 200:
            raise FirecrestError(_error(reply), "Error reading task")
        return reply.json()["task"]

    def unfinished(self, token: str, service: str) -> dict[str, dict[str, Any]]:
        """The token's user's unfinished tasks of `service`, by id (a storage service counts the user's transfers in
        flight)."""
        reply = self._call("GET", f"/unfinished/{service}", token, {}, patience_s=2)
        if reply.status_code != 200:
            raise FirecrestError(_error(reply), "Error reading tasks")
        return reply.json()["tasks"]

    def delete(self, token: str, task_id: str) -> None:
        reply = self._call("DELETE", f"/{task_id}", token, {}, patience_s=2)
        if reply.status_code not in (204, 403, 404):
            raise FirecrestError(_error(reply), "Error deleting task")

    def claim(self, service: str, lease_s: float,
              limit: int = 20) -> tuple[str, list[tuple[dict[str, Any], dict | None]]]:
        """Unfinished tasks of `service` whose owning process died, with their unsealed private parts, leased to this
        process under a fresh holder name: (holder, tasks)."""
        holder = secrets.token_hex(8)
        reply = self._call("POST", "/claim", None,
                           {"service": service, "lease_s": lease_s, "limit": limit, "holder": holder})
        if reply.status_code != 200:
            raise Unavailable(_error(reply), "Task store unavailable")
        tasks = reply.json()["tasks"]
        return holder, [(t["task"], self.sealer.unseal(t["private"]) if t["private"] else None) for t in tasks]

    # Idempotency keys (tasks/idempotency_routes.py); the store's answer is passed on as it is.

    def reserve_key(self, token: str, key: str, fingerprint: str) -> dict[str, Any]:
        """{state: new, nonce} | {state: hit, reply} | {state: in_flight, retry_after} | {state: mismatch}."""
        reply = self._call("POST", "/idempotency/reservation", token, {"key": key, "fingerprint": fingerprint},
                           patience_s=2)
        if reply.status_code != 200:
            raise Unavailable(_error(reply), "Idempotency key store unavailable")
        return reply.json()

    def complete_key(self, token: str, key: str, nonce: str, recorded: dict[str, Any]) -> bool:
        """Record the first reply under the key; False when the reservation was lost meanwhile."""
        reply = self._call("PUT", "/idempotency/reply", token, {"key": key, "nonce": nonce, "reply": recorded},
                           patience_s=10)
        if reply.status_code not in (204, 409):
            raise Unavailable(_error(reply), "Idempotency key store unavailable")
        return reply.status_code == 204

    def release_key(self, token: str, key: str, nonce: str) -> None:
        reply = self._call("DELETE", "/idempotency/reservation", token, {"key": key, "nonce": nonce}, patience_s=5)
        if reply.status_code != 204:
            raise Unavailable(_error(reply), "Idempotency key store unavailable")

    def claim_job_polls(self, holder: str, lease_s: float, limit: int) -> list[dict[str, Any]]:
        """(system, user) whose jobs have stream listeners and are due for a poll, now held by `holder` for
        `lease_s`: each with the listeners' token (sealed) and the jobs' last published states (`known`)."""
        reply = self._call("POST", "/events/jobs/claim", None, {"holder": holder, "lease_s": lease_s, "limit": limit})
        if reply.status_code != 200:
            raise Unavailable(_error(reply), "Task store unavailable")
        return reply.json()["polls"]

    def publish_jobs(self, token: str, system: str, holder: str, jobs: dict[str, dict[str, Any]],
                     gone: list[str], next_poll_s: float) -> int | None:
        """Compare and publish what a poll saw of the token's user's jobs; None when `holder` no longer holds the
        poll (another process took it over: what this one saw is dropped)."""
        reply = self._call("POST", "/events/jobs/publish", token, {
            "system": system, "holder": holder, "jobs": jobs, "gone": gone, "next_poll_s": next_poll_s}, patience_s=2)
        if reply.status_code == 409:
            return None
        if reply.status_code != 200:
            raise FirecrestError(_error(reply), "Error publishing job events")
        return int(reply.json()["published"])


def _error(reply: requests.Response) -> str:
    try:
        body = reply.json()
        return str(body.get("error") or body.get("description") or reply.status_code)
    except ValueError:
        return f"HTTP {reply.status_code}"

