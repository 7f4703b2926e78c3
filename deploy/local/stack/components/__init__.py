"""The parts of the embedded site, in start order, and the ports they use (all on 127.0.0.1)."""

from __future__ import annotations

from ..component import Component
from ..core import Stack

PORTS = {
    "mariadb": 3307,
    "slurmctld": 6817,
    "slurmd": 6818,
    "slurmdbd": 6819,
    "sshd": 2222,
    # The second system (cluster2.py): its own controller, node and login node.
    "cluster2-slurmctld": 6827,
    "cluster2-slurmd": 6828,
    "cluster2-sshd": 2223,
    "redis": 6380,
    "memcached": 11212,
    "swift-object": 6200,
    "swift-container": 6201,
    "swift-account": 6202,
    "swift-proxy": 8080,
    "keycloak": 8180,
    "keycloak-management": 9180,
    # The gateway and the gateway's services.
    "gateway": 8000,
    "certificator": 5100,
    "status": 5101,
    "storage": 5102,
    "tasks": 5103,
    "utilities": 5104,
    "compute": 5106,
    "apidocs": 5108,  # the API documentation (Swagger UI), published by the gateway at /docs/
    # The web portal (a client of the gateway, like any user's program).
    "portal": 5107,
}


def all_components(stack: Stack) -> list[Component]:
    from . import cluster2, firewall, gateway, keycloak, login, portal, redis, services, slurm, swift, users

    return [
        firewall.Firewall(stack),  # before any backend listens
        keycloak.Keycloak(stack),  # slow to start: runs in the background while the rest comes up
        users.Users(stack),
        slurm.Munge(stack),
        slurm.MariaDB(stack),
        slurm.Slurm(stack),
        cluster2.Cluster2(stack),  # after the first cluster: it reports to that one's slurmdbd
        login.LoginNode(stack),
        cluster2.Login2(stack),
        redis.Redis(stack),
        swift.Swift(stack),
        services.Services(stack),
        gateway.Gateway(stack),
        portal.Portal(stack),  # a client of the gateway
    ]
