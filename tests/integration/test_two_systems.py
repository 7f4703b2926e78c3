"""The native site's two systems, `cluster` and `cluster2` (deploy/local/stack/components/cluster2.py): each its
own Slurm cluster and login node, each login node trusting only its own system's user CA, SSH pools per system,
and each system's health its own."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SYSTEMS = ("cluster", "cluster2")


@pytest.fixture(scope="module", autouse=True)
def two_systems(site):
    assert site.systems == list(SYSTEMS)


def issued(site, system: str, user: str = "alice") -> paramiko.Ed25519Key:
    """A fresh key with the certificate the certificator issues for `system`, asked as the services ask."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    response = requests.post(
        f"{site.service_url('certificator')}/certificates", timeout=30,
        data={"system": system, "public_key": public.decode()},
        headers={"Authorization": f"Bearer {site.token(user)}",
                 "X-Firecrest-Service-Token": site.secret("service-token"),
                 "X-Request-ID": f"two-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 200, response.text
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    key.load_certificate(response.json()["certificate"])
    return key


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_certificate_is_accepted_by_its_systems_login_node_only(site, system):
    key = issued(site, system)
    client = site.connect("alice", key, system=system)
    try:
        assert site.run(client, "id -un").stdout.strip() == "alice"
    finally:
        client.close()
    other = next(s for s in SYSTEMS if s != system)
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("alice", key, system=other)


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_login_node_trusts_its_own_ca_only(site, system):
    other = next(s for s in SYSTEMS if s != system)
    own = site.certificate("alice", "alice@two-systems", system=system)
    site.connect("alice", own, system=system).close()
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("alice", own, system=other)
    trusted = {s: (site.dir / ("login" if s == "cluster" else "login2") / "trusted_user_ca_keys.pub").read_text()
               for s in SYSTEMS}
    assert len(trusted["cluster"].splitlines()) == len(trusted["cluster2"].splitlines()) == 1
    assert trusted["cluster"] != trusted["cluster2"]


def test_the_login_nodes_are_two_sshds_with_their_own_host_keys_and_clusters(site):
    one, two = site.config.systems["cluster"], site.config.systems["cluster2"]
    assert one.port != two.port and one.host_key != two.host_key
    names = {s: site.cluster_name(s) for s in SYSTEMS}
    assert names == {"cluster": "firecrest", "cluster2": "cluster2"}
    # The ForceCommand of each login node gives its sessions its own cluster's slurm.conf.
    for system in SYSTEMS:
        client = site.connect("alice", site.certificate("alice", "alice@two-systems", system=system), system=system)
        try:
            assert site.run(client, "scontrol show config").stdout.count(f"ClusterName             = {names[system]}")
        finally:
            client.close()


def test_accounting_is_shared_and_each_cluster_has_the_sites_associations(site):
    for cluster in ("firecrest", "cluster2"):
        out = site.shell(None, f"sacctmgr -n -P show assoc cluster={cluster} format=account,user", check=True).stdout
        assert {"users|alice", "users|bob", "project-a|alice", "project-b|bob"} <= set(out.split()), out


def whoami(site, system: str, request_id: str) -> requests.Response:
    while True:
        response = requests.get(f"{site.service_url('utilities')}/whoami", timeout=30,
                                headers={"Authorization": f"Bearer {site.token('alice')}", "X-Machine-Name": system,
                                         "X-Request-ID": request_id})
        if response.status_code != 429:
            return response
        time.sleep(int(response.headers["Retry-After"]))


def test_pools_and_certificates_are_per_system(site):
    """Interleaved requests on both systems: each system's commands reach its own login node only, over
    connections whose certificates (key ids) are that system's, never shared with the other system."""
    prefix = f"pools-{uuid.uuid4().hex[:6]}"
    jobs = [(system, f"{prefix}-{system}-{i}") for i in range(12) for system in SYSTEMS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda job: whoami(site, *job), jobs))
    assert all(r.status_code == 200 and r.json()["output"] == "alice" for r in responses)
    seen = {}
    for system in SYSTEMS:
        records = [json.loads(line) for line in site.audit_lines(system) if prefix in line]
        assert {r["request_id"].split("-")[2] for r in records} == {system}, "a command went to another system"
        assert len(records) == 12
        seen[system] = {r["key_id"] for r in records}
        # The collector names a key id only for a certificate its own login node's CA signed.
        assert all(kid.startswith("alice@") for kid in seen[system]), seen[system]
    assert not seen["cluster"] & seen["cluster2"]


