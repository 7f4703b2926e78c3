"""The cluster as the services reach it: commands run as a user, on a system. The one entry to the cluster.

A `Remote` is built once per service process (by `create_app`) and passed to whatever runs commands: the routes
get it through `common.app.run`, background work through the engine. Nothing here knows about requests."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from .auth import Identity
from .commands import Command, T
from .config import Site
from .ssh import CertificatorClient, Feed, SSHPool


class Remote:
    """Connections are opened on first use (after gunicorn forks), pooled per (system, user)."""

    def __init__(self, site: Site, pool: SSHPool | None = None) -> None:
        self.site = site
        self.pool = pool or SSHPool(site, CertificatorClient(site.service_urls.get("certificator", ""),
                                                             site.service_token))

    def run(self, user: Identity, system: str, command: Command[T], rid: str = "", stdin: bytes | None = None,
            max_output: int | None = None) -> T:
        return self.pool.run(self.site.systems[system], user, command, rid, stdin=stdin, max_output=max_output)

    def feed(self, user: Identity, system: str, command: Command[T],
             rid: str = "") -> AbstractContextManager[Feed[T]]:
        """Start `command` as `user` and write its input while it runs (see SSHPool.feed)."""
        return self.pool.feed(self.site.systems[system], user, command, rid)

    def on(self, user: Identity, system: str, rid: str = "") -> UserOnSystem:
        return UserOnSystem(self, user, system, rid)


@dataclass(frozen=True)
class UserOnSystem:
    """One user's commands on one system, tagged with the request id they serve (a request's or a task's)."""

    remote: Remote
    user: Identity
    system: str
    request_id: str = ""

    def run(self, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T:
        return self.remote.run(self.user, self.system, command, self.request_id, stdin=stdin,
                               max_output=max_output)

    def feed(self, command: Command[T]) -> AbstractContextManager[Feed[T]]:
        return self.remote.feed(self.user, self.system, command, self.request_id)
