"""Internal transfers through the gateway against the real site (FirecREST v1 §8.5): each operation's reply is a
compute task without `task_url`; once it reaches 200 the job is in Slurm on the xfer partition, and once the job
has finished the files are checked on disk (as root). Also: the job's output where the contract puts it, the
parameter errors, a stage-out dependency, hostile names taken literally, a nested compute refusal, and isolation
between alice and bob."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cluster_paths import cluster_path
from gateway_client import Api
from test_compute import submit

SERVICE = "storage"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)

ALICE = pwd.getpwnam("alice")
BOB = pwd.getpwnam("bob")
DONE = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


@pytest.fixture(scope="module")
def compute(site) -> Api:
    return Api(site, "alice", "compute")


def fresh_dir(user: pwd.struct_passwd) -> Iterator[Path]:
    path = cluster_path(user.pw_dir) / f"xi-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    os.chown(path, user.pw_uid, user.pw_gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def home() -> Iterator[Path]:
    """A fresh directory of alice's (made and removed as root, to keep the tests quick)."""
    yield from fresh_dir(ALICE)


@pytest.fixture
def bob_home() -> Iterator[Path]:
    yield from fresh_dir(BOB)


def write_as(user: pwd.struct_passwd, path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)
    return path


def mkdir_as(user: pwd.struct_passwd, path: Path) -> Path:
    """The directory and any missing parents below the user's home, all the user's."""
    home = cluster_path(user.pw_dir)
    for directory in [*reversed(path.parents), path]:
        if directory.is_relative_to(home) and not directory.exists():
            directory.mkdir()
            os.chown(directory, user.pw_uid, user.pw_gid)
    return path


def started(api: Api, op: str, **form: object) -> str:
    """Submit; the contract's reply is a task without `task_url` (quirk 15.9)."""
    reply = api.post(f"/xfer-internal/{op}", **form)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert set(body) == {"success", "task_id"} and body["success"] == "Task created", body
    return body["task_id"]


def submitted(api: Api, task_id: str) -> dict:
    """The task at 200: compute's job-submit data, on the jobs machine."""
    task = api.wait(task_id)
    assert task["status"] == "200", task
    assert task["service"] == "compute" and task["system"] == "cluster"
    return task


