"""Slurm as the users see it through the login node: jobs run as them, accounting works, jobs are private."""

from __future__ import annotations

import time

SCRIPT = """#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --output=/home/{user}/hello-%j.out
#SBATCH --time=00:01:00
id -un
echo "scratch: $(stat -f -c %T /scratch/{user})"
"""


def submit(site, client, script: str, *options: str) -> str:
    result = site.run(client, " ".join(["sbatch", "--parsable", *options]), stdin=script.encode())
    assert result.status == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def accounting_state(site, client, job_id: str) -> str:
    result = site.run(client, f"sacct -n -P -X -j {job_id} -o State")
    assert result.status == 0, result.stderr
    return result.stdout.strip()


def wait_state(site, client, job_id: str, wanted: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = accounting_state(site, client, job_id).split(" by ")[0]  # "CANCELLED by 1002"
        if state in wanted:
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is {state!r}, not {wanted} after {timeout} s")


def sacct_listing(site, client, job_id: str, timeout: float = 10) -> list[str]:
    """Alice's plain `sacct` listing, once it includes the job (the listing lags `sacct -j` by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = site.run(client, "sacct -n -P -X -o JobID,User,Partition,State --starttime=now-1hours").stdout
        if any(line.startswith(f"{job_id}|") for line in lines.splitlines()) or time.monotonic() > deadline:
            return lines.splitlines()
        time.sleep(0.2)


def test_alice_job_completes_and_shows_in_her_sacct(site, alice):
    job = submit(site, alice, SCRIPT.format(user="alice"))
    assert wait_state(site, alice, job, {"COMPLETED", "FAILED"}) == "COMPLETED"
    assert f"{job}|alice|normal|COMPLETED" in sacct_listing(site, alice, job)
    output = site.run(alice, f"cat -- /home/alice/hello-{job}.out").stdout.splitlines()
    assert output == ["alice", "scratch: ext2/ext3"]
    site.run(alice, f"rm -f -- /home/alice/hello-{job}.out")


def test_xfer_partition_and_accounts(site, alice):
    job = submit(site, alice, "#!/bin/bash\ntrue\n", "--partition=xfer", "--account=project-a", "--output=/dev/null")
    assert wait_state(site, alice, job, {"COMPLETED", "FAILED"}) == "COMPLETED"
    refused = site.run(alice, "sbatch --parsable --account=project-b --output=/dev/null", stdin=b"#!/bin/bash\ntrue\n")
    assert refused.status != 0 and "Invalid account" in refused.stderr


def test_alice_cannot_cancel_or_see_bobs_job(site, alice, bob):
    job = submit(site, bob, "#!/bin/bash\nsleep 60\n", "--output=/dev/null")
    try:
        wait_state(site, bob, job, {"RUNNING"})
        cancel = site.run(alice, f"scancel {job}")
        assert cancel.status != 0
        assert "denied" in cancel.stderr or "Invalid job id" in cancel.stderr
        assert accounting_state(site, bob, job) == "RUNNING"
        assert site.run(alice, f"squeue -h -j {job} -o %i").stdout.strip() == ""
        assert accounting_state(site, alice, job) == ""
    finally:
        site.run(bob, f"scancel {job}")
    assert wait_state(site, bob, job, {"CANCELLED"}) == "CANCELLED"
