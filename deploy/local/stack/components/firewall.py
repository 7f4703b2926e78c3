"""Keeps users' processes away from the backends that do not authenticate, as a real site's networks would.

On a real site the login and compute nodes sit on networks that cannot reach Swift's storage servers, memcached,
Redis, MariaDB or Keycloak's management port. Here every daemon shares one loopback with the users' SSH commands
and batch jobs, so an nftables table on the output hook does the segmentation by the socket's owner: a backend
port takes connections only from the accounts that serve or use it (and root, which runs the site and its tests).
Anyone else, alice's batch job included, gets a TCP reset, as from a closed port.

Nor may a user's process take a site port while its daemon is down (a restart, a crash): a listener of alice's on
the tasks service's port would receive the services' credential, one on Keycloak's would serve the keys tokens are
checked with. So every site port is made privileged (net.ipv4.ip_unprivileged_port_start above the highest), and
the daemons that run as their own accounts get only CAP_NET_BIND_SERVICE (core.spawn). `down` restores the value.
"""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path

from ..component import Component
from ..core import SiteError, ok, run, system_user, write
from . import PORTS
from .services import SERVICE_USER

TABLE = "firecrest_site"
UNPRIVILEGED_PORT_START = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")

# port -> the accounts that may connect to it (root always may). Not listed, so open to every account: the public
# doors that authenticate every request themselves (the gateway, Keycloak, the web portal, Swift's proxy).
BACKENDS: dict[str, tuple[str, ...]] = {
    "swift-object": ("swift",),  # no authentication at all: the proxy alone talks to them
    "swift-container": ("swift",),
    "swift-account": ("swift",),
    "memcached": ("swift",),  # tempauth's tokens live there
    "mariadb": ("slurm",),  # slurmdbd's database
    "redis": (SERVICE_USER,),  # the task store (it has a password too)
    "keycloak-management": (),  # health and metrics: the site's own checks only
    # The services' internal ports: the gateway and the services themselves. Users go through the gateway.
    **{s: ("haproxy", SERVICE_USER)
       for s in ("certificator", "status", "storage", "tasks", "utilities", "compute", "apidocs")},
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
        saved = self.dir / "ip_unprivileged_port_start"
        if not saved.exists():
            write(saved, UNPRIVILEGED_PORT_START.read_text(), mode=0o600)
        UNPRIVILEGED_PORT_START.write_text(f"{max(PORTS.values()) + 1}\n")

    def describe(self) -> list[str]:
        return [f"nftables table inet {TABLE}: backend ports only for their accounts (nft list table inet {TABLE})"]

    def after_stop(self) -> None:
        if ok(["nft", "list", "table", "inet", TABLE]):
            run(["nft", "delete", "table", "inet", TABLE])
        saved = self.dir / "ip_unprivileged_port_start"
        if saved.exists():
            UNPRIVILEGED_PORT_START.write_text(saved.read_text())
            saved.unlink()