def finished(site, user: str, jobid: str, timeout: float = 60) -> str:
    """The job's final state, as its owner's squeue has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = squeue(site, user, jobid, "%T")
        if state in DONE:
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {jobid} did not finish")


def squeue(site, user: str, jobid: str, fmt: str) -> str:
    return site.shell(user, f"squeue --states=all -h -j {jobid} -o '{fmt}'").stdout.strip()


def transfer(site, api: Api, op: str, **form: object) -> tuple[dict, str]:
    """Submit, wait for the task and the job: (task data, final job state)."""
    data = submitted(api, started(api, op, **form))["data"]
    return data, finished(site, api.user, data["jobid"])


# --- each operation does its job ------------------------------------------------------------------------------


def test_cp_runs_on_the_xfer_partition_with_the_contracts_output_files(site, api, compute, home):
    write_as(ALICE, mkdir_as(ALICE, home / "src") / "f.txt", b"one")
    task_id = started(api, "cp", sourcePath=f"{home}/src", targetPath=f"{home}/dst")
    rid = api.calls[-1][0]  # the submission's X-Request-ID: the job's trace id
    task = submitted(api, task_id)
    data = task["data"]
    jobid = data["jobid"]
    workdir = f"/home/alice/firecrest/{task['task_id']}"
    assert data["job_file_out"] == f"{workdir}/job-{jobid}.out"
    assert data["job_file_err"] == f"{workdir}/job-{jobid}.err"
    assert squeue(site, "alice", jobid, "%P|%j") == "xfer|cp-job"
    assert finished(site, "alice", jobid) == "COMPLETED"
    assert (home / "dst" / "f.txt").read_bytes() == b"one" and (home / "src" / "f.txt").exists()
    out = cluster_path(data["job_file_out"]).read_text()
    assert f"Trace ID: {rid}" in out and "finished on" in out
    assert cluster_path(data["job_file_err"]).exists()
    acct = compute.outcome(compute.get("/acct", jobs=jobid))
    # Not the partition: slurmdbd may briefly hold a just-finished job without it (seen with Slurm 22.05).
    assert acct["status"] == "200" and [(a["jobid"], a["state"]) for a in acct["data"]] == [(jobid, "COMPLETED")]


def test_mv(site, api, home):
    write_as(ALICE, home / "a", b"moved")
    _, state = transfer(site, api, "mv", sourcePath=f"{home}/a", targetPath=f"{home}/b")
    assert state == "COMPLETED"
    assert not (home / "a").exists() and (home / "b").read_bytes() == b"moved"


def test_rsync(site, api, home):
    src = mkdir_as(ALICE, home / "src")
    write_as(ALICE, mkdir_as(ALICE, src / "sub") / "f", b"synced")
    _, state = transfer(site, api, "rsync", sourcePath=f"{src}/", targetPath=f"{home}/dst", jobName="sync.1")
    assert state == "COMPLETED"
    assert (home / "dst" / "sub" / "f").read_bytes() == b"synced"  # "src/": its contents, as rsync has it


def test_rm(site, api, home):
    write_as(ALICE, mkdir_as(ALICE, home / "d" / "e") / "f", b"x")
    _, state = transfer(site, api, "rm", targetPath=f"{home}/d")
    assert state == "COMPLETED" and not (home / "d").exists()


def test_compress_dereferences_on_request(site, api, home):
    write_as(ALICE, mkdir_as(ALICE, home / "d") / "real", b"content")
    (home / "d" / "link").symlink_to("real")
    os.lchown(home / "d" / "link", ALICE.pw_uid, ALICE.pw_gid)
    _, state = transfer(site, api, "compress", sourcePath=f"{home}/d", targetPath=f"{home}/d.tar.gz",
                        dereference="true")
    assert state == "COMPLETED"
    with tarfile.open(home / "d.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["d", "d/link", "d/real"]
        assert not archive.getmember("d/link").issym()  # dereferenced (tar stores the second copy as a hard link)
        assert archive.extractfile("d/real").read() == b"content"
    assert sorted(p.name for p in home.iterdir()) == ["d", "d.tar.gz"]  # nothing left aside


def test_extract_tar_and_zip(site, api, home):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("in/t.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"tar"))
    write_as(ALICE, home / "a.tar.gz", buffer.getvalue())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("z.txt", "zip")
    write_as(ALICE, home / "a.data", buffer.getvalue())  # no telling name: the client's extension says zip
    out = mkdir_as(ALICE, home / "out")
    tar_task = started(api, "extract", sourcePath=f"{home}/a.tar.gz", targetPath=str(out))
    zip_task = started(api, "extract", sourcePath=f"{home}/a.data", targetPath=str(out), extension=".zip")
    for task_id in (tar_task, zip_task):
        assert finished(site, "alice", submitted(api, task_id)["data"]["jobid"]) == "COMPLETED"
    assert (out / "in" / "t.txt").read_bytes() == b"tar" and (out / "z.txt").read_bytes() == b"zip"


def test_a_failing_command_fails_the_job(site, api, home):
    data, state = transfer(site, api, "cp", sourcePath=f"{home}/missing", targetPath=f"{home}/x")
    assert state == "FAILED" and not (home / "x").exists()
    assert "No such file" in cluster_path(data["job_file_err"]).read_text()


# --- parameters -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2 hours", "1:2:3:4", "-5", "02:00:00\n#SBATCH --uid=0"])
def test_bad_time_is_400(api, value):
    reply = api.post("/xfer-internal/rm", targetPath="/home/alice/nothing", time=value)
    assert reply.status_code == 400
    if "\n" not in value:  # a control character is refused before the format is looked at
        assert reply.json()["error"] == "Not supported time format"


@pytest.mark.parametrize("value", ["abc", "1;2", "1 2", "-1", "$(id)"])
def test_bad_stage_out_job_id_is_400(api, value):
    reply = api.post("/xfer-internal/cp", sourcePath="/a", targetPath="/b", stageOutJobId=value)
    assert reply.status_code == 400 and "stageOutJobId" in reply.json()["error"]


@pytest.mark.parametrize("value", ["-x", "a b", "a'b", "$(id)", "x" * 65])
def test_unsafe_job_name_is_400(api, value):
    reply = api.post("/xfer-internal/cp", sourcePath="/a", targetPath="/b", jobName=value)
    assert reply.status_code == 400 and "'jobName'" in reply.json()["error"]


@pytest.mark.parametrize(("op", "form", "missing"), [
    ("cp", {"sourcePath": "/a"}, "targetPath"), ("rm", {}, "targetPath"),
    ("compress", {"targetPath": "/a.tgz"}, "sourcePath"),
])
def test_missing_paths_are_400(api, op, form, missing):
    reply = api.post(f"/xfer-internal/{op}", **form)
    assert reply.status_code == 400 and reply.json()["error"] == f"'{missing}' not specified"


def test_unknown_and_missing_machine(api):
    unknown = api.request("POST", "/xfer-internal/cp", data={"sourcePath": "/a", "targetPath": "/b"},
                          machine="nowhere")
    assert unknown.status_code == 400
    assert unknown.headers["X-Machine-Does-Not-Exists"] == "Machine does not exists"
    assert "X-Machine-Does-Not-Exist" in unknown.headers  # the spelling pyfirecrest knows
    missing = api.request("POST", "/xfer-internal/cp", data={"sourcePath": "/a", "targetPath": "/b"}, machine=None)
    assert missing.status_code == 400


def test_account_is_passed_to_compute(site, api, home):
    write_as(ALICE, home / "f", b"x")
    refused = api.post("/xfer-internal/cp", sourcePath=f"{home}/f", targetPath=f"{home}/g", account="")
    assert refused.status_code == 400 and refused.json()["error"] == "'account' is empty"
    assert refused.headers["X-Sbatch-Error"] == "Invalid account"  # compute's description
    task = api.wait(started(api, "cp", sourcePath=f"{home}/f", targetPath=f"{home}/g", account="project-b"))
    assert task["status"] == "400" and "account" in task["data"].lower()  # bob's project: sbatch refuses
    data, state = transfer(site, api, "cp", sourcePath=f"{home}/f", targetPath=f"{home}/g", account="project-a")
    assert state == "COMPLETED" and squeue(site, "alice", data["jobid"], "%a") == "project-a"


def test_stage_out_job_id_makes_a_dependency(site, api, compute, home):
    write_as(ALICE, home / "f", b"x")
    before = submit(compute, "sleep 60")["data"]["jobid"]
    jobs = [before]
    try:
        jobid = submitted(api, started(api, "cp", sourcePath=f"{home}/f", targetPath=f"{home}/g",
                                       stageOutJobId=before))["data"]["jobid"]
        jobs.append(jobid)
        assert squeue(site, "alice", jobid, "%T|%r|%E") == f"PENDING|Dependency|afterok:{before}(unfulfilled)"
        assert not (home / "g").exists()
    finally:
        for job in reversed(jobs):
            compute.outcome(compute.delete(f"/jobs/{job}"))
    assert not (home / "g").exists()


# --- hostile names and users ----------------------------------------------------------------------------------


@pytest.fixture
def canary(site) -> Iterator[str]:
    name = f"canary-{uuid.uuid4().hex}"
    yield name
    for place in ("/tmp", "/home/alice"):
        assert not site.lexists(f"{place}/{name}"), "a hostile name was executed"


def test_hostile_names_are_copied_literally(site, api, home, canary):
    names = ["it's", f"$(touch /tmp/{canary})", f"`touch {canary}`", f"x; touch {canary}", '"; id; "', "ü ∂ 漢"]
    sources = []
    for i, name in enumerate(names):
        path = home / f"s{i}" / name  # "/" in a name makes directories: the path holds it whole
        mkdir_as(ALICE, path.parent)
        sources.append(write_as(ALICE, path, name.encode()))
    dashed = f"-xi-{uuid.uuid4().hex[:8]}"  # relative, in alice's home: a leading dash, never an option
    write_as(ALICE, cluster_path("/home/alice") / dashed, b"dash")
    out = mkdir_as(ALICE, home / "out")
    try:
        tasks = [started(api, "cp", sourcePath=str(s), targetPath=f"{out}/{i}") for i, s in enumerate(sources)]
        tasks.append(started(api, "cp", sourcePath=dashed, targetPath=f"{dashed}.copy"))
        tasks.append(started(api, "rsync", sourcePath=str(sources[1]), targetPath=f"{out}/r"))
        for task_id in tasks:
            assert finished(site, "alice", submitted(api, task_id)["data"]["jobid"]) == "COMPLETED"
        for i, name in enumerate(names):
            assert (out / str(i)).read_bytes() == name.encode()
        assert (out / "r").read_bytes() == names[1].encode()
        assert (cluster_path("/home/alice") / f"{dashed}.copy").read_bytes() == b"dash"
    finally:
        for name in (dashed, f"{dashed}.copy"):
            (cluster_path("/home/alice") / name).unlink(missing_ok=True)


def test_bob_cannot_copy_alices_private_file(site, api, bob_api, home, bob_home):
    secret = write_as(ALICE, home / "secret", b"alice only", mode=0o600)
    data, state = transfer(site, bob_api, "cp", sourcePath=str(secret), targetPath=f"{bob_home}/stolen")
    assert state == "FAILED"
    assert not (bob_home / "stolen").exists()
    assert "Permission denied" in cluster_path(data["job_file_err"]).read_text()
    assert str(cluster_path(data["job_file_out"]).parent.parent) == "/home/bob/firecrest"  # bob's job, bob's files


def test_bob_cannot_see_alices_task(site, api, home):
    write_as(ALICE, home / "f", b"x")
    task_id = started(api, "cp", sourcePath=f"{home}/f", targetPath=f"{home}/g")
    submitted(api, task_id)
    bob = {"Authorization": f"Bearer {site.token('bob')}"}
    one = requests.get(f"{site.env['FIRECREST_URL']}/tasks/{task_id}", headers=bob, timeout=10)
    assert one.status_code == 403
    listed = requests.get(f"{site.env['FIRECREST_URL']}/tasks", params={"tasks": task_id}, headers=bob, timeout=10)
    assert task_id not in listed.json().get("tasks", {})
