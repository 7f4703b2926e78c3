"""Compute with hostile values and between users: values reach Slurm literally (never a shell), and bob cannot
see alice's tasks or jobs, cancel them, or read their output."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from cluster_paths import cluster_path
from gateway_client import Api
from test_compute import finished, script, submit

SERVICE = "compute"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)

HOSTILE = ["$(touch {c})", "`touch {c}`", "'; touch {c}; '", '"; touch {c}; "', "a\\$b", "-x --export=NONE",
           "=leading", "x y z", "ü ∂ 漢", "{c} && id"]


@pytest.fixture
def canary(site) -> str:
    """A file a hostile value would make if it ran: on the shared /home, so seen wherever it ran (login or compute
    node)."""
    path = f"/home/alice/canary-{uuid.uuid4().hex}"
    yield path
    assert not site.path(path).exists(), "a hostile value was executed"


@pytest.mark.parametrize("value", HOSTILE)
def test_env_values_arrive_literally(site, api, canary, value):
    value = value.format(c=canary)
    task = submit(api, 'printf "%s" "$HOSTILE" > hostile.txt', env=json.dumps({"HOSTILE": value}))
    if task["status"] == "400":  # refused by name, never half-run
        assert "HOSTILE" in task["data"] or "env" in task["data"]
        return
    assert task["status"] == "200", task
    finished(site, task["data"]["jobid"])
    out = cluster_path(task["data"]["job_file"]).parent / "hostile.txt"
    assert out.read_text() == value


@pytest.mark.parametrize("value", HOSTILE)
def test_job_names_are_listed_as_slurm_has_them(site, api, canary, value):
    """A name comes from the script's own #SBATCH line (sbatch parses it); the listing shows Slurm's record of it
    byte for byte, and nothing in it runs."""
    value = value.format(c=canary)
    task = submit(api, "sleep 5", name=value)
    if task["status"] == "400":  # sbatch itself refuses the script's directive (e.g. an unquoted space)
        assert task["data"].startswith("sbatch: error: Invalid directive"), task["data"]
        return
    assert task["status"] == "200", task["data"]
    jobid = task["data"]["jobid"]
    job = api.outcome(api.get("/jobs", jobs=jobid))["data"]["0"]
    assert job["name"] == slurm_name(site, jobid)
    assert task["data"]["job_file_out"].endswith(f"slurm-{jobid}.out")
    api.outcome(api.delete(f"/jobs/{jobid}"))


def slurm_name(site, jobid: str) -> str:
    return site.shell("alice", f"squeue -h -j {jobid} -o %j", check=True).stdout.rstrip("\n")


@pytest.mark.parametrize("name", ["../../../tmp/x.sh", "-rf", "$(id).sh", "a b.sh", ".."])
def test_script_names_cannot_leave_the_task_directory(site, api, name):
    task = api.outcome(api.post("/jobs/upload", files={"file": (name, script("true"))}), 201)
    assert task["status"] == "200", task
    job_file = cluster_path(task["data"]["job_file"])
    assert str(job_file.parent) == f"/home/alice/firecrest/{task['task_id']}" and job_file.is_file()


@pytest.mark.parametrize("path", ["$(touch {c})", "-h", "/home/alice/../bob/x.sh", "x\\`id\\`"])
def test_hostile_target_paths(api, canary, path):
    reply = api.post("/jobs/path", targetPath=path.format(c=canary))
    assert reply.status_code == 400


def test_bob_cannot_see_alices_tasks_or_jobs(site, api, bob_api):
    task = submit(api, "sleep 20")
    jobid = task["data"]["jobid"]
    try:
        assert task["task_id"] not in bob_api.get("/jobs").text
        theirs = bob_api.outcome(bob_api.get("/jobs", jobs=jobid))
        assert theirs["status"] == "200" and theirs["data"] == {}
        one = bob_api.outcome(bob_api.get(f"/jobs/{jobid}"))
        assert one["status"] == "400"
        acct = bob_api.outcome(bob_api.get("/acct", jobs=jobid))
        assert acct["status"] == "200" and acct["data"] == []
        cancel = bob_api.outcome(bob_api.delete(f"/jobs/{jobid}"))
        assert cancel["status"] == "400", cancel
        assert api.outcome(api.get("/jobs", jobs=jobid))["data"]["0"]["state"] in ("RUNNING", "PENDING")
        # the task itself: bob gets 403 on it
        url = f"{site.env['FIRECREST_URL']}/tasks/{task['task_id']}"
        reply = requests.get(url, headers={"Authorization": f"Bearer {site.token('bob')}"}, timeout=10)
        assert reply.status_code == 403
    finally:
        api.outcome(api.delete(f"/jobs/{jobid}"))


def test_bob_cannot_read_alices_job_output(site, api):
    task = submit(api, "echo secret-output")
    finished(site, task["data"]["jobid"])
    utilities = Api(site, "bob", "utilities")
    reply = utilities.get("/view", targetPath=task["data"]["job_file_out"])
    assert reply.status_code == 400 and "X-Permission-Denied" in reply.headers
    assert "secret-output" not in reply.text


def test_bob_cannot_submit_alices_script(site, api, bob_api):
    task = submit(api, "true")
    reply = bob_api.post("/jobs/path", targetPath=task["data"]["job_file"])
    assert reply.status_code == 400 and "X-Permission-Denied" in reply.headers
