"""Health checks, run as the caller and cached briefly per user (never shared across users)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests

from common.commands import PathExists, SlurmPing, Whoami
from common.config import System
from common.errors import FirecrestError, MachineNotAvailable
from common.remote import UserOnSystem

T = TypeVar("T")
CACHE_SECONDS = 10.0


class UserCache:
    """Results keyed by (user, what): a check made with alice's credentials is never shown to bob."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, user: str, key: str, compute: Callable[[], T], refresh: bool = False) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get((user, key))
            if hit and hit[0] > now and not refresh:
                return hit[1]
            if len(self._data) > 10_000:  # bounded: drop what has expired
                self._data = {k: v for k, v in self._data.items() if v[0] > now}
        value = compute()
        with self._lock:
            self._data[(user, key)] = (now + self.ttl, value)
        return value


class Services:
    """The other services' /status, asked with the caller's token (and, of the certificator, with the services'
    credential: it answers nothing without it)."""

    def __init__(self, urls: dict[str, str], service_token: str) -> None:
        self.urls, self.service_token = urls, service_token
        self.http = requests.Session()

    def one(self, name: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
        if name == "certificator":
            headers = {**headers, "X-Firecrest-Service-Token": self.service_token}
        try:
            response = self.http.get(f"{url}/status", headers=headers, timeout=5)
        except requests.RequestException:
            return {"service": name, "status": "not available", "status_code": 400, "description": "server down"}
        if response.status_code == 200:
            return {"service": name, "status": "available", "status_code": 200, "description": "server up"}
        description = "unauthorized" if response.status_code == 401 else "server up, service failing"
        return {"service": name, "status": "not available", "status_code": response.status_code,
                "description": description}

    def all(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        targets = {n: u for n, u in self.urls.items() if n != "status"}
        with ThreadPoolExecutor(max(1, len(targets)), thread_name_prefix="status-check") as pool:
            return list(pool.map(lambda item: self.one(item[0], item[1], headers), targets.items()))


def each(checks: list[Callable[[], T]]) -> list[T]:
    """Run the checks of several systems at once, in order: a system that does not answer (a connect timeout)
    delays the answer by its own timeout, not by the sum of every system's."""
    if len(checks) < 2:
        return [check() for check in checks]
    with ThreadPoolExecutor(len(checks), thread_name_prefix="status-check") as pool:
        return list(pool.map(lambda check: check(), checks))


def system(s: System, caller: UserOnSystem, with_filesystems: bool = False) -> dict[str, Any]:
    """A real SSH command as the caller, then a Slurm ping; a down system fails at the connect timeout."""
    try:
        caller.run(Whoami())
    except MachineNotAvailable:
        return {"system": s.name, "status": "not available", "description": "System does not accept connections"}
    except FirecrestError as e:
        return {"system": s.name, "status": "not available", "description": f"System refused the check: {e.error}"}
    try:
        slurm_up = caller.run(SlurmPing())
    except FirecrestError:
        slurm_up = False
    if not slurm_up:
        return {"system": s.name, "status": "not available", "description": "Scheduler (Slurm) is not responding"}
    description = "System ready"
    if with_filesystems:
        down = [fs["path"] for fs in filesystems(s, caller) if fs["status_code"] != 200]
        if down:
            description = f"Filesystem {','.join(down)} is not available"
    return {"system": s.name, "status": "available", "description": description}


def filesystems(s: System, caller: UserOnSystem) -> list[dict[str, Any]]:
    """`caller`: the caller on `s`."""
    result = []
    for fs in s.filesystems:
        try:
            ok = caller.run(PathExists(fs.path))
        except FirecrestError:
            ok = False
        result.append({"name": fs.path.strip("/") or "/", "path": fs.path, "description": fs.description,
                       "status_code": 200 if ok else 400, "status": "available" if ok else "not available"})
    return result
