"""Keeps users' processes away from the backends that do not authenticate, as a real site's networks would.

On a real site the login and compute nodes sit on networks that cannot reach Swift's storage servers, memcached,
Redis, MariaDB or Keycloak's management port. Here every daemon shares one loopback with the users' SSH commands
and batch jobs, so an nftables table on the output hook does the segmentation by the socket's owner: a backend
port takes connections only from the accounts that serve or use it (and root, which runs the site and its tests).
Anyone else, alice's batch job included, gets a TCP reset, as from a closed port.
"""

from __future__ import annotations

import pwd
import shutil

from ..component import Component
from ..core import SiteError, ok, run, system_user
from . import PORTS
from .services import SERVICE_USER

TABLE = "firecrest_site"

# port -> the accounts that may connect to it (root always may).
BACKENDS: dict[str, tuple[str, ...]] = {
    "swift-object": ("swift",),  # no authentication at all: the proxy alone talks to them
    "swift-container": ("swift",),
    "swift-account": ("swift",),
    "memcached": ("swift",),  # tempauth's tokens live there
    "mariadb": ("slurm",),  # slurmdbd's database
    "redis": (SERVICE_USER,),  # the task store (it has a password too)
    "keycloak-management": (),  # health and metrics: the site's own checks only
    # The services' internal ports: the gateway and the services themselves. Users go through the gateway.
    **{s: ("haproxy", SERVICE_USER) for s in ("certificator", "status", "storage", "tasks", "utilities", "compute")},
}


def ruleset() -> str:
    rules = []
    for name, accounts in BACKENDS.items():
        uids = ", ".join(str(pwd.getpwnam(a).pw_uid) for a in ("root", *accounts))
        rules.append(f"    tcp dport {PORTS[name]} meta skuid != {{ {uids} }} reject with tcp reset")
    body = "\n".join(rules)
    # Declaring then deleting the table makes the file idempotent: loading it replaces the whole table at once.
    return (
        f"table inet {TABLE}\ndelete table inet {TABLE}\n"
        f"table inet {TABLE} {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n"
        f"{body}\n  }}\n}}\n"
    )


class Firewall(Component):
    name = "firewall"

    def prepare(self) -> None:
        if not shutil.which("nft"):
            raise SiteError("nft not found: deploy/local/install installs nftables")
        system_user(SERVICE_USER)  # the others come with their Debian packages
        run(["nft", "-f", "-"], input=ruleset())

    def describe(self) -> list[str]:
        return [f"nftables table inet {TABLE}: backend ports only for their accounts (nft list table inet {TABLE})"]

    def after_stop(self) -> None:
        if ok(["nft", "list", "table", "inet", TABLE]):
            run(["nft", "delete", "table", "inet", TABLE])
