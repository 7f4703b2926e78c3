"""Bad input to compute is a 400 at once, never a 5xx, and no value reaches Slurm as an option.

Paging is ASCII digits; `env` JSON is bounded (size, nesting, number length); node names follow Slurm's hostlist
syntax and reach scontrol after `--`; a script on the cluster that the caller cannot read is refused at once;
and a job dependency is allowed only on the caller's own jobs: another user's job and no job at all get the same
400, so the answer tells nothing about other users' jobs (PrivateData).
"""

from __future__ import annotations

import os
import pwd
import uuid

import pytest
import requests
from cluster_paths import cluster_path
from gateway_client import Api
from test_compute import ALICE, finished

SERVICE = "compute"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)

BOB = pwd.getpwnam("bob")
HOSTILE_INTEGERS = ["²", "٣", "١٢", "-1", "+1", " 1", "1e3", "0x10", "$(id)", "'1'", "--x", "1" * 19, "9" * 4000]
REMOTE_HEADERS = {"X-Invalid-Path", "X-Permission-Denied", "X-Error", "X-Timeout", "X-A-Directory", "X-Not-Found"}


def sbatch_as(site, user: str, *args: str) -> str:
    out = site.shell(user, " ".join(["sbatch", "--parsable", *args]), check=True)
    return out.stdout.strip().split(";")[0]


def scontrol_field(site, jobid: str, field: str) -> str:
    out = site.shell(None, f"scontrol -o show job {jobid}", check=True).stdout
    return next(w.split("=", 1)[1] for w in out.split() if w.startswith(f"{field}="))


def scancel(site, *jobids: str) -> None:
    site.shell(None, " ".join(["scancel", *jobids]))


