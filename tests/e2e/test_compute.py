"""The compute service through the gateway against the real Slurm, as alice (and bob for isolation): every
endpoint (FirecREST v1 §7) with its task reaching 200 and the contract's data, the contract's errors, and
hostile values that must arrive in Slurm literally."""

from __future__ import annotations

import json
import os
import pwd
import time

import pytest
from cluster_paths import cluster_path
from gateway_client import MACHINE, Api

SERVICE = "compute"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)

SUBMIT_KEYS = {"result", "jobid", "job_file", "job_file_out", "job_file_err", "job_data_out", "job_data_err",
               "job_info_extra"}
JOB_KEYS = {"jobid", "partition", "name", "user", "state", "start_time", "time", "time_left", "nodes", "nodelist",
            "job_file", "job_file_out", "job_file_err", "job_data_out", "job_data_err", "job_info_extra"}
ACCT_KEYS = {"jobid", "partition", "name", "user", "state", "start_time", "time", "cpu_time", "elapsed_time",
             "termination_time", "time_left", "nodes", "nodelist", "exit_code"}
ALICE = pwd.getpwnam("alice")


def script(body: str, name: str | None = None) -> bytes:
    header = f"#SBATCH --job-name={name}\n" if name else ""
    return f"#!/bin/bash\n{header}{body}\n".encode()


def submit(api: Api, body: str = "true", name: str | None = None, **form: object) -> dict:
    reply = api.post("/jobs/upload", files={"file": ("job.sh", script(body, name))}, **form)
    return api.outcome(reply, 201)


def squeue(site, user: str, jobid: str) -> str:
    return site.shell(user, f"squeue --states=all -h -j {jobid} -o %T").stdout.strip()


