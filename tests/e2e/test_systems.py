"""Every system of the site through the gateway, picked by X-Machine-Name: the main flows (whoami, ls, upload and
download, a job that runs on that system's cluster and is in that cluster's accounting only, its partitions) and
status listing each system with its own health. Parametrized over the systems of the site file under test (two on
the native site, one in compose): nothing here assumes how many there are."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid

import pytest
import requests
import yaml
from cluster_paths import cluster_path
from conftest import REPO, user_ids
from gateway_client import Api

SERVICE = "utilities"  # the `api` fixture's service (tests/conftest.py)


def client(site, service: str, system: str, user: str = "alice") -> Api:
    return Api(site, user, service, machine=system)


def xfer_partition(site, system: str) -> str:
    """The partition the site file gives `system`'s transfer jobs."""
    raw = yaml.safe_load(site.site_file.read_text())
    return next(s.get("xfer_partition", "xfer") for s in raw["systems"] if s["name"] == system)


def finished(site, system: str, jobid: str, timeout: float = 60) -> str:
    """The job's final state, asked of its own cluster (job ids of different clusters overlap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = site.shell("alice", f"squeue --states=all -h -j {jobid} -o %T", system=system).stdout.strip()
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {jobid} of {system} did not finish")


def test_whoami(site, each_system):
    response = client(site, "utilities", each_system).get("/whoami")
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "alice"


def test_upload_ls_download(site, each_system, home_dir):
    api = client(site, "utilities", each_system)
    data = f"on {each_system}\n".encode() + bytes(range(256))
    name = f"small-{each_system}.bin"
    uploaded = api.post("/upload", files={"file": (name, data)}, targetPath=str(home_dir))
    assert uploaded.status_code == 201, uploaded.text
    listing = api.get("/ls", targetPath=str(home_dir))
    assert listing.status_code == 200, listing.text
    assert [e["name"] for e in listing.json()["output"]] == [name]
    downloaded = api.get("/download", sourcePath=f"{home_dir}/{name}")
    assert downloaded.status_code == 200 and downloaded.content == data
    assert cluster_path(f"{home_dir}/{name}").read_bytes() == data


def test_a_job_runs_on_its_systems_cluster_and_is_in_that_accounting_only(site, each_system, systems):
    compute = client(site, "compute", each_system)
    name = f"sys-{uuid.uuid4().hex[:10]}"
    script = f'#!/bin/bash\n#SBATCH --job-name={name}\necho "$SLURM_CLUSTER_NAME"\n'.encode()
    task = compute.outcome(compute.post("/jobs/upload", files={"file": ("job.sh", script)}), 201)
    assert task["status"] == "200" and task["system"] == each_system, task
    jobid = task["data"]["jobid"]
    assert finished(site, each_system, jobid) == "COMPLETED"
    cluster = site.cluster_name(each_system)
    assert cluster_path(task["data"]["job_file_out"]).read_text() == f"{cluster}\n"
    acct = compute.outcome(compute.get("/acct", jobs=jobid))
    assert acct["status"] == "200", acct
    assert [(a["jobid"], a["name"]) for a in acct["data"]] == [(jobid, name)]
    # Accounting is one slurmdbd for every cluster of the site, kept apart by cluster name.
    recorded = site.shell(None, f"sacct -n -X -P -M all --name={name} -S now-1days -o cluster", check=True,
                          system=each_system).stdout.split()
    assert recorded == [cluster]
    for other in systems:
        if other != each_system:  # the same job id may be another cluster's job, never one of this name
            theirs = client(site, "compute", other).outcome(client(site, "compute", other).get("/acct", jobs=jobid))
            assert theirs["status"] == "200" and name not in [a["name"] for a in theirs["data"]], theirs


def test_bob_cannot_see_or_cancel_alices_job_on_any_system(site, each_system):
    alice, bob = client(site, "compute", each_system), client(site, "compute", each_system, "bob")
    script = b"#!/bin/bash\nsleep 30\n"
    task = alice.outcome(alice.post("/jobs/upload", files={"file": ("job.sh", script)}), 201)
    jobid = task["data"]["jobid"]
    try:
        assert bob.outcome(bob.get("/jobs", jobs=jobid))["data"] == {}
        assert bob.outcome(bob.get("/acct", jobs=jobid))["data"] == []
        assert bob.outcome(bob.delete(f"/jobs/{jobid}"))["status"] == "400"
        assert alice.outcome(alice.get("/jobs", jobs=jobid))["data"]["0"]["state"] in ("RUNNING", "PENDING")
    finally:
        alice.outcome(alice.delete(f"/jobs/{jobid}"))


def test_an_internal_transfer_runs_on_its_systems_xfer_partition(site, each_system, home_dir):
    storage = client(site, "storage", each_system)
    source = cluster_path(f"{home_dir}/src.txt")
    source.write_bytes(b"moved on " + each_system.encode())
    os.chown(source, *user_ids("alice"))
    reply = storage.post("/xfer-internal/cp", sourcePath=f"{home_dir}/src.txt", targetPath=f"{home_dir}/dst.txt")
    assert reply.status_code == 201, reply.text
    task = storage.wait(reply.json()["task_id"])
    assert task["status"] == "200" and task["system"] == each_system, task
    jobid = task["data"]["jobid"]
    partition = site.shell("alice", f"squeue --states=all -h -j {jobid} -o %P", system=each_system).stdout.strip()
    assert partition == xfer_partition(site, each_system)
    assert finished(site, each_system, jobid) == "COMPLETED"
    assert cluster_path(f"{home_dir}/dst.txt").read_bytes() == b"moved on " + each_system.encode()


def test_an_external_round_trip_through_the_object_store(site, each_system, home_dir, workdir):
    """Upload (the contract's command, then the transfer job on that system) and download (a temp URL)."""
    storage = client(site, "storage", each_system)
    local = workdir / "up.bin"
    local.write_bytes(b"through swift to " + each_system.encode() + bytes(range(256)) * 64)
    reply = storage.post("/xfer-external/upload", sourcePath=str(local), targetPath=str(home_dir))
    assert reply.status_code == 201, reply.text
    task_id = reply.json()["task_id"]
    task = storage.wait(task_id, timeout=30, until="111")
    assert task["status"] == "111" and task["system"] == each_system, task
    sent = subprocess.run(shlex.split(task["data"]["msg"]["command"]), capture_output=True, timeout=120)
    assert sent.returncode == 0, sent.stderr
    task = storage.wait(task_id, timeout=120, until="114")
    assert task["status"] == "114" and task["data"]["system_name"] == each_system, task
    landed = cluster_path(f"{home_dir}/up.bin")
    assert landed.read_bytes() == local.read_bytes()
    reply = storage.post("/xfer-external/download", sourcePath=str(landed))
    assert reply.status_code == 201, reply.text
    task = storage.wait(reply.json()["task_id"], timeout=120, until="117")
    assert task["status"] == "117" and task["data"]["system_name"] == each_system, task
    fetched = requests.get(task["data"]["url"], timeout=60)
    assert fetched.status_code == 200 and fetched.content == local.read_bytes()


def test_partitions(site, each_system):
    compute = client(site, "compute", each_system)
    partitions = compute.outcome(compute.get("/partitions"))
    assert partitions["status"] == "200", partitions
    assert {p["PartitionName"] for p in partitions["data"]} == site.partitions(each_system)


def test_each_system_has_partitions_of_its_own(site, systems):
    """Each system lists its own set (on a site of one system: that it lists one)."""
    found = {}
    for system in systems:
        compute = client(site, "compute", system)
        found[system] = frozenset(p["PartitionName"] for p in compute.outcome(compute.get("/partitions"))["data"])
    assert len(set(found.values())) == len(systems), found


def test_status_lists_every_system_with_its_health(site, systems):
    status = client(site, "status", systems[0])
    listed = status.get("/systems", machine=None)
    assert listed.status_code == 200, listed.text
    out = listed.json()["out"]
    assert [s["system"] for s in out] == systems
    assert all(s["status"] == "available" and s["description"] == "System ready" for s in out), out
    for system in systems:
        one = status.get(f"/systems/{system}", machine=None)
        assert one.status_code == 200 and one.json()["out"]["system"] == system
    filesystems = status.get("/filesystems", machine=None).json()["out"]
    assert list(filesystems) == systems


@pytest.mark.parametrize("name", ["nope", "CLUSTER", "cluster/../cluster", "../cluster", "cluster\tx",
                                  "cluster$(id)", "cluster`id`", "-cluster", "clüster", "x" * 5000])
@pytest.mark.parametrize("service,path", [("utilities", "/whoami"), ("utilities", "/ls"),
                                          ("compute", "/partitions"), ("compute", "/jobs")])
def test_an_unknown_system_gets_the_contracts_error(site, name, service, path):
    response = client(site, service, name).get(path, targetPath="/home")
    assert response.status_code == 400, response.text
    header = "X-Machine-Does-Not-Exist"
    assert response.headers.get(header) == "Machine does not exist", dict(response.headers)
    assert response.json()["error"] == "Machine does not exist"


def test_the_example_runs_on_every_system(site, systems):
    """docs/examples/systems.sh, as its header says (README "Two systems")."""
    result = subprocess.run(["bash", "docs/examples/systems.sh"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    said = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    for system in systems:
        assert said[f"system {system}"] == "available"
        assert said[f"{system} whoami"] == "alice"
        assert set(said[f"{system} partitions"].split(",")) == site.partitions(system)
        [ran] = [v for k, v in said.items() if k.startswith(f"{system} job ") and k.endswith("ran on Slurm cluster")]
        assert ran == site.cluster_name(system)
    assert said["unknown system"].lower() == "x-machine-does-not-exist: machine does not exist"
