"""The real pyfirecrest v1 client (`firecrest.v1.Firecrest`, installed from PyPI, unchanged) against the gateway,
as a user's script would use it: Keycloak client credentials through `ClientCredentialsAuth`, every call a real
request through HAProxy to the services, the cluster and Swift. Nothing here shapes a request or a reply by hand;
where the client needs something the site does not give, the test says what it should be and is marked xfail."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import firecrest
import pytest
from cluster_paths import cluster_path
from firecrest import ClientCredentialsAuth
from firecrest.v1 import ExternalDownload, ExternalUpload, Firecrest

MACHINE = "cluster"
ALICE = pwd.getpwnam("alice")
JOBS_ROOT = Path(ALICE.pw_dir) / "firecrest"  # where the compute service puts each submission's script and output
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


@pytest.fixture(scope="module")
def client(site) -> Firecrest:
    auth = ClientCredentialsAuth(site.env["FIRECREST_CLIENT_ID_ALICE"], site.env["FIRECREST_CLIENT_SECRET_ALICE"],
                                 site.env["FIRECREST_TOKEN_URL"])
    auth.timeout = 30
    fc = Firecrest(site.env["FIRECREST_URL"], auth)
    fc.timeout = 30
    # The client's own tunable: the default ([1, 0.5] + 234 * [0.25]) spends 1.5 s before its first quick poll.
    fc.polling_sleep_times = [0.1] * 600
    return fc


@pytest.fixture
def job_dirs() -> Iterator[list[str]]:
    """Directories of the jobs a test submitted (script and output): removed afterwards."""
    made: list[str] = []
    yield made
    for job_file in made:
        directory = cluster_path(job_file).parent
        if directory.parent == JOBS_ROOT:
            shutil.rmtree(directory, ignore_errors=True)


def alice_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    os.chown(path, ALICE.pw_uid, ALICE.pw_gid)
    return path


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def done(state: str) -> bool:
    return state.split()[0] in FINISHED  # sacct says e.g. "CANCELLED by 1001"


def finished_job(client: Firecrest, jobid: str) -> dict:
    """The job's accounting record, once it has left the queue: poll_active (squeue) until it is gone or done,
    then poll (sacct) until it has a final state."""

    def left_queue() -> bool:
        return all(done(j["state"]) or j["state"] == "COMPLETING" for j in client.poll_active(MACHINE, [jobid]))

    wait_for(f"job {jobid} to leave the queue", left_queue)
    records = wait_for(f"job {jobid} in accounting",
                       lambda: [r for r in client.poll(MACHINE, [jobid]) if done(r["state"])])
    [record] = records
    return record


# --- status ---------------------------------------------------------------------------------------------------


def test_parameters_set_the_api_version(client):
    parameters = client.parameters()
    versions = {p["name"]: p["value"] for p in parameters["general"]}
    assert "FIRECREST_VERSION" in versions
    assert str(client._api_version) == versions["FIRECREST_VERSION"]
    # list_files(recursive=True), compress, extract and filesystems need 1.16.0 in the client.
    assert client._api_version.release >= (1, 16, 0)
    assert {"compute", "storage", "utilities"} <= parameters.keys()


def test_systems_services_and_filesystems(client):
    assert {"system": MACHINE, "status": "available", "description": "System ready"} in client.all_systems()
    assert client.system(MACHINE) == {"system": MACHINE, "status": "available", "description": "System ready"}
    services = {s["service"]: s["status"] for s in client.all_services()}
    assert {name: services.get(name) for name in ("utilities", "compute", "storage", "tasks")} == dict.fromkeys(
        ("utilities", "compute", "storage", "tasks"), "available")
    assert client.service("storage")["status"] == "available"
    filesystems = client.filesystems(MACHINE)[MACHINE]
    assert {"/home", "/scratch"} <= {fs["path"] for fs in filesystems}


# --- identity -------------------------------------------------------------------------------------------------


def test_whoami_and_groups_on_the_cluster(client):
    assert client.whoami(MACHINE) == "alice"
    ids = client.groups(MACHINE)
    assert ids["user"] == {"name": "alice", "id": str(ALICE.pw_uid)}
    assert {"name": "alice", "id": str(ALICE.pw_gid)} in ids["groups"]


def test_whoami_from_the_token_alone(client):
    assert client.whoami() == "alice"


def test_unknown_machine_is_a_header_exception(client):
    with pytest.raises(firecrest.HeaderException) as caught:
        client.whoami("no-such-machine")
    assert "X-Machine-Does-Not-Exist" in caught.value.responses[-1].headers


# --- utilities ------------------------------------------------------------------------------------------------


def test_files_round_trip(client, home_dir, workdir):
    base = home_dir / "a" / "b"
    assert client.mkdir(MACHINE, str(base), p=True) == str(base)
    content = os.urandom(4096) + b"\nend\n"
    local = workdir / "up.bin"
    local.write_bytes(content)
    client.simple_upload(MACHINE, str(local), str(base), "up.bin")

    [entry] = client.list_files(MACHINE, str(base))
    assert (entry["name"], entry["type"], entry["user"], entry["size"]) == ("up.bin", "-", "alice", str(len(content)))
    assert (base / "up.bin").read_bytes() == content
    names = {e["name"] for e in client.list_files(MACHINE, str(home_dir), recursive=True)}
    assert names == {"a", "a/b", "a/b/up.bin"}  # upstream names entries by their path below targetPath

    back = workdir / "back.bin"
    client.simple_download(MACHINE, str(base / "up.bin"), str(back))
    assert back.read_bytes() == content
    assert client.checksum(MACHINE, str(base / "up.bin")) == hashlib.sha256(content).hexdigest()
    assert client.stat(MACHINE, str(base / "up.bin"))["size"] == len(content)
    assert client.tail(MACHINE, str(base / "up.bin"), lines=1) == "end\n"

    assert client.copy(MACHINE, str(base / "up.bin"), str(home_dir / "copy.bin")) == str(home_dir / "copy.bin")
    assert client.mv(MACHINE, str(home_dir / "copy.bin"), str(home_dir / "moved.bin")) == str(home_dir / "moved.bin")
    client.simple_delete(MACHINE, str(home_dir / "moved.bin"))
    assert not (home_dir / "moved.bin").exists()

    archive = str(home_dir / "a.tar.gz")
    assert client.compress(MACHINE, str(home_dir / "a"), archive) == archive
    client.mkdir(MACHINE, str(home_dir / "x"))
    client.extract(MACHINE, archive, str(home_dir / "x"))
    assert (home_dir / "x" / "a" / "b" / "up.bin").read_bytes() == content


def test_missing_path_is_a_header_exception(client, home_dir):
    with pytest.raises(firecrest.HeaderException) as caught:
        client.list_files(MACHINE, str(home_dir / "missing"))
    assert "X-Invalid-Path" in caught.value.responses[-1].headers


# --- compute --------------------------------------------------------------------------------------------------


def test_submit_and_poll_a_job_to_completion(client, job_dirs):
    name = f"pyf-{uuid.uuid4().hex[:8]}"
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))  # the cluster's clock and zone
    script = f"#!/bin/bash\n#SBATCH --job-name={name}\necho \"hello from $FOO\"\n"
    job = client.submit(MACHINE, script_str=script, account="project-a", env_vars={"FOO": "pyfirecrest"})
    job_dirs.append(job["job_file"])
    assert job["result"] == "Job submitted" and job["jobid"].isdigit() and job["firecrest_taskid"]

    record = finished_job(client, job["jobid"])
    assert (record["jobid"], record["state"], record["exit_code"]) == (job["jobid"], "COMPLETED", "0:0")
    assert client.head(MACHINE, job["job_file_out"]) == "hello from pyfirecrest\n"
    assert job["jobid"] in {r["jobid"] for r in client.poll(MACHINE, start_time=started)}


def test_poll_right_after_the_job_ends_names_it(client, job_dirs):
    name = f"pyf-{uuid.uuid4().hex[:8]}"
    job = client.submit(MACHINE, script_str=f"#!/bin/bash\n#SBATCH --job-name={name}\ntrue\n")
    job_dirs.append(job["job_file"])
    record = finished_job(client, job["jobid"])
    assert (record["name"], record["partition"]) == (name, "normal")


def test_cancel_a_running_job(client, job_dirs):
    job = client.submit(MACHINE, script_str="#!/bin/bash\nsleep 120\n")
    job_dirs.append(job["job_file"])
    assert job["jobid"] in {j["jobid"] for j in client.poll_active(MACHINE)}
    assert client.cancel(MACHINE, job["jobid"]).startswith("scancel:")
    assert finished_job(client, job["jobid"])["state"].startswith("CANCELLED")


# --- storage: external transfers ------------------------------------------------------------------------------


def test_external_upload(client, home_dir, workdir):
    content = os.urandom(300_000)
    local = workdir / f"ext-{uuid.uuid4().hex[:6]}.bin"
    local.write_bytes(content)

    upload = client.external_upload(MACHINE, str(local), str(home_dir))
    assert isinstance(upload, ExternalUpload)
    assert upload.in_progress
    upload.finish_upload()  # waits for 111, then runs data.msg.command locally
    wait_for("the upload to reach a final status", lambda: not upload.in_progress, timeout=40)
    assert upload.status == "114"

    landed = home_dir / local.name
    assert landed.read_bytes() == content
    assert landed.stat().st_uid == ALICE.pw_uid


def test_external_download_and_invalidate(client, home_dir, workdir):
    content = os.urandom(200_000)
    remote = alice_file(home_dir / "down.bin", content)

    download = client.external_download(MACHINE, str(remote))
    assert isinstance(download, ExternalDownload)
    link = download.object_storage_link  # waits for 117
    assert download.status == "117" and not download.in_progress

    local = workdir / "down.bin"
    download.finish_download(local)
    assert local.read_bytes() == content
    with urllib.request.urlopen(link, timeout=30) as response:  # noqa: S310 (the URL the gateway handed out)
        assert response.read() == content

    download.invalidate_object_storage_link()
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(link, timeout=30)  # noqa: S310
    assert gone.value.code == 404


def test_external_transfer_errors_are_header_exceptions(client, home_dir, workdir):
    local = workdir / "x.bin"
    local.write_bytes(b"x")
    with pytest.raises(firecrest.HeaderException) as caught:
        client.external_upload(MACHINE, str(local), "/home/bob")
    assert "X-Permission-Denied" in caught.value.responses[-1].headers
    with pytest.raises(firecrest.HeaderException) as caught:
        client.external_download(MACHINE, str(home_dir / "missing"))
    assert caught.value.responses[-1].status_code == 400


# --- storage: internal transfers ------------------------------------------------------------------------------


def test_internal_copy_job(client, home_dir, job_dirs):
    content = os.urandom(64_000)
    source = alice_file(home_dir / "src.bin", content)
    target = home_dir / "dst.bin"

    job = client.submit_copy_job(MACHINE, str(source), str(target), job_name="pyf-copy", time="5")
    job_dirs.append(job["job_file"])
    assert job["result"] == "Job submitted" and job["jobid"].isdigit()
    assert job["system"] == MACHINE
    assert {"job_file", "job_file_out", "job_file_err"} <= job.keys()

    record = finished_job(client, job["jobid"])
    assert (record["state"], record["exit_code"]) == ("COMPLETED", "0:0")
    assert target.read_bytes() == content