def refused(response: requests.Response, words: str, description: str | None = None) -> dict:
    """A 400 at once (no task), JSON saying what was wrong, none of the headers of a failed remote command."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert words in body["error"], body
    if description:
        assert body["description"] == description
    assert not REMOTE_HEADERS & set(response.headers), dict(response.headers)
    return body


@pytest.mark.parametrize("value", HOSTILE_INTEGERS)
@pytest.mark.parametrize(("path", "parameter"), [("/jobs", "pageSize"), ("/jobs", "pageNumber"),
                                                 ("/acct", "pageSize"), ("/acct", "pageNumber")])
def test_paging_is_ascii_digits_or_a_400(api, path, parameter, value):
    refused(api.get(path, **{parameter: value}), f"'{parameter}'")


@pytest.mark.parametrize(("env", "words"), [
    ('{"A": ' + "9" * 5000 + "}", "number longer than"),
    ('{"A": ' + "1." + "5" * 5000 + "}", "number longer than"),
    ('{"A": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than"),
    ("[" * 100000, "longer than"),
    ('{"A": NaN}', "NaN"),
    ('{"A": Infinity}', "Infinity"),
    ('{"A": "x"' + ", " * 2 + "}", "Invalid JSON"),
    ('{"A": {"B": "c"}}', "must be a string"),
    ('{"-A": "x"}', "Invalid environment variable name"),
    ('{"A": "$(id)\\u0000"}', "control character"),
])
def test_env_json_is_bounded(api, env, words):
    reply = api.post("/jobs/upload", files={"file": ("j.sh", b"#!/bin/bash\ntrue\n")}, env=env)
    refused(reply, words, "Failed to submit job")


# --- node names ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["--version", "-a", "--help", "$(id)", "a b", "n[1-", "n[a-b]", "²", "'x'",
                                  "x;y", "localhost,--version", "x=y"])
def test_node_names_outside_hostlist_syntax_are_400(site, api, name):
    refused(api.get("/nodes", nodes=name), "'nodes'", "Error on nodes operation")
    rid = api.calls[-1][0]
    assert site.audit_records({rid}) == []  # nothing ran


@pytest.mark.parametrize("name", ["--version", "-a", "x=y"])  # the gateway refuses "[" in a path itself
def test_node_name_in_the_path_is_checked_too(site, api, name):
    refused(api.get(f"/nodes/{name}"), "'nodes'")


def test_valid_node_lists_reach_scontrol_after_the_separator(site, api):
    node = site.nodes()[0]
    task = api.outcome(api.get("/nodes", nodes=f"{node},{node}"))
    assert task["status"] == "200" and [n["NodeName"] for n in task["data"]] == [node]
    commands = [r["command"] for r in site.audit_records({api.calls[-1][0]})]
    assert any(c.endswith(f"scontrol -a show -o node -- {node}") for c in commands), commands
    missing = api.outcome(api.get("/nodes", nodes="nid[001-002]"))  # valid syntax, no such node: Slurm says so
    assert missing["status"] == "400" and "not found" in missing["data"]


# --- a script on the cluster -------------------------------------------------------------------------------------

def test_path_to_a_script_the_caller_cannot_read_is_a_400_at_once(site, api):
    bobs = f"/scratch/bob-{uuid.uuid4().hex[:8]}.sh"  # on the cluster's shared filesystem
    cluster_path(bobs).write_text("#!/bin/bash\ntrue\n")
    os.chmod(cluster_path(bobs), 0o600)
    os.chown(cluster_path(bobs), BOB.pw_uid, BOB.pw_gid)
    try:
        reply = api.post("/jobs/path", targetPath=bobs)
        assert reply.status_code == 400 and "X-Permission-Denied" in reply.headers, reply.text
        assert reply.json()["description"] == "Failed to submit job"
    finally:
        os.remove(cluster_path(bobs))
    missing = api.post("/jobs/path", targetPath=f"/home/alice/missing-{uuid.uuid4().hex[:6]}.sh")
    assert missing.status_code == 400 and "X-Invalid-Path" in missing.headers
    assert missing.json()["description"] == "Failed to submit job"
    hostile = api.post("/jobs/path", targetPath=f"--version-{uuid.uuid4().hex[:6]}")  # relative: in alice's home
    assert hostile.status_code == 400 and "X-Invalid-Path" in hostile.headers


# --- dependencies ---------------------------------------------------------------------------------------------------

def dependent(directive: str) -> bytes:
    return f"#!/bin/bash\n{directive}\ntrue\n".encode()


@pytest.fixture(scope="module")
def jobs(site):
    """A running job of bob's and one of alice's (each sleeps until the module ends)."""
    bob = sbatch_as(site, "bob", "--chdir=/tmp", "--wrap", "'sleep 300'")
    alice = sbatch_as(site, "alice", "--chdir=/tmp", "--wrap", "'sleep 300'")
    yield {"bob": bob, "alice": alice}
    scancel(site, bob, alice)


@pytest.mark.parametrize("form", [
    "#SBATCH --dependency=afterok:{j}", "#SBATCH --dependency afterok:{j}", "#SBATCH -d afterok:{j}",
    "#SBATCH -dafterok:{j}", "#SBATCH --depend=afterany:{j}", "#SBATCH --dependency=afterok:{a}:{j}",
    "#SBATCH --dependency=afterok:{a}?afternotok:{j}", "#SBATCH --job-name=x --dependency=aftercorr:{j}_1",
])
def test_a_dependency_on_another_users_job_is_the_same_400_as_on_none(api, jobs, form):
    answers = []
    for target in (jobs["bob"], "999999999"):
        reply = api.post("/jobs/upload", files={"file": ("j.sh", dependent(form.format(j=target, a=jobs["alice"])))})
        body = refused(reply, "Invalid dependency", "Failed to submit job")
        answers.append(body["error"].replace(target, "<id>"))
    assert answers[0] == answers[1]  # nothing tells bob's job from no job


def test_storage_stage_out_on_another_users_job_is_the_same_400_as_on_none(site, jobs):
    storage = Api(site, "alice", "storage")
    answers = []
    for target in (jobs["bob"], "999999999"):
        reply = storage.post("/xfer-internal/cp", sourcePath="/home/alice/a", targetPath="/home/alice/b",
                             stageOutJobId=target)
        assert reply.status_code == 400, reply.text
        answers.append((reply.json()["error"].replace(target, "<id>"), reply.headers.get("X-Sbatch-Error")))
    assert answers[0] == answers[1] and "Invalid dependency" in answers[0][0]


@pytest.mark.parametrize("form", ["#SBATCH --dependency=afterok:{a}", "#SBATCH -d afterany:{a}"])
def test_a_dependency_on_the_callers_own_job_is_kept(site, api, jobs, form):
    reply = api.post("/jobs/upload", files={"file": ("j.sh", dependent(form.format(a=jobs["alice"])))})
    task = api.outcome(reply, 201)
    assert task["status"] == "200", task
    jobid = task["data"]["jobid"]
    try:
        assert scontrol_field(site, jobid, "Dependency").startswith(f"after{'ok' if 'ok' in form else 'any'}:"
                                                                     f"{jobs['alice']}")
    finally:
        scancel(site, jobid)


@pytest.mark.parametrize("directive", ["#PBS -W depend=afterok:{j}", "#BSUB -w done({j})"])
def test_other_dependency_dialects_are_refused(api, jobs, directive):
    reply = api.post("/jobs/upload", files={"file": ("j.sh", dependent(directive.format(j=jobs["bob"])))})
    refused(reply, "#SBATCH --dependency", "Failed to submit job")


def test_a_directive_the_check_does_not_see_is_overridden(site, api, jobs, home_dir):
    """Directives past what is read (or a script changed after the check) reach sbatch, but the command line's
    `--dependency=` (empty) wins over them: the job has no dependency on bob's job."""
    padding = "#\n" * 40000  # more than the 64 KiB that are read
    script = f"#!/bin/bash\n{padding}#SBATCH --dependency=afterok:{jobs['bob']}\ntrue\n".encode()
    directory = str(home_dir)
    (home_dir / "run.sh").write_bytes(script)
    os.chown(home_dir / "run.sh", ALICE.pw_uid, ALICE.pw_gid)
    for task in (api.outcome(api.post("/jobs/path", targetPath=f"{directory}/run.sh"), 201),
                 api.outcome(api.post("/jobs/upload", files={"file": ("j.sh", script)}), 201)):
        assert task["status"] == "200", task
        assert scontrol_field(site, task["data"]["jobid"], "Dependency") == "(null)"
        finished(site, task["data"]["jobid"])