def finished(site, jobid: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = squeue(site, "alice", jobid)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {jobid} did not finish")


def test_upload_submission_runs_the_script_with_env(site, api):
    task = submit(api, 'echo "hello $GREETING"', env=json.dumps({"GREETING": "world"}))
    assert task["status"] == "200", task
    data = task["data"]
    assert set(data) == SUBMIT_KEYS and data["result"] == "Job submitted"
    assert isinstance(data["jobid"], str) and data["jobid"].isdigit()
    assert data["job_file"] == f"/home/alice/firecrest/{task['task_id']}/job.sh"
    assert data["job_file_out"] == f"/home/alice/firecrest/{task['task_id']}/slurm-{data['jobid']}.out"
    assert data["job_info_extra"] == "Job info returned successfully"
    assert finished(site, data["jobid"]) == "COMPLETED"
    assert cluster_path(data["job_file_out"]).read_text() == "hello world\n"
    assert cluster_path(data["job_file"]).stat().st_uid == ALICE.pw_uid


def test_a_submitted_job_is_listed_at_once_and_in_acct_once_finished(site, api):
    jobid = submit(api, "sleep 1")["data"]["jobid"]
    listed = api.outcome(api.get("/jobs", jobs=jobid))
    assert listed["status"] == "200" and list(listed["data"]) == ["0"]
    job = listed["data"]["0"]
    assert set(job) == JOB_KEYS and job["jobid"] == jobid and job["user"] == "alice"
    one = api.outcome(api.get(f"/jobs/{jobid}"))  # finishes, unlike upstream
    assert one["status"] == "200" and one["data"]["0"]["jobid"] == jobid
    finished(site, jobid)
    acct = api.outcome(api.get("/acct", jobs=jobid))
    assert acct["status"] == "200", acct
    assert [a["jobid"] for a in acct["data"]] == [jobid]
    assert set(acct["data"][0]) == ACCT_KEYS and acct["data"][0]["state"] == "COMPLETED"


def test_listing_a_running_job_has_its_output_tail(site, api):
    jobid = submit(api, "echo started; sleep 30")["data"]["jobid"]
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = api.outcome(api.get("/jobs", jobs=jobid))["data"]["0"]
            if job["job_data_out"]:
                break
            time.sleep(0.3)
        assert job["state"] == "RUNNING" and job["job_data_out"] == "started\n"
        assert job["start_time"][:2] == "20" and ":" in job["time"]  # not swapped as upstream
    finally:
        api.outcome(api.delete(f"/jobs/{jobid}"))


def test_path_submission(site, api, home_dir):
    directory = str(home_dir)
    (home_dir / "run.sh").write_bytes(script("pwd"))
    os.chown(home_dir / "run.sh", ALICE.pw_uid, ALICE.pw_gid)
    task = api.outcome(api.post("/jobs/path", targetPath=f"{directory}/run.sh"), 201)
    assert task["status"] == "200", task
    jobid = task["data"]["jobid"]
    assert task["data"]["job_file_out"] == f"{directory}/slurm-{jobid}.out"
    finished(site, jobid)
    assert (home_dir / f"slurm-{jobid}.out").read_text() == directory + "\n"  # it ran where the script is


def test_path_submission_errors_are_immediate(api):
    missing = api.post("/jobs/path", targetPath="/home/alice/no-such-script.sh")
    assert missing.status_code == 400 and ("X-Invalid-Path" in missing.headers or "X-Not-Found" in missing.headers)
    directory = api.post("/jobs/path", targetPath="/home/alice")
    assert directory.status_code == 400 and "X-A-Directory" in directory.headers
    assert api.post("/jobs/path").status_code == 400
    private = api.post("/jobs/path", targetPath="/home/bob/x.sh")
    assert private.status_code == 400 and "X-Permission-Denied" in private.headers


def test_account(api):
    assert submit(api, account="project-a")["status"] == "200"
    other = submit(api, account="project-b")  # bob's project
    assert other["status"] == "400" and "account" in other["data"].lower()
    empty = api.post("/jobs/upload", files={"file": ("j.sh", script("true"))}, account="")
    assert empty.status_code == 400 and empty.json() == {"description": "Invalid account",
                                                          "error": "'account' is empty"}


@pytest.mark.parametrize(("form", "files", "error"), [
    ({}, None, "No batch file part"),
    ({}, {"file": ("", b"#!/bin/bash\n")}, "No batch file selected"),
    ({}, {"file": ("j.sh", b"")}, "Batch file is empty"),
    ({"env": "{not json"}, {"file": ("j.sh", b"#!/bin/bash\n")}, "Invalid JSON"),
    ({"env": "[1, 2]"}, {"file": ("j.sh", b"#!/bin/bash\n")}, "env"),
    ({"env": json.dumps({"BAD KEY": "x"})}, {"file": ("j.sh", b"#!/bin/bash\n")}, "BAD KEY"),
    ({"env": json.dumps({"K": "a\nb"})}, {"file": ("j.sh", b"#!/bin/bash\n")}, "K"),
])
def test_upload_errors(api, form, files, error):
    reply = api.post("/jobs/upload", files=files, **form)
    assert reply.status_code == 400 and error in reply.text, reply.text


def test_a_script_over_the_size_limit_is_413(api):
    reply = api.post("/jobs/upload", files={"file": ("big.sh", b"#" * (5 * 1024 * 1024 + 10))})
    assert reply.status_code == 413


@pytest.mark.parametrize("path", ["/jobs", "/acct", "/nodes", "/partitions", "/reservations"])
def test_unknown_and_missing_machine(api, path):
    unknown = api.get(path, machine="nowhere")
    assert unknown.status_code == 400
    assert "X-Machine-Does-Not-Exist" in unknown.headers and "X-Machine-Does-Not-Exists" in unknown.headers
    assert api.get(path, machine=None).status_code == 400


@pytest.mark.parametrize("jobs", ["abc", "1,,2", "1;2", "$(id)", "-1", "1 2"])
def test_invalid_job_ids(api, jobs):
    assert api.get("/jobs", jobs=jobs).status_code == 400
    assert api.get("/acct", jobs=jobs).status_code == 400


@pytest.mark.parametrize("jobid", ["abc", "1,2,3", "$(id)", "-1", "1%3B2"])
def test_invalid_job_id_in_path(api, jobid):
    assert api.get(f"/jobs/{jobid}").status_code in (400, 404)
    assert api.delete(f"/jobs/{jobid}").status_code in (400, 404)


def test_paging(api):
    # Jobs that stay queued while the test pages through them (finished jobs leave the listing).
    jobids = [submit(api, "sleep 120")["data"]["jobid"] for _ in range(3)]
    try:
        everything = api.outcome(api.get("/jobs", userJobs="false"))["data"]
        page = api.outcome(api.get("/jobs", pageSize=1, pageNumber=1))
        assert page["status"] == "200" and list(page["data"]) == ["0"]
        assert len(everything) >= 3
        beyond = api.outcome(api.get("/jobs", pageSize=1, pageNumber=100000))
        assert beyond["status"] == "400" and "pageNumber (100000) is greater than total pages" in beyond["data"]
    finally:
        for jobid in jobids:
            api.outcome(api.delete(f"/jobs/{jobid}"))
    assert api.get("/jobs", pageSize="x").status_code == 400
    assert api.get("/jobs", pageNumber="-1").status_code == 400


def test_acct_time_window(site, api):
    jobid = submit(api, "true")["data"]["jobid"]
    finished(site, jobid)
    found = api.outcome(api.get("/acct", starttime="now-1days", endtime="now+1days"))
    assert found["status"] == "200" and jobid in [a["jobid"] for a in found["data"]], found["data"][-3:]
    bad = api.get("/acct", starttime="yesterday-ish; rm -rf /")
    assert bad.status_code == 400


def test_cancel(site, api):
    jobid = submit(api, "sleep 300")["data"]["jobid"]
    task = api.outcome(api.delete(f"/jobs/{jobid}"))
    assert task["status"] == "200", task
    assert finished(site, jobid) == "CANCELLED"


def test_cancel_unknown_job_fails_with_the_reason(api):
    task = api.outcome(api.delete("/jobs/999999"))
    assert task["status"] == "400" and "Invalid job id" in task["data"], task


def test_nodes_partitions_reservations(site, api):
    names = site.nodes()
    nodes = api.outcome(api.get("/nodes"))
    assert nodes["status"] == "200"
    assert sorted(n["NodeName"] for n in nodes["data"]) == names
    assert all(set(n) == {"NodeName", "ActiveFeatures", "Partitions", "State"} for n in nodes["data"])
    assert set().union(*(n["Partitions"] for n in nodes["data"])) == {"normal", "xfer"}
    one = api.outcome(api.get(f"/nodes/{names[-1]}"))
    assert [n["NodeName"] for n in one["data"]] == [names[-1]]
    assert api.outcome(api.get("/nodes/no-such-node"))["status"] == "400"
    partitions = api.outcome(api.get("/partitions"))["data"]
    assert {p["PartitionName"] for p in partitions} == {"normal", "xfer"}
    assert set(partitions[0]) == {"PartitionName", "State", "TotalCPUs", "TotalNodes", "Default"}
    only = api.outcome(api.get("/partitions", partitions="xfer"))["data"]
    assert [p["PartitionName"] for p in only] == ["xfer"]
    reservations = api.outcome(api.get("/reservations"))
    assert reservations["status"] == "200" and reservations["data"] == []


def test_seed_jobs_machine(site):
    seed = Api(site, "alice", "jobs")  # the early `/jobs/{machine}`, at the gateway's root
    reply = seed.request("POST", f"/{MACHINE}", files={"file": ("j.sh", script("true"))}, machine=None)
    task = seed.outcome(reply, 201)
    assert task["status"] == "200" and task["system"] == MACHINE
    listing = seed.outcome(seed.request("GET", f"/{MACHINE}", machine=None))
    assert listing["status"] == "200"
    assert seed.request("GET", "/nowhere", machine=None).status_code == 400


def test_status_route(api):
    assert api.get("/status").json() == {"success": "ack"}
