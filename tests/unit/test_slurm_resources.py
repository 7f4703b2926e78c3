"""common/slurm/resources.py: nodes, partitions and reservations as scontrol prints them (real Slurm 22.05)."""

from __future__ import annotations

import pytest
from test_slurm_submit import ok, words

from common import errors
from common.slurm import resources

# --- scontrol: nodes, partitions, reservations -----------------------------------------------------------------

NODE = (
    "NodeName=localhost Arch=x86_64 CoresPerSocket=1  CPUAlloc=1 CPUEfctv=8 CPUTot=8 CPULoad=0.16 "
    "AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=127.0.0.1 NodeHostName=localhost "
    "Version=22.05.8 OS=Linux 6.18.44-fc-v657 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=21694 AllocMem=0 FreeMem=22756 "
    "Sockets=8 Boards=1 State=MIXED ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A "
    "Partitions=normal,xfer  BootTime=2026-11-25T03:26:32 SlurmdStartTime=2026-11-25T06:11:33 "
    "LastBusyTime=2026-11-25T06:12:14 CfgTRES=cpu=8,mem=21694M,billing=8 AllocTRES=cpu=1 CapWatts=n/a "
    "CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s"
)
# The same node edited as a drained node with features (the stack's node has none).
NODE_DRAINED = (NODE.replace("localhost", "nid01").replace("ActiveFeatures=(null)", "ActiveFeatures=gpu,ssd")
                .replace("State=MIXED", "State=IDLE+DRAIN") + " Reason=maintenance State=DOWN [root@2026-11-25]")


def test_nodes():
    command = resources.Nodes()
    assert words(command) == ["scontrol", "-a", "show", "-o", "node"]
    assert command.result(ok(NODE + "\n" + NODE_DRAINED + "\n")) == [
        {"NodeName": "localhost", "ActiveFeatures": [], "Partitions": ["normal", "xfer"], "State": ["MIXED"]},
        {"NodeName": "nid01", "ActiveFeatures": ["gpu", "ssd"], "Partitions": ["normal", "xfer"],
         "State": ["IDLE", "DRAIN"]},
    ]


@pytest.mark.parametrize("names", [["n[1-2]", "n1", "n[1-2]"], ["nid[001-004,7]-gpu,x.y"], ["a_b", "9z"]])
def test_nodes_by_name_are_one_word_after_the_separator(names):
    expected = ",".join(dict.fromkeys(h for n in names for h in resources.TOP_LEVEL_COMMA.split(n)))
    assert words(resources.Nodes(names)) == ["scontrol", "-a", "show", "-o", "node", "--", expected]


@pytest.mark.parametrize("hostile", ["--version", "-x", "a b", "$(id)", "n[1-", "n[a-b]", "a,,b", "é", "n²", "",
                                     "x=y", "a;b", "n[1-2]]"])
def test_node_names_outside_hostlist_syntax_are_refused(hostile):
    with pytest.raises(errors.BadRequest) as caught:
        resources.Nodes([hostile])
    assert "'nodes'" in caught.value.error


def test_unknown_node_is_a_clear_error():
    # Real: `scontrol -a show -o node localhost,nosuch` prints the node and "Node nosuch not found" on stdout, exit 1.
    with pytest.raises(errors.FirecrestError) as caught:
        resources.Nodes(["localhost", "nosuch"]).result(ok(NODE + "\nNode nosuch not found\n", status=1))
    assert caught.value.error == "Node nosuch not found"


PARTITIONS = """\
PartitionName=normal AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=8 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=8,mem=21694M,node=1,billing=8
PartitionName=xfer AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=8 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=8,mem=21694M,node=1,billing=8
"""  # noqa: E501


def test_partitions():
    command = resources.Partitions()
    assert words(command) == ["scontrol", "-a", "show", "-o", "partition"]
    assert command.result(ok(PARTITIONS)) == [
        {"PartitionName": "normal", "State": "UP", "TotalCPUs": "8", "TotalNodes": "1", "Default": "YES"},
        {"PartitionName": "xfer", "State": "UP", "TotalCPUs": "8", "TotalNodes": "1", "Default": "NO"},
    ]


RESERVATION = (
    "ReservationName=h7test StartTime=2026-11-25T07:19:29 EndTime=2026-11-25T08:19:29 Duration=01:00:00 "
    "Nodes=localhost NodeCnt=1 CoreCnt=8 Features=(null) PartitionName=(null) Flags=IGNORE_JOBS,SPEC_NODES "
    "TRES=cpu=8 Users=alice Groups=(null) Accounts=(null) Licenses=(null) State=INACTIVE BurstBuffer=(null) "
    "Watts=n/a MaxStartDelay=(null)"
)


def test_reservations():
    command = resources.Reservations()
    assert words(command) == ["scontrol", "-a", "show", "-o", "reservation"]
    assert command.result(ok("No reservations in the system\n")) == []
    with_features = RESERVATION.replace("h7test", "maint").replace("Features=(null)", "Features=gpu&ssd")
    assert command.result(ok(RESERVATION + "\n" + with_features + "\n")) == [
        {"ReservationName": "h7test", "State": "INACTIVE", "Nodes": "localhost", "StartTime": "2026-11-25T07:19:29",
         "EndTime": "2026-11-25T08:19:29", "Features": []},
        {"ReservationName": "maint", "State": "INACTIVE", "Nodes": "localhost", "StartTime": "2026-11-25T07:19:29",
         "EndTime": "2026-11-25T08:19:29", "Features": ["gpu", "ssd"]},
    ]
