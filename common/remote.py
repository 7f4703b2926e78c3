"""Run a command on a system as a user: the services' one entry to the cluster."""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager

from .app import identity, request_id
from .auth import Identity
from .commands import Command, T
from .config import site
from .ssh import CertificatorClient, Feed, SSHPool


@functools.cache
def pool() -> SSHPool:
    """This process's pool (created after gunicorn forks, on first use)."""
    s = site()
    return SSHPool(s, CertificatorClient(s.service_urls["certificator"], s.service_token))


def run_as(user: Identity, system: str, command: Command[T], rid: str = "", stdin: bytes | None = None,
           max_output: int | None = None) -> T:
    """As `user`, outside a request too (background work of a task)."""
    return pool().run(site().systems[system], user, command, rid, stdin=stdin, max_output=max_output)


def run(system: str, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T:
    """As the current request's caller."""
    return run_as(identity(), system, command, request_id(), stdin=stdin, max_output=max_output)


def feed_as(user: Identity, system: str, command: Command[T], rid: str = "") -> AbstractContextManager[Feed[T]]:
    """Start `command` as `user` and write its input while it runs (see SSHPool.feed)."""
    return pool().feed(site().systems[system], user, command, rid)