@pytest.mark.parametrize("spec", ["afterok:$(id)", "afterok:-1", "afterok:²", "afterok:1,afterany:2?afterok:3",
                                  "before:1", "afterok:" + "9" * 30, "afterok:1 --wrap=id"])
def test_a_malformed_dependency_is_a_400(api, spec):
    reply = api.post("/jobs/upload", files={"file": ("j.sh", dependent(f"#SBATCH --dependency='{spec}'"))})
    refused(reply, "Invalid dependency", "Failed to submit job")


def test_hostile_account_names_are_400(api):
    for account in ["--help", "-x", "a b", "$(id)", "a,b", "²"]:
        reply = api.post("/jobs/upload", files={"file": ("j.sh", b"#!/bin/bash\ntrue\n")}, account=account)
        refused(reply, "'account'", "Invalid account")


def test_nothing_is_a_5xx(api):
    """A sweep of the rest: every hostile value on every compute parameter is answered below 500."""
    for value in HOSTILE_INTEGERS[:-1] + ["", "\u202e", "a" * 4097, "%00"]:
        for path, params in (("/jobs", {"jobs": value}), ("/acct", {"starttime": value}),
                             ("/acct", {"endtime": value}), ("/partitions", {"partitions": value}),
                             ("/reservations", {"reservations": value}), ("/nodes", {"nodes": value})):
            assert api.get(path, **params).status_code < 500, (path, value)
        assert api.post("/jobs/upload", files={"file": ("j.sh", b"#!/bin/bash\n")}, env=value or "{}",
                        account=value or "x").status_code < 500