def sessions(port: int) -> set[int]:
    """The processes serving connections to the login node on `port` (sshd's per-connection processes; those
    of an earlier listener outlive it, re-parented to init)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def stop_daemon(pidfile, port: int | None = None) -> None:
    """SIGTERM the daemon (and, given the login node's port, its open sessions too: the node is gone, not just
    its listener) and wait until they are gone."""
    pids = {int(pidfile.read_text().split()[0]), *(sessions(port) if port else ())}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def system_status(site) -> dict[str, dict]:
    response = requests.get(f"{site.env['FIRECREST_URL']}/status/systems", timeout=60,
                            headers={"Authorization": f"Bearer {site.token('alice')}", "Cache-Control": "no-cache"})
    assert response.status_code == 200, response.text
    return {s["system"]: s for s in response.json()["out"]}


def test_one_system_down_is_shown_down_while_the_other_is_up(site):
    try:
        stop_daemon(site.dir / "run" / "cluster2-sshd.pid", port=site.config.systems["cluster2"].port)
        status = system_status(site)
        assert status["cluster"]["status"] == "available"
        assert status["cluster2"] == {"system": "cluster2", "status": "not available",
                                      "description": "System does not accept connections"}
        down = requests.get(f"{site.env['FIRECREST_URL']}/utilities/whoami", timeout=60,
                            headers={"Authorization": f"Bearer {site.token('alice')}", "X-Machine-Name": "cluster2"})
        assert down.status_code == 503 and down.headers.get("X-Machine-Not-Available"), down.text
        assert whoami(site, "cluster", f"still-{uuid.uuid4().hex[:6]}").status_code == 200
    finally:
        site.control("restart", "login2")
    assert system_status(site)["cluster2"]["status"] == "available"


def test_a_system_whose_scheduler_is_down_is_shown_so_alone(site):
    try:
        stop_daemon(site.dir / "cluster2" / "run" / "slurmctld.pid")
        status = system_status(site)
        assert status["cluster"] == {"system": "cluster", "status": "available", "description": "System ready"}
        assert status["cluster2"] == {"system": "cluster2", "status": "not available",
                                      "description": "Scheduler (Slurm) is not responding"}
    finally:
        site.control("restart", "cluster2")
    assert system_status(site)["cluster2"]["status"] == "available"


def test_the_second_systems_ports_are_privileged(site):
    """No user's process may take one of its ports while its daemon is down (firewall.py: every site port is
    below net.ipv4.ip_unprivileged_port_start)."""
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert max(site.config.systems["cluster2"].port, 6827, 6828) < start
    probe = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 2224))"  # a free port of the range
    refused = subprocess.run(["su", "alice", "-s", "/bin/sh", "-c", f'python3 -c "{probe}"'], capture_output=True,
                             text=True)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


@pytest.mark.parametrize("system", ["", "cluster3", "CLUSTER2", "cluster2 ", " cluster2", "cluster2\n", "cluster2\x00",
                                    "cluster,cluster2", "../cluster2", "cluster2/../cluster", "clüster2", "2" * 5000])
def test_the_certificator_signs_for_a_system_of_the_site_only(site, system):
    public = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                    serialization.PublicFormat.OpenSSH).decode()
    response = requests.post(
        f"{site.service_url('certificator')}/certificates", timeout=30, data={"system": system, "public_key": public},
        headers={"Authorization": f"Bearer {site.token('alice')}",
                 "X-Firecrest-Service-Token": site.secret("service-token")})
    assert response.status_code == 400, response.text
    assert response.json()["description"] == "unknown or missing system"


def test_down_cancels_the_second_clusters_jobs_and_only_those(site):
    """`down` runs each cluster's before_stop while its controller is up: cluster2's cancels cluster2's jobs
    (with cluster2's slurm.conf), none of the first cluster's."""
    import sys

    sys.path.insert(0, str(site.dir.parent / "deploy" / "local"))
    from stack.components.cluster2 import Cluster2
    from stack.core import Stack

    def sleeper(system: str) -> str:
        submit = "sbatch --parsable --chdir=/tmp -o /dev/null --wrap 'sleep 60'"  # the cwd is not alice's
        out = site.shell("alice", submit, check=True, system=system).stdout
        return out.strip().split(";")[0]

    def state(system: str, jobid: str) -> str:
        return site.shell("alice", f"squeue --states=all -h -j {jobid} -o %T", system=system).stdout.strip()

    theirs, ours = sleeper("cluster"), sleeper("cluster2")
    try:
        Cluster2(Stack(site.dir)).before_stop()
        deadline = time.monotonic() + 30
        while state("cluster2", ours) not in ("CANCELLED", "") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state("cluster2", ours) in ("CANCELLED", "")
        assert state("cluster", theirs) in ("PENDING", "RUNNING")
    finally:
        site.shell("alice", f"scancel {theirs}", system="cluster")
