"""The embedded site's second system as components: started after what it shares, stopped before it, its own
ports, daemons, pid files and state inside the stack dir (so `down --purge` removes it), and the first cluster's
slurm.conf rendered as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from stack.components import PORTS, all_components  # noqa: E402
from stack.components.cluster2 import Cluster2, Login2  # noqa: E402
from stack.components.login import LoginNode  # noqa: E402
from stack.components.slurm import CLUSTER, Slurm  # noqa: E402
from stack.core import Stack, render  # noqa: E402


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(tmp_path / "stack")


def test_the_second_system_starts_after_what_it_shares_and_stops_before_it(stack):
    names = [c.name for c in all_components(stack)]
    assert names.index("slurm") < names.index("cluster2") < names.index("login") < names.index("login2")
    assert names.index("login2") < names.index("services")  # `down` goes in reverse: services first


def test_its_ports_daemons_and_state_are_its_own(stack):
    assert len(set(PORTS.values())) == len(PORTS)
    assert Cluster2(stack).ports() == [6827, 6828] and Login2(stack).ports() == [2223]
    assert Slurm(stack).ports() == [6819, 6817, 6818] and LoginNode(stack).ports() == [2222]
    first = [d for c in (Slurm(stack), LoginNode(stack)) for d in c.daemons()]
    second = [d for c in (Cluster2(stack), Login2(stack)) for d in c.daemons()]
    assert [d.name for d in second] == ["cluster2-slurmctld", "cluster2-slurmd", "cluster2-audit-collector",
                                        "cluster2-sshd"]
    assert not {d.pidfile for d in first} & {d.pidfile for d in second}
    assert all(d.pidfile.is_relative_to(stack.dir) for d in second)
    assert Login2(stack).ca_key == stack.path("ca", "cluster2-user_ca") != LoginNode(stack).ca_key
    assert Login2(stack).audit_log == stack.path("log", "cluster2-audit.log")


def values(cluster: Slurm) -> dict[str, object]:
    return {"CLUSTER_NAME": cluster.cluster, "NODE_NAME": cluster.node, "DEFAULT_PARTITION": cluster.default_partition,
            "SLURMCTLD_PORT": cluster.port("slurmctld"), "SLURMD_PORT": cluster.port("slurmd"), "SLURMDBD_PORT": 6819,
            "MUNGE_SOCKET": "/m", "STATE": "/s", "RUN": "/r", "LOG": "/l", "REAL_MEMORY": 1000,
            "FIRST_JOB_ID": 1}


def test_each_cluster_renders_its_own_name_node_and_partitions(stack, tmp_path):
    render(CLUSTER / "slurm.conf.in", tmp_path / "one.conf", values(Slurm(stack)))
    render(CLUSTER / "slurm.conf.in", tmp_path / "two.conf", values(Cluster2(stack)))
    one, two = (tmp_path / "one.conf").read_text(), (tmp_path / "two.conf").read_text()
    assert "ClusterName=firecrest\n" in one and "ClusterName=cluster2\n" in two
    assert "NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 State=UNKNOWN\n" in one
    assert "PartitionName=normal Nodes=localhost Default=YES MaxTime=1-00:00:00 State=UP\n" in one
    assert "PartitionName=xfer Nodes=localhost Default=NO MaxTime=1-00:00:00 State=UP\n" in one
    assert "PartitionName=debug Nodes=node2 Default=YES" in two and "PartitionName=xfer Nodes=node2" in two
    assert "SlurmctldPort=6827\nSlurmdPort=6828\n" in two and "AccountingStoragePort=6819\n" in two


def test_the_first_job_id_is_past_every_job_slurmctld_accepted(tmp_path):
    """After a crash slurmctld must not give again an id it handed out (a job it forgot may still run): the floor
    is past every job its log shows it accepted, whatever other ids a line names (a client may ask about any)."""
    log = tmp_path / "slurmctld.log"
    assert Slurm.first_job_id(log) == 1  # a new site
    log.write_text(
        "[2026-12-06T17:55:20.496] _slurm_rpc_submit_batch_job: JobId=27628 InitPrio=4294877752 usec=355\n"
        "[2026-12-06T17:55:20.802] sched: _slurm_rpc_allocate_resources JobId=27631 NodeList=(null) usec=535\n"
        "[2026-12-06T17:55:21.000] _slurm_rpc_kill_job: REQUEST_KILL_JOB JobId=99999999999 uid 1001\n"
        "[2026-12-06T17:55:21.010] error: name=x _slurm_rpc_submit_batch_job: JobId=66000000 (a user's text)\n"
        "[2026-12-06T17:55:21.042] _slurm_rpc_submit_batch_job: JobId=27630 InitPrio=4294877748 usec=370\n")
    assert Slurm.first_job_id(log) == 27632
