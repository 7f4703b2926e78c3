"""The site's second system, `cluster2`: a Slurm cluster of its own (its slurmctld, slurmd, cluster name and
partitions) and its own login node (a second sshd with its own port, host key, user CA, ForceCommand wrapper,
audit collector and SLURM_CONF). It shares with the first what sites share: munge, the accounting daemon
(slurmdbd and MariaDB keep each cluster's jobs apart by cluster name), the users and /home and /scratch.

Each login node trusts only its own system's user CA, and the certificator signs with the CA of the system asked
for (`ca_key` of the system in the site file), so a certificate for one system is refused by the other."""

from __future__ import annotations

from .login import LoginNode
from .slurm import Slurm

SYSTEM = "cluster2"  # the system's name in the site file, its Slurm cluster name, and its components' prefix


class Cluster2(Slurm):
    name = SYSTEM
    cluster = SYSTEM
    node = "node2"  # its own node name: its jobs run there, under a slurmd of their own
    default_partition = "debug"
    prefix = f"{SYSTEM}-"
    runs_dbd = False  # reports to the first cluster's slurmdbd (`sacctmgr add cluster` in configure)

    def env(self) -> dict[str, str]:
        return {f"SLURM_CONF_{SYSTEM.upper()}": str(self.conf)}


class Login2(LoginNode):
    name = "login2"
    prefix = f"{SYSTEM}-"
    slurm = SYSTEM
    system = SYSTEM

    def env(self) -> dict[str, str]:
        return {f"FIRECREST_SSH_PORT_{SYSTEM.upper()}": str(self.port)}
