"""Run a command on a system as the current request's caller (the services' one entry to the cluster)."""

from __future__ import annotations

import functools

from .app import identity, request_id
from .commands import Command, T
from .config import site
from .ssh import CertificatorClient, SSHPool


@functools.cache
def pool() -> SSHPool:
    """This process's pool (created after gunicorn forks, on first use)."""
    s = site()
    return SSHPool(s, CertificatorClient(s.service_urls["certificator"], s.service_token))


def run(system: str, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T:
    return pool().run(site().systems[system], identity(), command, request_id(), stdin=stdin, max_output=max_output)
